"""The atlas scan: windows, a brute-force recomputation with transformers' GPT-2, exact merges, planted heads."""

from __future__ import annotations

import math
from dataclasses import fields

import numpy as np
import pytest
import torch

from conftest import TINY, random_model
from gpt2atlas.atlas import scan as S
from gpt2atlas.atlas.entries import CONTEXT_AFTER, CONTEXT_BEFORE
from gpt2atlas.atlas.finish import FinishedScan, logit_effects
from gpt2atlas.atlas.windows import Windows
from gpt2atlas.errors import InputError
from gpt2atlas.model import load_model
from gpt2atlas.tokenizer import ENDOFTEXT_ID
from hf_utils import hf_random_checkpoint

CONTEXT = 24
K = 5


def _stream(windows: int, vocab: int = 40, seed: int = 0) -> np.ndarray:
    """A token stream over a small vocabulary (so tokens repeat) with a few extra tokens past the last window."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, vocab, windows * (CONTEXT - 1) + 5).astype(np.uint16)


def _scan(model, windows, settings, indices=None, batch_tokens=2 * CONTEXT):
    plan = S.plan(model, windows, settings)
    collect = S.Collect(plan)
    indices = range(len(windows)) if indices is None else indices
    return plan, [collect(model, batch) for batch in windows.batches(indices, batch_tokens)]


# ----- windows ---------------------------------------------------------------------------------------------------
def test_window_w_is_endoftext_then_its_slice_of_the_stream():
    stream = np.arange(100, dtype=np.uint16)
    windows = Windows(stream, 10)
    assert len(windows) == 11 and windows.tokens == 99  # 100 // 9 whole windows; the last token is left out
    for w in (0, 4, 10):
        ids = windows[w]
        assert ids.dtype == np.int64 and ids[0] == ENDOFTEXT_ID
        assert ids[1:].tolist() == list(range(w * 9, (w + 1) * 9))
    assert [len(ids) for ids in windows] == [10] * 11
    assert windows.ids([3, 1]).tolist() == [windows[3].tolist(), windows[1].tolist()]
    assert windows.count_tokens(200)[:100].tolist() == [1] * 99 + [0]
    batch = next(windows.batches([5, 6, 7], batch_tokens=20))
    assert batch.texts.tolist() == [5, 6] and batch.ids.tolist() == windows.ids([5, 6]).tolist()
    with pytest.raises(InputError, match="window=11"):
        windows[11]


def test_a_stream_shorter_than_one_window_is_an_input_error():
    with pytest.raises(InputError, match="fewer than one window"):
        Windows(np.arange(8, dtype=np.uint16), 10)
    with pytest.raises(InputError, match="context"):
        Windows(np.arange(8, dtype=np.uint16), 1)


def test_settings_and_plan_reject_bad_input(tiny_model):
    with pytest.raises(InputError, match="top_k=0"):
        S.ScanSettings(context=16, top_k=0)
    with pytest.raises(InputError, match="dtype"):
        S.ScanSettings(context=16, dtype="float16")
    windows = Windows(np.arange(1000, dtype=np.uint16), 200)
    with pytest.raises(InputError, match="longer than the model's context of 128"):
        S.plan(tiny_model, windows, S.ScanSettings(context=200))


def test_plan_tracks_the_most_frequent_tokens_within_the_memory_bound(tiny_model):
    stream = np.repeat(np.arange(10, dtype=np.uint16), np.arange(10, 0, -1) * 10)  # token t seen (10 - t) * 10 times
    windows = Windows(stream, 10)
    neurons = TINY.n_layer * TINY.d_mlp
    plan = S.plan(
        tiny_model, windows, S.ScanSettings(context=10, min_token_count=30, token_means_bytes=5 * 8 * neurons)
    )
    assert plan.tracked.tolist() == [0, 1, 2, 3, 4]  # seen >= 30 times: 0..7; the bound holds 5
    assert plan.tracked.size * neurons * 8 <= plan.settings.token_means_bytes


# ----- brute force against transformers ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hf_case(tmp_path_factory):
    """transformers' GPT-2 (eager attention) and ours from its checkpoint, with every MLP activation and
    attention pattern of 12 windows, read from transformers' modules."""
    hf, folder = hf_random_checkpoint(tmp_path_factory.mktemp("hf") / "gpt2", n_positions=64)
    ours = load_model(str(folder))
    windows = Windows(_stream(12), CONTEXT)
    ids = torch.as_tensor(windows.ids(range(len(windows))))
    acts: dict[int, torch.Tensor] = {}
    handles = [
        block.mlp.act.register_forward_hook(lambda mod, inp, out, layer=layer: acts.__setitem__(layer, out))
        for layer, block in enumerate(hf.transformer.h)
    ]
    with torch.no_grad():
        out = hf(ids, output_attentions=True)
    for handle in handles:
        handle.remove()
    post = torch.cat([acts[layer] for layer in range(len(acts))], dim=2).numpy()  # (windows, n, neurons)
    patterns = torch.cat(list(out.attentions), dim=1).numpy()  # (windows, heads, n, n)
    return ours, windows, post, patterns


