"""The geometry analysis end to end: corpus, extraction, planted structure found, findings, figures, CLI."""

from __future__ import annotations

import json
import math
import sys
import types

import numpy as np
import pytest
import torch

from conftest import TINY, random_model
from gpt2atlas.areas import figures_of
from gpt2atlas.errors import InputError
from gpt2atlas.geometry import corpus as corpus_module
from gpt2atlas.geometry.analysis import GeometryResult, analyze
from gpt2atlas.geometry.corpus import (
    default_corpus,
    docstring_paragraphs,
    sample_texts,
    texts_from_dataset,
    texts_from_path,
)
from gpt2atlas.geometry.estimators import gram_log_volume
from gpt2atlas.geometry.extraction import extract_clouds, measurement_sites
from gpt2atlas.geometry.findings import LayerRow
from gpt2atlas.model import save_checkpoint

ROW_KEYS = {
    "layer",
    "cloud",
    "n_points",
    "twonn_id",
    "twonn_err",
    "gride",
    "pca_id_90",
    "participation_ratio",
    "mean_norm",
    "mean_cosine",
}
FIGURES = {
    "id_vs_layer",
    "id_vs_scale",
    "pca_spectra",
    "pca_components",
    "norm_anisotropy",
    "text_distances",
    "tsne_3d",
    "gram_log_volume",
}


def random_texts(model, n: int, seed: int = 0) -> list[str]:
    """n texts of 6 to 40 random tokens (decoded; re-encoding may split them a little differently)."""
    rng = np.random.default_rng(seed)
    return [model.tokenizer.decode(rng.integers(0, 50000, size=rng.integers(6, 41)).tolist()) for _ in range(n)]


def planted_model():
    """Token vectors on a 3-dim Gaussian in a subspace orthogonal to (1, ..., 1), no position embedding, no
    attention output; block 0's MLP bends the 3-dim cloud into many more linear dimensions; block 1 adds nothing.

    So the residual stream has intrinsic dimension 3 at every layer while PCA needs 3 components at the
    embedding and many after block 0; ln1's output is the cloud's directions (a 2-sphere: dimension 2).
    """
    model = random_model(TINY, seed=1)
    gen = torch.Generator().manual_seed(0)
    d = TINY.d_model
    basis = torch.linalg.qr(torch.cat([torch.ones(d, 1), torch.randn(d, 3, generator=gen)], dim=1))[0][:, 1:]
    with torch.no_grad():
        model.embed.W_E.copy_(torch.randn(TINY.d_vocab, 3, generator=gen) @ basis.T)
        model.pos_embed.W_pos.zero_()
        for block in model.blocks:
            block.attn.W_O.zero_()
            block.attn.b_O.zero_()
        model.blocks[0].mlp.W_in.copy_(torch.randn(d, TINY.d_mlp, generator=gen) * 0.3)
        model.blocks[0].mlp.W_out.copy_(torch.randn(TINY.d_mlp, d, generator=gen) * 0.01)
        model.blocks[1].mlp.W_out.zero_()
        model.blocks[1].mlp.b_out.zero_()
    return model


@pytest.fixture(scope="module")
def planted():
    model = planted_model()
    texts = random_texts(model, 400)
    result = analyze(model, texts=texts, substeps=True, all_tokens_budget=2000, max_tokens=32, progress=False)
    return model, texts, result


def row(result: GeometryResult, cloud: str, layer: int, substep: str = "resid") -> LayerRow:
    return next(r for r in result.findings.layers if r.cloud == cloud and r.layer == layer and r.substep == substep)


# ----- corpus ------------------------------------------------------------------------------------------------
def test_default_corpus_is_large_deterministic_and_clean():
    corpus = default_corpus(2500)
    assert len(corpus.texts) == 2500 and corpus.info.n_available >= 2000
    assert corpus.info.name == "python-stdlib-docstrings"
    assert len(set(corpus.texts)) == len(corpus.texts)
    assert all(80 <= len(t) <= 1200 and ">>>" not in t and "\n" not in t for t in corpus.texts)
    assert default_corpus(2500).texts == corpus.texts
    assert default_corpus(2500, seed=1).texts != corpus.texts


