"""The embedding analysis finds structure planted in W_E and W_pos, and its numbers match brute force."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import random_model
from gpt2atlas.analysis import embeddings as E
from gpt2atlas.analysis.base import to_jsonable
from gpt2atlas.areas import figures_of
from gpt2atlas.cli.main import main
from gpt2atlas.errors import InputError
from gpt2atlas.model import save_checkpoint
from gpt2atlas.numerics.neighbours import nearest_by_cosine
from gpt2atlas.viz.labels import token_labels

OFFSET_DIM, OFFSET = 17, 0.05
PLANTED_PERIODS = {5: 16.0, 23: 40.0, 41: 64.0}  # dim -> period in positions (n_ctx 128)
AMPLITUDE = 0.5
SLOW_DIMS = range(50, 57)  # smaller slow waves, so all ten active dims are smooth curves
FAST = {"sample_size": 200, "local_anchors": 20, "local_k": 30, "projections": ("pca",), "progress": False}


def planted_model(noise: float = 0.0, seed: int = 0):
    """Tiny model with an offset in one W_E column and sinusoids (plus optional jagged noise) in W_pos."""
    model = random_model(seed=seed)
    t = torch.arange(model.cfg.n_ctx, dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        model.W_E[:, OFFSET_DIM] += OFFSET
        for i, (dim, period) in enumerate(PLANTED_PERIODS.items()):
            column = AMPLITUDE * torch.sin(2 * torch.pi * t / period + i)
            model.W_pos[:, dim] = column + noise * torch.randn(model.cfg.n_ctx, generator=gen)
        for i, dim in enumerate(SLOW_DIMS):
            column = 0.3 * torch.cos(2 * torch.pi * t / (100 + 20 * i))
            model.W_pos[:, dim] = column + noise * torch.randn(model.cfg.n_ctx, generator=gen)
    return model


@pytest.fixture(scope="module")
def planted():
    model = planted_model()
    return model, E.analyze(model, "The king and the queen of <b>France</b>", **FAST)


def test_constant_offset_is_the_top_offset_dim(planted):
    _, report = planted
    top = report.findings.token_embedding.offset_dims
    assert top[0].dim == OFFSET_DIM
    assert top[0].mean == pytest.approx(OFFSET, abs=1e-3)
    assert top[0].z > 5 and abs(top[1].z) < 5
    assert len(top) == 10 and [abs(e.z) for e in top] == sorted((abs(e.z) for e in top), reverse=True)


def test_offset_z_is_standardised_mean():
    table = torch.randn(500, 12)
    table[:, 3] += 2.0
    means = table.double().mean(0).numpy()
    z = (means - means.mean()) / means.std()
    found = E.offset_dims(table, k=12)
    assert found[0].dim == 3
    for entry in found:
        assert entry.z == pytest.approx(z[entry.dim], rel=1e-9)


def test_planted_sinusoids_are_active_dims_with_their_periods(planted):
    _, report = planted
    position = report.findings.position_embedding
    assert {d.dim for d in position.active_dims[:3]} == set(PLANTED_PERIODS)
    found = {p.dim: p for p in position.periodicity}
    for dim, period in PLANTED_PERIODS.items():
        assert found[dim].period == pytest.approx(period, rel=0.03)
        assert found[dim].power_share > 0.95
    assert {d.dim for d in position.active_dims} == set(PLANTED_PERIODS) | set(SLOW_DIMS)
    assert position.smoothness < 0.2


def test_period_that_does_not_divide_the_length_is_found():
    t = np.arange(1024)
    column = np.cos(2 * np.pi * t / 37.3) + 0.2 * np.sin(2 * np.pi * t / 5.0)
    result = E.dominant_period(column)
    assert result.period == pytest.approx(37.3, rel=0.005)
    assert result.power_share == pytest.approx(1 / 1.04, abs=0.01)  # 1 of 1 + 0.2² of the power


def test_jagged_noise_lowers_smoothness(planted):
    _, clean = planted
    noisy = E.analyze(planted_model(noise=0.15), None, **FAST)
    smooth, jagged = (r.findings.position_embedding.smoothness for r in (clean, noisy))
    assert jagged > smooth + 0.2
    # a straight ramp is as smooth as it gets; white noise sits near sqrt(2)
    ramp = torch.linspace(0, 1, 500)[:, None]
    assert E.smoothness_ratios(ramp, [0])[0] == pytest.approx(4 / 500, rel=0.01)
    noise = torch.randn(20000, 1, generator=torch.Generator().manual_seed(0))
    assert E.smoothness_ratios(noise, [0])[0] == pytest.approx(np.sqrt(2), rel=0.03)


def test_neighbours_match_brute_force(planted):
    model, report = planted
    table = model.W_E.double().numpy()
    unit = table / np.linalg.norm(table, axis=1, keepdims=True)
    rows = report.findings.neighbours
    assert report.findings.neighbours_of == "prompt"
    prompt_ids = model.tokenizer.encode("The king and the queen of <b>France</b>")
    assert [r.id for r in rows] == list(dict.fromkeys(prompt_ids))
    for row in rows:
        cos = unit @ unit[row.id]
        cos[row.id] = -np.inf
        expected = np.argsort(-cos, kind="stable")[:10]
        assert [n.id for n in row.neighbours] == expected.tolist()
        assert [n.cosine for n in row.neighbours] == pytest.approx(cos[expected].tolist(), abs=1e-5)
        assert row.token == model.tokenizer.decode([row.id])


def test_neighbour_search_chunks_agree_and_can_keep_self():
    table = torch.randn(3000, 16, generator=torch.Generator().manual_seed(1))
    queries = list(range(0, 3000, 7))
    ids_a, sims_a = nearest_by_cosine(table, queries, 5, chunk=1000)
    ids_b, sims_b = nearest_by_cosine(table, queries, 5, chunk=13)
    assert torch.equal(ids_a, ids_b) and torch.allclose(sims_a, sims_b)
    with_self, sims = nearest_by_cosine(table, queries, 1, exclude_self=False)
    assert with_self[:, 0].tolist() == queries and torch.allclose(sims[:, 0], torch.ones(len(queries)), atol=1e-5)


def test_pca_matches_svd_and_finds_low_rank():
    gen = torch.Generator().manual_seed(2)
    low_rank = torch.randn(400, 3, generator=gen) @ torch.randn(3, 32, generator=gen)
    table = low_rank + 0.01 * torch.randn(400, 32, generator=gen)
    result = E.pca(table)
    s = np.linalg.svd((table - table.mean(0)).double().numpy(), compute_uv=False)
    assert result.ratio == pytest.approx(s**2 / (s**2).sum(), abs=1e-6)
    assert result.components_for() <= 3


def test_local_pca_matches_per_neighbourhood_svd():
    table = torch.randn(600, 20, generator=torch.Generator().manual_seed(3))
    anchors, k = [4, 99, 310], 25
    components, mean_ratio = E.local_pca(table, anchors, k)
    ids, _ = nearest_by_cosine(table, anchors, k - 1)
    ratios = []
    for anchor, row in zip(anchors, ids.tolist()):
        group = table[[anchor] + row].double().numpy()
        s = np.linalg.svd(group - group.mean(0), compute_uv=False)
        ratios.append(s**2 / (s**2).sum())
    assert components.tolist() == [E.components_for(r) for r in ratios]
    assert mean_ratio[: len(ratios[0])] == pytest.approx(np.mean(ratios, axis=0), abs=1e-6)


def test_position_zero_outlier_is_reported():
    model = random_model()
    with torch.no_grad():
        model.W_pos[0] *= 8
    position = E.analyze(model, None, **FAST).findings.position_embedding
    assert position.position0_norm_z > 5
    assert position.norm_outliers[0].position == 0 and position.norm.max_position == 0


def test_findings_and_figures(planted):
    model, report = planted
    data = json.loads(report.to_json())
    token = data["token_embedding"]
    assert len(token["pca_explained_variance_ratio"]) == 10 and 1 <= token["pca_components_for_90pct"] <= 64
    norms = model.W_E.norm(dim=1)
    assert token["norm"]["max"] == pytest.approx(float(norms.max()), rel=1e-6)
    assert token["norm"]["max_token_id"] == int(norms.argmax())
    assert token["local_pca"]["anchors"] == 20
    figures = figures_of(report)
    assert {
        "dim_stats",
        "dim_pairs",
        "token_dim_means",
        "pca_global_local",
        "position_heatmap",
        "position_curves",
        "position_cosine",
        "position_pca_2d",
        "position_pca_3d",
        "tokens_pca_2d",
        "tokens_pca_3d",
        "joint_pca_2d",
        "joint_pca_3d",
    } <= set(figures)
    assert np.array_equal(np.asarray(figures["position_heatmap"].data[0].z), model.W_pos.numpy())
    offsets = figures["token_dim_means"].data[1]
    assert offsets.x[0] == OFFSET_DIM
    # d_model 64: the dim pairs come from the planted dims, not gpt2-small's defaults
    assert all(max(pair) < 64 for pair in data["dim_pairs"])
    assert any(OFFSET_DIM in pair for pair in data["dim_pairs"])
    # token strings are escaped wherever plotly would parse them as markup
    labels = list(figures["tokens_pca_2d"].data[-1].text)
    assert labels == token_labels(
        model.tokenizer.decode([i])
        for i in dict.fromkeys(model.tokenizer.encode("The king and the queen of <b>France</b>"))
    )
    assert any("&lt;" in label for label in labels) and not any("<" in label for label in labels)
    hover = [h for f in figures.values() for t in f.data for h in (t.hovertext or []) if isinstance(h, str)]
    assert hover and not any("<b>" in h or "</" in h for h in hover)


def test_bad_input_is_a_clear_error(tiny_model):
    with pytest.raises(InputError, match="empty"):
        E.analyze(tiny_model, "   ", **FAST)
    with pytest.raises(InputError, match="projection"):
        E.analyze(tiny_model, None, **{**FAST, "projections": ("pca", "mds")})
    with pytest.raises(InputError, match="outside"):
        E.analyze(tiny_model, None, **{**FAST, "dim_pairs": [(3, 64)]})


def _neighbour_agreement(coords: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    """Share of each point's k nearest neighbours (in the projection) that carry its label."""
    dist = ((coords[:, None] - coords[None]) ** 2).sum(-1)
    np.fill_diagonal(dist, np.inf)
    nearest = np.argsort(dist, axis=1)[:, :k]
    return float((labels[nearest] == labels[:, None]).mean())