def _brute_top(values: np.ndarray, k: int) -> list[tuple[int, int, float]]:
    """(window, position, value): each window's first maximum past position 0, by value desc, then window."""
    best = values[:, 1:].max(axis=1)
    where = values[:, 1:].argmax(axis=1) + 1
    order = sorted(range(len(best)), key=lambda w: (-best[w], w))[:k]
    return [(w, int(where[w]), float(best[w])) for w in order]


def _brute_head_scores(windows, pattern):
    """(duplicate mean, queries), (induction mean, queries), mean entropy, query by query over (window, query, key)."""
    dup, ind, entropy = [], [], []
    for w in range(len(windows)):
        tok = windows[w]
        for q in range(1, len(tok)):
            copies = [j for j in range(1, q) if tok[j] == tok[q]]
            if copies:
                dup.append(pattern[w, q, copies].sum())
            targets = [i + 1 for i in copies if i <= q - 2]
            if targets:
                ind.append(pattern[w, q, targets].sum())
            p = pattern[w, q, : q + 1].astype(np.float64)
            entropy.append(-(p[p > 0] * np.log(p[p > 0])).sum())
    return (np.mean(dup), len(dup)), (np.mean(ind), len(ind)), np.mean(entropy)


def test_scan_finds_the_brute_force_top_k_moments_and_heads(hf_case):
    ours, windows, post, patterns = hf_case
    settings = S.ScanSettings(context=CONTEXT, top_k=K, min_token_count=3)
    plan, states = _scan(ours, windows, settings)
    found = S.finish(S.merge(states), ours, windows, plan)
    body = post[:, 1:, :].reshape(-1, post.shape[2]).astype(np.float64)  # every stream position, every neuron
    assert len(found.neurons) == post.shape[2]
    for n, entry in enumerate(found.neurons):
        expected = _brute_top(post[:, :, n], K)
        assert [(e.window, e.position) for e in entry.examples] == [(w, p) for w, p, _ in expected]
        np.testing.assert_allclose([e.activation for e in entry.examples], [v for _, _, v in expected], atol=1e-5)
        x = body[:, n]
        stats = entry.stats
        assert stats.count == len(x) == len(windows) * (CONTEXT - 1)
        np.testing.assert_allclose([stats.mean, stats.std], [x.mean(), x.std()], rtol=1e-5, atol=1e-7)
        z = (x - x.mean()) / x.std()
        np.testing.assert_allclose([stats.skewness, stats.kurtosis], [(z**3).mean(), (z**4).mean() - 3], atol=1e-3)
        assert stats.active_share == pytest.approx((x > 0).mean())
        assert stats.maximum == pytest.approx(x.max(), abs=1e-5) and stats.minimum == pytest.approx(x.min(), abs=1e-5)
        assert sum(entry.histogram.counts) == len(x)
    # previous-token score: the mean attention on the previous key, over every query past position 0
    for h, head in enumerate(found.heads):
        prev = np.mean([patterns[:, h, q, q - 1] for q in range(1, CONTEXT)])
        first = patterns[:, h, 1:, 0].mean()
        assert head.stats.previous_token == pytest.approx(prev, abs=1e-5)
        assert head.stats.first_token == pytest.approx(first, abs=1e-5)
        dup, ind, entropy = _brute_head_scores(windows, patterns[:, h])
        assert (head.stats.duplicate_queries, head.stats.induction_queries) == (dup[1], ind[1]) and dup[1] > 0
        assert head.stats.duplicate_token == pytest.approx(dup[0], abs=1e-5)
        assert head.stats.induction == pytest.approx(ind[0], abs=1e-5)
        assert head.stats.entropy == pytest.approx(entropy, abs=1e-4)
        best = patterns[:, h, 1:, 1:].max(axis=2)  # (windows, query - 1): best key past position 0
        expected = _brute_top(np.concatenate([np.zeros((len(windows), 1)), best], axis=1), K)
        assert [(e.window, e.position) for e in head.examples] == [(w, p) for w, p, _ in expected]
        np.testing.assert_allclose([e.activation for e in head.examples], [v for _, _, v in expected], atol=1e-5)
        for e in head.examples:
            assert e.key == int(patterns[e.window, h, e.position, 1:].argmax()) + 1
            assert e.activations[e.offset] == pytest.approx(patterns[e.window, h, e.position, e.position], abs=1e-5)