def test_docstring_paragraphs_are_read_without_importing():
    source = '''"""Module docstring that is long enough to count as a paragraph of real prose text, surely.

    >>> print("a doctest is not prose and is dropped from the corpus of texts")
    """
    raise SystemExit("never imported")
    def f():
        """Short."""
    '''.replace("\n    ", "\n")
    assert docstring_paragraphs(source) == [
        "Module docstring that is long enough to count as a paragraph of real prose text, surely."
    ]
    assert docstring_paragraphs("def broken(:") == []


def test_sample_texts_dedupes_keeps_order_and_is_seeded():
    texts = [f"text {i}" for i in range(100)] + ["text 3", "", "  "]
    sample, n = sample_texts(texts, 10, seed=0)
    assert len(sample) == 10 and len(set(sample)) == 10
    assert sample_texts(texts, 100)[1] == 100  # exact while every distinct text fits
    assert sample == sorted(sample, key=lambda t: int(t.split()[1]))
    assert sample == sample_texts(texts, 10, seed=0)[0] != sample_texts(texts, 10, seed=1)[0]
    assert sample_texts(texts, 1000)[0] == [f"text {i}" for i in range(100)]


def test_sample_texts_is_uniform_and_estimates_the_distinct_count_in_bounded_memory():
    stream = (f"text {i % 40_000}" for i in range(80_000))  # 40,000 distinct texts, each twice
    sample, n = sample_texts(stream, 2000, seed=3)
    assert len(sample) == len(set(sample)) == 2000
    assert abs(n - 40_000) < 0.1 * 40_000  # k-minimum-values estimate, ~2% at k = 2,000
    ids = np.array([int(t.split()[1]) for t in sample])
    assert abs(ids.mean() - 20_000) < 1_000 and (ids < 20_000).mean() == pytest.approx(0.5, abs=0.05)


def test_texts_from_file_and_folder(tmp_path):
    file = tmp_path / "texts.txt"
    file.write_text("first text\n\nsecond text\nfirst text\n")
    assert texts_from_path(file, 10).texts == ["first text", "second text"]
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "b.txt").write_text("text b\nwith two lines")
    (folder / "a.txt").write_text("text a")
    assert texts_from_path(folder, 10).texts == ["text a", "text b\nwith two lines"]
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(InputError, match="no non-empty text"):
        texts_from_path(tmp_path / "empty.txt", 10)
    with pytest.raises(InputError, match="no such file"):
        texts_from_path(tmp_path / "missing.txt", 10)


@pytest.fixture
def hub_up(monkeypatch):
    monkeypatch.setattr(corpus_module, "hub_reachable", lambda: True)


def test_dataset_texts(monkeypatch, hub_up):
    rows = [{"text": "first row"}, {"text": "  "}, {"text": "second row"}, {"label": 3}]
    calls = []

    def load_dataset(path, config, split, streaming):
        calls.append((path, config, split, streaming))
        return iter(rows)

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    corpus = texts_from_dataset("wikitext:wikitext-2-raw-v1", 10)
    assert corpus.texts == ["first row", "second row"] and corpus.info.name == "wikitext:wikitext-2-raw-v1"
    assert calls == [("wikitext", "wikitext-2-raw-v1", "train", True)]


def test_dataset_errors_are_one_clear_line(monkeypatch, hub_up):
    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'some/data' on the Hub (LocalEntryNotFoundError)\nmore detail")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=offline))
    with pytest.raises(
        InputError,
        match=r"^dataset=some/data cannot be loaded \(Couldn't reach .*Hub \(Local\w+\)\): give a dataset NAME",
    ):
        texts_from_dataset("some/data", 10)


def test_unreachable_hub_fails_at_once_unless_the_dataset_is_local(monkeypatch, tmp_path):
    monkeypatch.setattr(corpus_module, "hub_reachable", lambda: False)
    local_rows = types.SimpleNamespace(load_dataset=lambda *args, **kwargs: iter([{"text": "x"}]))
    monkeypatch.setitem(sys.modules, "datasets", local_rows)
    with pytest.raises(InputError, match=r"^dataset=some/data cannot be loaded: the Hugging Face hub is unreachable"):
        texts_from_dataset("some/data", 10)
    assert texts_from_dataset(str(tmp_path), 10).texts == ["x"]  # a local dataset folder needs no hub