@pytest.mark.slow
def test_projections_keep_planted_clusters_apart():
    model = random_model()
    centres = torch.randn(4, model.cfg.d_model, generator=torch.Generator().manual_seed(5)) * 0.1
    with torch.no_grad():
        model.W_E.add_(centres[torch.arange(model.cfg.d_vocab) % 4])
    options = {**FAST, "sample_size": 120, "projections": ("pca", "tsne", "umap")}
    report = E.analyze(model, "Paris", **options)
    projections = report.data.projections
    assert {k: v.shape for k, v in projections.items()} == {
        "pca_3d": (120, 3),
        "tsne_2d": (120, 2),
        "tsne_3d": (120, 3),
        "umap_2d": (120, 2),
        "umap_3d": (120, 3),
    }
    labels = report.data.sample_ids % 4
    for name, coords in projections.items():
        assert _neighbour_agreement(coords, labels) > 0.9, name
    figures = figures_of(report)
    assert {"tokens_tsne_2d", "tokens_tsne_3d", "tokens_umap_2d", "tokens_umap_3d"} <= set(figures)
    assert list(figures["tokens_umap_2d"].data[-1].text) == token_labels(model.to_str_tokens("Paris"))
    again = E.analyze(model, "Paris", **{**options, "projections": ("tsne",)})
    assert np.allclose(again.data.projections["tsne_2d"], projections["tsne_2d"])  # seeded