def test_examples_carry_their_context_and_bands_their_share_of_the_maximum(hf_case):
    ours, windows, post, _ = hf_case
    settings = S.ScanSettings(context=CONTEXT, top_k=K, min_token_count=3, heads=False)
    plan, states = _scan(ours, windows, settings)
    merged = S.merge(states)
    found = S.finish(merged, ours, windows, plan)
    assert found.heads == ()
    lazily = FinishedScan(merged, ours, windows, plan)  # entries made one at a time are the same entries
    assert [lazily.neuron(n) for n in (0, 300, 511)] == [found.neurons[n] for n in (0, 300, 511)]
    for n in range(0, len(found.neurons), 37):
        entry = found.neurons[n]
        for e in entry.examples + tuple(x for band in entry.bands for x in band.examples):
            assert e.start == max(0, e.position - CONTEXT_BEFORE)
            assert len(e.tokens) == min(CONTEXT, e.position + CONTEXT_AFTER + 1) - e.start
            assert list(e.tokens) == windows[e.window][e.start : e.start + len(e.tokens)].tolist()
            np.testing.assert_allclose(e.activations, post[e.window, e.start : e.start + len(e.tokens), n], atol=1e-5)
            assert e.activation == pytest.approx(post[e.window, e.position, n], abs=1e-5)
        top = entry.stats.maximum
        x = post[:, 1:, n]
        for band in entry.bands:
            inside = (x >= band.low * top - 1e-6) & (x < band.high * top + 1e-6)
            assert abs(band.count - inside.sum()) <= 1  # bounds are bin edges: a value on an edge may round apart
            assert all(band.low * top - 1e-5 <= e.activation < band.high * top + 1e-5 for e in band.examples)
        # token means: the brute-force mean over the token's positions, highest first
        tokens = np.stack([windows[w] for w in range(len(windows))])[:, 1:]
        for tm in entry.token_means:
            assert tm.count == (tokens == tm.token).sum() >= 3
            assert tm.mean == pytest.approx(x[tokens == tm.token].mean(), abs=1e-5)
        assert [t.mean for t in entry.token_means] == sorted((t.mean for t in entry.token_means), reverse=True)


def test_logit_effect_is_the_output_row_through_the_final_gain_and_unembedding(hf_case):
    ours = hf_case[0]
    up_ids, up_values, down_ids, down_values = logit_effects(ours, 3)
    n = TINY.d_mlp + 7  # layer 1, neuron 7
    row = ours.blocks[1].mlp.W_out[7] * ours.ln_final.w @ ours.W_U
    assert up_ids[n].tolist() == row.topk(3).indices.tolist()
    assert down_ids[n].tolist() == (-row).topk(3).indices.tolist()
    np.testing.assert_allclose(down_values[n], row.sort().values[:3].numpy(), rtol=1e-5)
    np.testing.assert_allclose(up_values[n], row.sort(descending=True).values[:3].numpy(), rtol=1e-5)