# ----- extraction --------------------------------------------------------------------------------------------
def test_extraction_matches_run_with_cache_at_every_sampled_point(tiny_model):
    texts = random_texts(tiny_model, 12, seed=3) + ["x"]  # the last is too short (1 token)
    sites = measurement_sites(TINY.n_layer, substeps=True)
    clouds = extract_clouds(
        tiny_model, texts, sites, max_tokens=20, all_tokens_budget=60, batch_tokens=50, progress=False
    )
    assert clouds.n_skipped_short == 1
    assert clouds.points["all_tokens"].shape == (len(sites), 60, TINY.d_model)
    assert clouds.points["last_token"].shape[1] == 12
    assert (clouds.origins["all_tokens"][:, 1] >= 1).all()  # position 0 left out
    assert len({tuple(o) for o in clouds.origins["all_tokens"]}) == 60  # without replacement
    caches = [
        tiny_model.run_with_cache(tiny_model.tokenizer.encode(t)[:20], names=[s.hook for s in sites])[1]
        for t in texts[:-1]
    ]
    for cloud, origins in clouds.origins.items():
        for j, (text, position) in enumerate(origins):
            cache = caches[text]
            if cloud == "last_token":
                assert position == cache[sites[0].hook].shape[1] - 1
            for i, site in enumerate(sites):
                expected = cache[site.hook][0, position].numpy()
                np.testing.assert_allclose(clouds.points[cloud][i, j], expected, atol=2e-5, rtol=1e-4)


def test_include_first_and_budget_larger_than_the_tokens(tiny_model):
    texts = ["one two three four", "five six seven"]
    sites = measurement_sites(TINY.n_layer)
    clouds = extract_clouds(
        tiny_model, texts, sites, max_tokens=64, all_tokens_budget=1000, include_first=True, progress=False
    )
    lengths = [len(tiny_model.tokenizer.encode(t)) for t in texts]
    assert len(clouds.origins["all_tokens"]) == sum(lengths)
    assert (clouds.origins["all_tokens"][:, 1] == 0).sum() == 2


# ----- the planted model -------------------------------------------------------------------------------------
def test_planted_dimension_is_found_at_every_layer(planted):
    _, _, result = planted
    for layer in range(TINY.n_layer + 1):
        r = row(result, "all_tokens", layer)
        assert abs(r.twonn_id - 3) < max(0.3, 3 * r.twonn_err), (layer, r.twonn_id)
    last = row(result, "last_token", 1)
    assert abs(last.twonn_id - 3) < max(0.45, 3 * last.twonn_err)


def test_planted_linear_versus_nonlinear_dimension(planted):
    """PCA sees 3 dimensions at the embedding and many after the MLP bends the cloud; TwoNN sees 3 throughout."""
    _, _, result = planted
    embedding, after = row(result, "all_tokens", 0), row(result, "all_tokens", 1)
    assert embedding.pca_id_90 <= 3 and embedding.pca_components["95"] == 3
    assert embedding.participation_ratio <= 3
    assert after.pca_id_90 >= 5 and after.pca_components["95"] >= 6
    assert row(result, "all_tokens", 2).pca_id_90 == after.pca_id_90  # block 1 adds nothing


def test_planted_substeps(planted):
    _, _, result = planted
    sphere = row(result, "all_tokens", 0, "ln1_normalized")  # LayerNorm keeps only the directions
    assert abs(sphere.twonn_id - 2) < max(0.2, 3 * sphere.twonn_err)
    assert sphere.mean_norm == pytest.approx(math.sqrt(TINY.d_model), rel=1e-3)
    attention = row(result, "all_tokens", 0, "attn_out")  # all zero: one distinct point, no distance estimate
    assert attention.n_points == 1 and math.isnan(attention.twonn_id) and attention.mean_norm == 0
    mlp = row(result, "all_tokens", 0, "mlp_out")  # a function of the directions only
    assert abs(mlp.twonn_id - 2) < max(0.25, 3 * mlp.twonn_err)


