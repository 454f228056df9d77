"""Requests are sized before they are spent: what does not fit is refused in one line or done in pieces.

The available memory is monkeypatched: nothing here allocates more than a few MB.
"""

from __future__ import annotations

import numpy as np
import pytest

import gpt2atlas.resources as resources
from gpt2atlas.analysis import embeddings
from gpt2atlas.cli.main import main
from gpt2atlas.errors import InputError
from gpt2atlas.geometry import analysis as geometry
from gpt2atlas.geometry.tsne import tsne, tsne_bytes
from gpt2atlas.model import generation

PROMPT = "The river ran past the"
GB = 10**9


def machine_with(monkeypatch, nbytes: float) -> None:
    monkeypatch.setattr(resources, "available_bytes", lambda device=None: int(nbytes))


def test_the_estimate_grows_with_samples_length_and_vocabulary(tiny_model, monkeypatch):
    machine_with(monkeypatch, 1e15)
    assert generation.batch_size(tiny_model, 7, 5, 20) == 7  # everything fits: one batch, as before
    machine_with(monkeypatch, 1e8)  # 100 MB: a tiny-model sample needs ~2.4 MB (its vocabulary-wide rows)
    per_sample = generation.STEP_BYTES_PER_VOCAB_ENTRY * tiny_model.cfg.d_vocab
    batch = generation.batch_size(tiny_model, 1000, 5, 20)
    assert 1 < batch < 1000
    assert batch == pytest.approx(resources.HEADROOM * 1e8 / per_sample, rel=0.1)


def test_sampling_in_batches_gives_the_same_samples_token_for_token(tiny_model, monkeypatch):
    settings = dict(max_new_tokens=12, seed=7, num_samples=6, top_k=50, temperature=0.8, alternatives=3)
    whole = tiny_model.generate(PROMPT, **settings)
    batches: list[int] = []
    cache = generation.KVCache

    def recording(model, batch, max_len):
        batches.append(batch)
        return cache(model, batch, max_len)

    monkeypatch.setattr(generation, "KVCache", recording)
    monkeypatch.setattr(generation, "batch_size", lambda *args: 4)  # (the memory plan itself is tested above)
    pieces = tiny_model.generate(PROMPT, **settings)
    assert batches == [4, 2]
    assert pieces.new_tokens == whole.new_tokens and pieces.texts == whole.texts
    for mine, theirs in zip(pieces.token_probs, whole.token_probs, strict=True):
        assert mine == pytest.approx(theirs, rel=1e-5)
    assert pieces.top_tokens == whole.top_tokens
    assert len({tuple(t) for t in whole.new_tokens}) > 1


def test_low_memory_batches_the_samples_by_itself(tiny_model, monkeypatch):
    settings = dict(max_new_tokens=8, seed=3, num_samples=5, temperature=0.9)
    whole = tiny_model.generate(PROMPT, **settings)
    machine_with(monkeypatch, 3 * generation.STEP_BYTES_PER_VOCAB_ENTRY * tiny_model.cfg.d_vocab)
    batches: list[int] = []
    cache = generation.KVCache
    monkeypatch.setattr(generation, "KVCache", lambda m, b, n: batches.append(b) or cache(m, b, n))
    assert tiny_model.generate(PROMPT, **settings).new_tokens == whole.new_tokens
    assert batches == [2, 2, 1]


def test_one_sample_keeps_its_stream_and_seeds_do_not_share_samples(tiny_model):
    one = tiny_model.generate(PROMPT, max_new_tokens=10, seed=42, num_samples=1, stop_at_eos=False)
    three = tiny_model.generate(PROMPT, max_new_tokens=10, seed=42, num_samples=3, stop_at_eos=False)
    next_seed = tiny_model.generate(PROMPT, max_new_tokens=10, seed=43, num_samples=3, stop_at_eos=False)
    assert three.new_tokens[0] == one.new_tokens[0]  # sample 0 draws from the seed itself
    assert not set(map(tuple, three.new_tokens)) & set(map(tuple, next_seed.new_tokens))


