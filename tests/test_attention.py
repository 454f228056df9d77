"""Attention heads: score formulas, and planted previous-token, BOS and induction heads found by the analysis."""

import json
import math

import pytest
import torch

from conftest import random_model
from gpt2atlas.analysis import attention
from gpt2atlas.areas import area, figures_of
from gpt2atlas.cli.main import main
from gpt2atlas.errors import InputError
from gpt2atlas.model import GPT2Config

PLANTED_CFG = GPT2Config(n_layer=2, n_head=4, d_model=128, n_ctx=64)
POS_DIMS = slice(0, 32)  # sinusoidal position code (16 frequencies)
TOKEN_DIMS = slice(32, 64)  # random token code
COPY_DIMS = slice(64, 96)  # where the previous-token head writes the previous token's code
BOS_DIM = 96  # large only at position 0
PREV, BOS, INDUCTION = (0, 1), (0, 2), (1, 3)


def _head_columns(model, layer, head, which):
    """Column slice of W_QKV for one head's Q (0), K (1) or V (2)."""
    d_model, d_head = model.cfg.d_model, model.cfg.d_head
    start = which * d_model + head * d_head
    return slice(start, start + d_head)


def planted_model():
    """Layer 0: a previous-token head (Q rotates the position code back one step) and a BOS head (constant query,
    keys read a dim set only at position 0). Layer 1: an induction head whose query (this token) matches keys
    holding the previous token, written by the layer-0 head."""
    model = random_model(PLANTED_CFG, seed=1)
    cfg, eye = model.cfg, torch.eye(32)
    gen = torch.Generator().manual_seed(2)
    n_freq = cfg.d_head // 2
    omega = 2 * math.pi * torch.arange(1, n_freq + 1) / cfg.n_ctx
    angle = torch.arange(cfg.n_ctx)[:, None] * omega
    rotate_back = torch.zeros(2 * n_freq, 2 * n_freq)  # x @ R turns (cos wp, sin wp) into (cos w(p-1), sin w(p-1))
    for i, w in enumerate(omega):
        rotate_back[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = torch.tensor([[w.cos(), -w.sin()], [w.sin(), w.cos()]])
    with torch.no_grad():
        model.W_E.zero_()
        model.W_E[:, TOKEN_DIMS] = torch.randn(cfg.d_vocab, 32, generator=gen)
        model.W_pos.zero_()
        model.W_pos[:, 0:32:2] = 1.5 * angle.cos()
        model.W_pos[:, 1:32:2] = 1.5 * angle.sin()
        model.W_pos[0, BOS_DIM] = 6.0
        # (layer, head): (rows read by the query, query matrix, rows read by the key)
        planted_qk = {PREV: (POS_DIMS, 5.0 * rotate_back, POS_DIMS), INDUCTION: (TOKEN_DIMS, 3.0 * eye, COPY_DIMS)}
        for (layer, head), (q_rows, query, k_rows) in planted_qk.items():
            attn = model.blocks[layer].attn
            for which in range(3):
                attn.W_QKV[:, _head_columns(model, layer, head, which)] = 0.0
            attn.W_QKV[q_rows, _head_columns(model, layer, head, 0)] = query
            attn.W_QKV[k_rows, _head_columns(model, layer, head, 1)] = eye
        prev_attn = model.blocks[PREV[0]].attn
        prev_attn.W_QKV[TOKEN_DIMS, _head_columns(model, *PREV, 2)] = eye
        prev_attn.W_O[PREV[1] * 32 : PREV[1] * 32 + 32] = 0.0
        prev_attn.W_O[PREV[1] * 32 : PREV[1] * 32 + 32, COPY_DIMS] = eye
        bos_attn = model.blocks[BOS[0]].attn
        for which in range(2):
            bos_attn.W_QKV[:, _head_columns(model, *BOS, which)] = 0.0
        bos_attn.b_QKV[_head_columns(model, *BOS, 0).start] = 10.0
        bos_attn.W_QKV[BOS_DIM, _head_columns(model, *BOS, 1).start] = 1.0
    return model


@pytest.fixture(scope="module")
def planted():
    model = planted_model()
    return model, attention.analyze(model, "The quick brown fox jumps over the lazy dog because it was bored.")


def _top(heads, score):
    best = max(heads, key=lambda r: r.score(score))
    return (best.layer, best.head), best.score(score)


def test_planted_heads_top_their_scores(planted):
    _, result = planted
    heads = result.findings.heads
    assert _top(heads, "prev_token")[0] == PREV and _top(heads, "prev_token")[1] > 0.95
    assert _top(heads, "bos")[0] == BOS and _top(heads, "bos")[1] > 0.95
    assert _top(heads, "induction")[0] == INDUCTION and _top(heads, "induction")[1] > 0.9
    others = [r.prev_token for r in heads if (r.layer, r.head) != PREV]
    assert max(others) < 0.5
    roles = result.findings.roles
    assert [(r.layer, r.head) for r in roles["previous_token"]] == [PREV]
    assert [(r.layer, r.head) for r in roles["induction"]] == [INDUCTION]
    assert (BOS[0], BOS[1]) in [(r.layer, r.head) for r in roles["bos_sink"]]
    assert result.findings.selected_head == attention.SelectedHead(PREV[0], PREV[1], "highest prev_token score")
    assert result.findings.attention_sink.by_layer[0] > 0.25  # the BOS head alone adds 1/4 in layer 0


def test_scores_match_a_direct_computation_on_the_model(planted):
    model, result = planted
    tokens = model.to_tokens(result.findings.token_ids)
    _, cache = model.run_with_cache(tokens, names=["blocks.0.attn.hook_pattern"])
    pattern = cache["blocks.0.attn.hook_pattern"][0, PREV[1]]
    n = pattern.shape[0]
    row = next(r for r in result.findings.heads if (r.layer, r.head) == PREV)
    assert row.prev_token == pytest.approx(sum(pattern[q, q - 1].item() for q in range(1, n)) / (n - 1), abs=1e-5)
    assert row.bos == pytest.approx(pattern[1:, 0].mean().item(), abs=1e-5)
    entropy = -sum((p[p > 0] * p[p > 0].log()).sum().item() for p in pattern[1:]) / (n - 1)
    assert row.entropy == pytest.approx(entropy, abs=1e-4)


def test_score_formulas_on_constructed_patterns():
    half = 5
    n = 2 * half + 1
    induction = torch.zeros(n, n)
    duplicate = torch.zeros(n, n)
    for q in range(n):
        induction[q, q - half + 1 if q > half else 0] = 1.0
        duplicate[q, q - half if q > half else 0] = 1.0
    stacked = torch.stack([induction, duplicate])
    scores = attention.repeat_scores(stacked, half)
    assert scores["induction"].tolist() == [1.0, 0.0]
    assert scores["duplicate"].tolist() == [0.0, 1.0]

    previous = torch.zeros(n, n)
    previous[0, 0] = 1.0
    previous[torch.arange(1, n), torch.arange(0, n - 1)] = 1.0
    p = attention.prompt_scores(previous)
    assert p["prev_token"] == 1.0 and p["self"] == 0.0 and p["entropy"] == 0.0
    assert p["bos"] == pytest.approx(1 / (n - 1))  # only query 1, whose previous token is position 0

    uniform = attention.prompt_scores(attention.uniform_pattern(n))
    expected_entropy = sum(math.log(q + 1) for q in range(1, n)) / (n - 1)
    assert uniform["entropy"] == pytest.approx(expected_entropy, rel=1e-5)
    assert uniform["prev_token"] == pytest.approx(uniform["bos"]) == pytest.approx(uniform["self"])


def test_short_prompts_name_no_role_by_chance(tiny_model):
    result = attention.analyze(tiny_model, "Hi there")
    assert all(not named for named in result.findings.roles.values())
    one = attention.analyze(tiny_model, "Hi")
    assert all(math.isnan(r.prev_token) for r in one.findings.heads)
    assert json.loads(one.to_json())["heads"][0]["prev_token"] == "NaN"


def test_findings_record_what_was_analysed(tiny_model):
    prompt = "The cat sat on the mat"
    result = attention.analyze(tiny_model, prompt, prepend_bos=True, repeat_half=7, repeat_batch=3)
    f = result.findings
    assert f.token_ids == [50256] + tiny_model.tokenizer.encode(prompt)
    assert f.tokens == tiny_model.tokenizer.to_str_tokens(f.token_ids)
    assert len(f.heads) == 2 * 4 and all(not math.isnan(f.heads[0].score(s)) for s in attention.SCORES)
    ids = torch.tensor(f.induction_token_ids)
    assert ids.shape == (3, 15) and (ids[:, 0] == 50256).all() and torch.equal(ids[:, 1:8], ids[:, 8:])
    assert all(len(set(row[1:8])) == 7 for row in ids.tolist())
    last = f.last_token_attention
    assert len(last.by_layer) == 2 and all(sum(row) == pytest.approx(1.0, abs=1e-5) for row in last.by_layer)
    assert len(f.attention_sink.by_layer) == 2


def test_out_of_range_layer_or_head_is_an_input_error(tiny_model):
    with pytest.raises(InputError, match="layer=2 is out of range"):
        attention.analyze(tiny_model, "hello", layer=2)
    with pytest.raises(InputError, match="head=-1 is out of range"):
        attention.analyze(tiny_model, "hello", head=-1)


def test_figures_escape_prompt_text(tiny_model):
    result = attention.analyze(tiny_model, "a <script>alert(1)</script> b", layer=1, head=3, repeat_half=4)
    figures = figures_of(result)
    assert set(figures) == {
        "head_pattern",
        "layer_heads",
        "head_scores",
        "lines",
        "batch_mean_patterns",
        "sink_and_last_token",
        "prompt_induction",  # the prompt repeats "<", "script" and ">"
    }
    for fig in figures.values():
        assert "<script>" not in fig.to_json()
    assert result.findings.selected_head == attention.SelectedHead(1, 3, "user")


def test_cli_writes_findings_and_rejects_bad_head(tmp_path, tiny_checkpoint, capsys):
    out = tmp_path / "out"
    code = main(
        [
            "attention",
            "--model",
            str(tiny_checkpoint),
            "--prompt",
            "One two three four",
            "--out",
            str(out),
            "--no-png",
            "--layer",
            "1",
        ]
    )
    assert code == 0
    findings = json.loads((out / "attention" / "findings.json").read_text())
    assert findings["selected_head"]["layer"] == 1 and len(findings["heads"]) == 8
    assert (out / "attention" / "head_pattern.html").exists()
    capsys.readouterr()
    code = main(["attention", "--model", str(tiny_checkpoint), "--prompt", "x", "--out", str(out), "--head", "4"])
    err = capsys.readouterr().err
    assert code == 1 and err.strip().splitlines() == ["error: --head 4 is out of range: this model has 4 heads (0..3)"]


def test_long_prompts_rerun_only_the_selected_layer(tiny_model, monkeypatch):
    kept = attention.analyze(tiny_model, "a b c d e f", layer=1, repeat_half=3)
    monkeypatch.setattr(attention, "KEEP_ALL_PATTERNS", 0)
    rerun = attention.analyze(tiny_model, "a b c d e f", layer=1, repeat_half=3)
    assert torch.allclose(kept.layer_patterns, rerun.layer_patterns, atol=1e-6)
    assert kept.findings.heads == rerun.findings.heads


def test_induction_targets_are_the_tokens_after_earlier_copies():
    from gpt2atlas.analysis.attention import induction_targets

    # A B C A B A A: q=3 (A) -> 1 (B); q=4 (B) -> 2; q=5 (A) -> 1, 4; q=6 (A) -> 1, 4 (not 6: that is itself)
    assert induction_targets([0, 1, 2, 0, 1, 0, 0]) == [(3, [1]), (4, [2]), (5, [1, 4]), (6, [1, 4])]
    assert induction_targets([5, 6, 7]) == []


def test_a_planted_induction_pattern_scores_one_and_uniform_scores_its_baseline():
    from gpt2atlas.analysis.attention import (
        _prompt_induction,
        induction_targets,
        prompt_induction_scores,
        target_mask,
        uniform_pattern,
    )

    ids = [7, 8, 9, 7, 8, 9, 7]
    targets = induction_targets(ids)
    rows, mask = target_mask(targets, len(ids))
    planted = uniform_pattern(len(ids)).clone()
    for q, keys in targets:
        planted[q] = 0
        planted[q, keys] = 1 / len(keys)
    scores = prompt_induction_scores(torch.stack([uniform_pattern(len(ids)), planted]), rows, mask)
    assert scores[1] == pytest.approx(1.0)
    found = _prompt_induction(scores.reshape(1, 2), targets)
    assert found.best is not None and (found.best.layer, found.best.head) == (0, 1)
    assert found.best.score == pytest.approx(1.0)
    assert scores[0] == pytest.approx(found.uniform_baseline)  # the baseline is what a uniform head scores


def test_induction_on_the_prompt_is_read_against_a_uniform_head():
    from gpt2atlas import load_model
    from gpt2atlas.analysis.attention import analyze
    from gpt2atlas.areas import figures_of

    prompt = "def add(a, b):\n    return a + b\n\ndef add(a, b):\n    return a + b"
    trained = analyze(load_model("mini"), prompt, repeat_batch=2)
    found = trained.findings.prompt_induction
    assert found.best is not None and found.uniform_baseline is not None
    assert found.best.score > 3 * found.uniform_baseline  # mini: 0.34 vs 0.07
    assert any("(induction)" in s and "beyond chance" in s for s in area("attention").read(trained.findings))
    assert "prompt_induction" in figures_of(trained)
    noise = analyze(random_model(), prompt, repeat_batch=2)
    assert any("(induction)" in s and "within chance" in s for s in area("attention").read(noise.findings))
    plain = analyze(random_model(), "one two three", repeat_batch=2)
    assert "prompt_induction" not in figures_of(plain)
    assert any(s.startswith("The prompt repeats no token") for s in area("attention").read(plain.findings))