def test_findings_layout(planted):
    _, texts, result = planted
    findings = json.loads(result.to_json())
    rows = findings["layers"]
    n_sites = (TINY.n_layer + 1) + 4 * TINY.n_layer
    assert len(rows) == 2 * n_sites
    assert all(ROW_KEYS <= set(r) for r in rows)
    assert {r["cloud"] for r in rows} == {"last_token", "all_tokens"}
    assert all(set(r["gride"]) >= {"scales", "ids"} for r in rows)
    assert row(result, "all_tokens", 1).gride.scales == sorted(row(result, "all_tokens", 1).gride.scales)
    assert findings["corpus"]["name"] == "user texts"
    assert findings["n_texts"] == len(texts)
    assert row(result, "all_tokens", 0).n_duplicates > 0  # the same token twice: the same vector
    assert findings["focus_layer"] in range(TINY.n_layer + 1)
    distances = np.array(findings["text_distances"]["euclidean"])
    assert distances.shape == (40, 40) and np.allclose(distances, distances.T) and np.allclose(np.diag(distances), 0)
    assert len(findings["tsne"]["coords"]) == 400
    assert findings["gram"]["log_volume"][0] == "-Infinity"  # more than 3 tokens on a 3-dim cloud: volume 0
    assert {"extraction_s", "estimation_s", "total_s"} <= set(findings["timing"])
    assert findings["memory"]["peak_rss_mb"] > 0
    assert [r.layer for r in result.rows("last_token")] == list(range(TINY.n_layer + 1))
    saved = GeometryResult.from_json(result.to_json())  # from the saved JSON alone (NaN and -inf as their marks)
    assert saved.findings.gram.log_volume[0] == -math.inf
    redrawn = figures_of(saved)
    assert set(redrawn) == FIGURES


def test_gram_volume_and_focus_layer_on_a_random_model(tiny_model):
    texts = random_texts(tiny_model, 60, seed=5)
    prompt = "The cat sat on the mat because it was warm."
    result = analyze(tiny_model, prompt, texts=texts, layer=2, all_tokens_budget=300, progress=False)
    gram = result.findings.gram
    ids = tiny_model.tokenizer.encode(prompt)
    _, cache = tiny_model.run_with_cache(ids, names=["blocks.1.hook_resid_post"])
    vectors = cache["blocks.1.hook_resid_post"][0, 1:].double().numpy()
    assert gram.layers == [0, 1, 2] and gram.first_position == 1
    assert gram.log_volume[2] == pytest.approx(gram_log_volume(vectors), rel=1e-6)
    assert gram.log_volume_unit[2] == pytest.approx(gram_log_volume(vectors, unit=True), rel=1e-6)
    assert result.findings.focus_layer == result.findings.text_distances.layer == 2
    with pytest.raises(InputError, match="layer="):
        analyze(tiny_model, texts=texts, layer=3, progress=False)


def test_figures_escape_user_text(tiny_model):
    texts = ["<script>alert(1)</script> is not " + t for t in random_texts(tiny_model, 30, seed=6)]
    result = analyze(tiny_model, texts=texts, all_tokens_budget=200, progress=False)
    figures = figures_of(result)
    assert set(figures) == FIGURES
    dumped = figures["text_distances"].to_json() + figures["tsne_3d"].to_json() + figures["gram_log_volume"].to_json()
    assert "<script>" not in dumped and "&lt;script&gt;" in dumped