# ----- merges ----------------------------------------------------------------------------------------------------
def _assert_same(a: S.ScanState, b: S.ScanState) -> None:
    for f in fields(S.ScanState):
        x, y = getattr(a, f.name), getattr(b, f.name)
        assert x.shape == y.shape and x.dtype == y.dtype, f.name
        if np.issubdtype(x.dtype, np.floating):
            np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-9, err_msg=f.name)
        else:
            np.testing.assert_array_equal(x, y, err_msg=f.name)


def test_merge_is_exact_in_any_grouping_and_sharding():
    model = random_model(seed=3)
    windows = Windows(_stream(12, seed=1), CONTEXT)
    settings = S.ScanSettings(context=CONTEXT, top_k=K, min_token_count=2)
    _, states = _scan(model, windows, settings)  # six batches of two windows
    whole = S.merge(states)
    shards = [_scan(model, windows, settings, range(a, b))[1] for a, b in ((0, 4), (4, 6), (6, 12))]
    grouped = S.merge([S.merge([S.merge(shards[0]), S.merge(shards[1])]), S.merge(shards[2][::-1])])
    _assert_same(whole, grouped)
    _assert_same(S.merge([S.ScanState.empty(*whole.top_act.shape[:1], whole.head_act.shape[0], K), whole]), whole)
    assert whole.positions[0] == 12 * (CONTEXT - 1) and whole.histogram.sum(1).tolist() == [12 * (CONTEXT - 1)] * len(
        whole.histogram
    )
    assert (whole.band_window >= 0).any() and set(whole.token_ids.tolist()) <= set(range(40))


# ----- planted structure -----------------------------------------------------------------------------------------
def _previous_token_model():
    """TINY with no token embedding, positions on a circle (angle pi/32 per step) and head 0 of layer 0 whose
    query is its position turned one step back: it attends to the previous token."""
    model = random_model(seed=5)
    theta = math.pi / 32
    with torch.no_grad():
        model.W_E.zero_()
        model.W_pos.zero_()
        pos = torch.arange(TINY.n_ctx) * theta
        for sign, offset in ((1, 0), (-1, 2)):  # mean 0 over d_model: LayerNorm only rescales it
            model.W_pos[:, offset] = sign * torch.cos(pos)
            model.W_pos[:, offset + 1] = sign * torch.sin(pos)
        qkv = model.blocks[0].attn.W_QKV
        qkv[:, : TINY.d_head].zero_()
        qkv[:, TINY.d_model : TINY.d_model + TINY.d_head].zero_()
        c, s, a = math.cos(theta), math.sin(theta), 400.0
        qkv[0, 0], qkv[1, 0], qkv[0, 1], qkv[1, 1] = a * c, a * s, -a * s, a * c  # q = a R(-theta) (cos, sin)
        qkv[0, TINY.d_model], qkv[1, TINY.d_model + 1] = 1.0, 1.0  # k = (cos, sin)
        model.blocks[0].attn.b_QKV.zero_()
    return model


def test_a_planted_previous_token_head_scores_one_and_the_others_low():
    model = _previous_token_model()
    windows = Windows(_stream(6, seed=2), CONTEXT)
    plan, states = _scan(model, windows, S.ScanSettings(context=CONTEXT, top_k=3, min_token_count=2))
    heads = S.finish(S.merge(states), model, windows, plan).heads
    assert heads[0].name == "L0H0" and heads[0].stats.previous_token > 0.99
    assert all(h.stats.previous_token < 0.5 for h in heads[1:])
    assert all(e.key == e.position - 1 for e in heads[0].examples if e.position > 1)
    assert heads[0].stats.entropy < 0.05 < min(h.stats.entropy for h in heads[1 : TINY.n_head])