def test_cli_writes_planted_answers(tmp_path, capsys):
    folder = save_checkpoint(planted_model(), tmp_path / "planted")
    code = main(
        [
            "embeddings",
            "--model",
            str(folder),
            "--out",
            str(tmp_path / "out"),
            "--no-png",
            "--projections",
            "pca",
            "--sample-size",
            "150",
            "--prompt",
            "hello world",
        ]
    )
    assert code == 0
    written = tmp_path / "out" / "embeddings"
    assert str(written) in capsys.readouterr().out
    findings = json.loads((written / "findings.json").read_text())
    assert findings["token_embedding"]["offset_dims"][0]["dim"] == OFFSET_DIM
    periods = {p["dim"]: p["period"] for p in findings["position_embedding"]["periodicity"]}
    for dim, period in PLANTED_PERIODS.items():
        assert periods[dim] == pytest.approx(period, rel=0.03)
    assert (written / "position_heatmap.html").is_file() and (written / "tokens_pca_3d.html").is_file()
    assert (
        main(["embeddings", "--model", str(folder), "--out", str(tmp_path / "bad"), "--no-png", "--dim-pair", "3-4"])
        == 1
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --dim-pair") and "\n" not in err


def test_vocabulary_stats_computed_once_give_the_same_report(tiny_model):
    kwargs = dict(projections=("pca",), sample_size=300, progress=False)
    vocabulary = E.vocabulary_stats(tiny_model)
    for prompt in ("The cat sat on the mat", "Paris is the capital of France"):
        alone = E.analyze(tiny_model, prompt, **kwargs)
        shared = E.analyze(tiny_model, prompt, vocabulary=vocabulary, **kwargs)
        assert json.dumps(to_jsonable(shared.findings), sort_keys=True) == json.dumps(
            to_jsonable(alone.findings), sort_keys=True
        )
        np.testing.assert_array_equal(shared.data.projections["pca_3d"], alone.data.projections["pca_3d"])
    other_seed = E.analyze(tiny_model, "The cat", vocabulary=vocabulary, seed=1, **kwargs)  # not reused: recomputed
    assert json.dumps(to_jsonable(other_seed.findings.token_embedding)) == json.dumps(
        to_jsonable(E.analyze(tiny_model, "The cat", seed=1, **kwargs).findings.token_embedding)
    )