# ----- CLI ---------------------------------------------------------------------------------------------------
def test_cli_geometry_end_to_end(tmp_path, capsys):
    from gpt2atlas.cli.main import main

    model = planted_model()
    checkpoint = save_checkpoint(model, tmp_path / "planted")
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(t.replace("\n", " ") for t in random_texts(model, 300, seed=7)))
    out = tmp_path / "out"
    code = main(
        [
            "geometry",
            "--model",
            str(checkpoint),
            "--texts",
            str(texts),
            "--max-texts",
            "200",
            "--budget",
            "1200",
            "--max-tokens",
            "24",
            "--out",
            str(out),
            "--no-png",
        ]
    )
    assert code == 0
    findings = json.loads((out / "geometry" / "findings.json").read_text())
    assert findings["n_texts"] == 200 and findings["settings"]["all_tokens_budget"] == 1200
    assert findings["corpus"]["description"] == "file, one text per line"
    assert len(findings["layers"]) == 2 * (TINY.n_layer + 1)  # no --substeps
    r = next(r for r in findings["layers"] if r["cloud"] == "all_tokens" and r["layer"] == 1)
    assert abs(r["twonn_id"] - 3) < max(0.35, 3 * r["twonn_err"])
    assert {p.stem for p in (out / "geometry").glob("*.html")} == FIGURES
    assert "geometry" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--layer", "7"], "--layer 7 must be between 0 and 2"),
        (["--texts", "/nonexistent/texts.txt"], "no such file"),
        (["--prompt", " "], "the prompt is empty"),
        (["--max-tokens", "1"], "--max-tokens 1 must be between 2"),
        (["--dataset", "some/data"], "and --dataset some/data were both given: give one of them"),
        (["--prompt", "Hi"], "needs at least 2 tokens"),
    ],
)
def test_cli_geometry_errors(tmp_path, capsys, tiny_checkpoint, args, message):
    from gpt2atlas.cli.main import main

    texts = tmp_path / "texts.txt"
    texts.write_text("one text that is long enough\nand another one\n")
    base = ["geometry", "--model", str(tiny_checkpoint), "--texts", str(texts), "--out", str(tmp_path), "--no-png"]
    assert main(base + args) == 1
    err = capsys.readouterr().err
    assert "error: " in err and message in err and "Traceback" not in err


def test_a_one_token_gram_prompt_is_refused_before_any_extraction(tiny_model, monkeypatch):
    import gpt2atlas.geometry.analysis as geometry

    def must_not_run(*args, **kwargs):
        raise AssertionError("extraction started before the prompt was checked")

    monkeypatch.setattr(geometry, "plan_clouds", must_not_run)
    with pytest.raises(InputError, match="needs at least 2 tokens"):
        geometry.analyze(tiny_model, texts=["one text", "another text"], prompt="Hi")


def test_gride_curve_has_a_gap_where_rank_8_was_not_measured():
    from gpt2atlas.geometry.estimators import IDScaling
    from gpt2atlas.viz.geometry import _gride_at

    small = IDScaling(scales=[1.0, 2.0, 3.0], ids=[3.0, 3.1, 3.2], errs=[0.1, 0.1, 0.1], ranks=[1, 2, 4])
    large = IDScaling(
        scales=[1.0, 2.0, 3.0, 4.0], ids=[3.0, 3.1, 3.2, 3.3], errs=[0.1, 0.1, 0.1, 0.2], ranks=[1, 2, 4, 8]
    )
    assert _gride_at(small) == (None, None)
    assert _gride_at(large) == (3.3, 0.2)


def test_progress_is_reported_stage_by_stage():
    calls: list[tuple[str, int, int]] = []
    texts = [f"Text number {i} says something about lamps and {i % 7} boats." for i in range(40)]
    analyze(
        random_model(),
        texts=texts,
        max_texts=40,
        all_tokens_budget=200,
        gride_max_rank=8,
        progress=False,
        on_progress=lambda stage, done, total: calls.append((stage, done, total)),
    )
    stages = list(dict.fromkeys(stage for stage, _, _ in calls))
    assert stages == ["extracting", "estimating", "control"]
    for stage in stages:
        mine = [(done, total) for s, done, total in calls if s == stage]
        assert [d for d, _ in mine] == sorted(d for d, _ in mine)  # never goes back
        assert all(0 <= d <= t for d, t in mine)
    assert calls[-1] == ("control", 1, 1)
    extracting = [c for c in calls if c[0] == "extracting"]
    assert extracting[-1][1] == extracting[-1][2]  # every text read