def test_samples_that_cannot_fit_are_refused_before_anything_is_allocated(tiny_model, monkeypatch):
    machine_with(monkeypatch, 1 * GB)
    monkeypatch.setattr(generation, "KVCache", lambda *args: pytest.fail("allocated"))
    with pytest.raises(InputError) as caught:
        tiny_model.generate(PROMPT, max_new_tokens=100, num_samples=10**8)
    message = str(caught.value)
    assert message.startswith("num_samples=100000000 x max_new_tokens=100 needs about 1.28 TB of memory and 1 GB")
    assert message.endswith("lower num_samples= or max_new_tokens=")
    assert caught.value.arguments == ("num_samples", "max_new_tokens")


def test_the_command_line_refuses_a_huge_sampling_request_in_one_line(capsys):
    # the request the issue saw killed by the OS, larger: its results alone would need petabytes, on any machine
    code = main(["generate", "--model", "mini", "--prompt", "Hello", "--num-samples", "10000000000000"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in err
    assert err.startswith("error: --num-samples 10000000000000 x --max-new-tokens 30 needs about ")
    assert err.endswith("lower --num-samples or --max-new-tokens")


def test_tsne_refuses_what_its_n_by_n_matrices_cannot_hold(monkeypatch):
    assert tsne_bytes(50_257) > 100 * GB  # the whole vocabulary: the t-SNE someone might ask for
    machine_with(monkeypatch, tsne_bytes(1000) / resources.HEADROOM * 1.01)
    assert tsne(np.random.default_rng(0).normal(size=(100, 5)), 2, n_iter=10).shape == (100, 2)
    with pytest.raises(InputError, match="t-SNE of 2,000 points needs about 256 MB of memory"):
        tsne(np.zeros((2000, 5)), 2)


def test_the_embeddings_refuse_a_tsne_too_large_before_any_work(tiny_model, monkeypatch):
    machine_with(monkeypatch, 1 * GB)
    monkeypatch.setattr(embeddings, "vocabulary_stats", lambda *a, **k: pytest.fail("started the work"))
    with pytest.raises(InputError) as caught:
        embeddings.analyze(tiny_model, sample_size=50_000, manifold_size=50_000, projections=("tsne",))
    assert "t-SNE of 50,000 points needs about 160 GB" in str(caught.value)
    assert str(caught.value).endswith("lower manifold_size=50000") and caught.value.arguments == ("manifold_size",)


def test_geometry_refuses_clouds_that_do_not_fit_before_extracting(tiny_model, monkeypatch):
    texts = [f"Text number {i} about rivers, stones and lamps." for i in range(50)]
    monkeypatch.setattr(geometry, "extract_clouds", lambda *a, **k: pytest.fail("extracted"))
    machine_with(monkeypatch, 100e6)
    with pytest.raises(InputError) as caught:
        geometry.analyze(tiny_model, texts=texts, all_tokens_budget=10**9, max_tokens=128, progress=False)
    # 3 sites (embedding, 2 blocks) x (50 last tokens + 50 x 127 positions) x 64, and the control's 3 sites
    assert str(caught.value).startswith("measuring 3 sites x 6,400 points x d_model 64 needs about ")
    assert str(caught.value).endswith("lower all_tokens_budget= or max_texts= (or leave out substeps=)")


def test_geometry_within_memory_runs_as_before(tiny_model, monkeypatch):
    machine_with(monkeypatch, 1 * GB)
    texts = [f"Text number {i} about rivers, stones and lamps." for i in range(30)]
    result = geometry.analyze(tiny_model, texts=texts, all_tokens_budget=200, max_tokens=16, progress=False)
    assert result.findings.n_texts == 30


def test_a_container_limit_counts_when_it_leaves_less_than_the_machine(tmp_path, monkeypatch):
    limit, usage = tmp_path / "memory.max", tmp_path / "memory.current"
    limit.write_text("max\n")
    usage.write_text("5000\n")
    monkeypatch.setattr(resources, "CGROUP_FILES", ((limit, usage),))
    machine = resources.psutil.virtual_memory().available
    assert resources.available_bytes() == pytest.approx(machine, rel=0.2)
    limit.write_text("1000000\n")
    assert resources.available_bytes() == 995000