def test_duplicate_and_induction_scores_count_the_right_queries():
    model = random_model(seed=1)
    stream = np.tile(np.array([5, 6, 7, 8], dtype=np.uint16), 10)  # period 4: every query past the first 4 repeats
    windows = Windows(stream, 9)  # window: EOT 5 6 7 8 5 6 7 8
    plan, states = _scan(model, windows, S.ScanSettings(context=9, top_k=2, min_token_count=1), batch_tokens=9)
    state = S.merge(states)
    # per window: queries 1..8; an earlier copy (at 1..q-1) for q = 5..8; an induction target (copy at 1..q-2) too
    assert state.head_counts.tolist() == [len(windows) * 8, len(windows) * 4, len(windows) * 4]


# ----- bfloat16 on the shipped mini -------------------------------------------------------------------------------
def test_bfloat16_scan_of_mini_recomputes_its_examples_in_float32():
    model = load_model("mini")
    rng = np.random.default_rng(0)
    windows = Windows(rng.integers(0, 3000, 6 * 63).astype(np.uint16), 64)
    found = {}
    for dtype in ("float32", "bfloat16"):
        plan, states = _scan(model, windows, S.ScanSettings(context=64, top_k=4, heads=False, dtype=dtype), None, 512)
        found[dtype] = S.finish(S.merge(states), model, windows, plan).neurons
    same = total = 0
    for a, b in zip(found["float32"], found["bfloat16"], strict=True):
        keys = {(e.window, e.position): e.activation for e in a.examples}
        for e in b.examples:
            total += 1
            if (e.window, e.position) in keys:
                same += 1
                assert e.activation == pytest.approx(keys[(e.window, e.position)], abs=1e-5)  # float32 values
    assert same / total >= 0.95


def test_collect_pickles_and_stops_after_the_last_block(tiny_model, monkeypatch):
    """Ray ships `Collect` to its workers; the pass never reaches ln_final or the unembedding."""
    import pickle

    windows = Windows(_stream(4, seed=4), CONTEXT)
    plan = S.plan(tiny_model, windows, S.ScanSettings(context=CONTEXT, top_k=2, min_token_count=2))
    collect = S.Collect(plan)
    batch = next(windows.batches(range(4), 4 * CONTEXT))
    before = collect(tiny_model, batch)

    def boom(*args, **kwargs):
        raise AssertionError("the scan ran past the last block")

    monkeypatch.setattr(tiny_model.ln_final, "forward", boom)
    monkeypatch.setattr(tiny_model.unembed, "forward", boom)
    _assert_same(pickle.loads(pickle.dumps(collect))(tiny_model, batch), before)
    with pytest.raises(InputError, match="not the one the scan was planned for"):
        collect(load_model("mini"), batch)


def test_the_scan_runs_on_the_shared_corpus_runner(tiny_model):
    from gpt2atlas.analysis.corpus import run_corpus, stream

    windows = Windows(_stream(6, seed=6), CONTEXT)
    settings = S.ScanSettings(context=CONTEXT, top_k=3, min_token_count=2)
    plan, states = _scan(tiny_model, windows, settings)
    job = S.job(tiny_model, windows, settings, batch_tokens=2 * CONTEXT)
    _assert_same(stream(tiny_model, job), S.merge(states))
    contents = run_corpus(tiny_model, job)
    assert contents == S.finish(S.merge(states), tiny_model, windows, plan)


def test_moments_and_active_counts_stay_float32_under_a_bfloat16_scans_autocast():
    from gpt2atlas.atlas.collect import _moments

    torch.manual_seed(0)
    x = torch.nn.functional.gelu(torch.randn(500, 64) * 2)
    x[0] = 0.0  # exact zeros are not active
    ones = torch.ones(1, 500)
    ones[0, :3] = 0  # positions weighted 0 are left out
    kept = x[3:].double()
    d = kept - kept.mean(0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        moments, active = _moments(x, ones, torch.empty(500, 5, 64))
    np.testing.assert_allclose(moments[:, 0], kept.mean(0), rtol=1e-6, atol=1e-7)
    for power in (2, 3, 4):
        np.testing.assert_allclose(moments[:, power - 1], (d**power).sum(0), rtol=1e-5, atol=1e-4)
    assert active.tolist() == (kept > 0).sum(0).tolist()
