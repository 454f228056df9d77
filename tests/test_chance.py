"""The chance baselines match noise sampled directly, and readings use them: a random-initialised model reads as
"within chance", the trained mini as "beyond chance" where it learned something."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import random_model
from gpt2atlas import load_model
from gpt2atlas.analysis import chance
from gpt2atlas.analysis.embeddings import analyze as analyze_embeddings
from gpt2atlas.analysis.embeddings import period_share_chance
from gpt2atlas.analysis.weights import analyze as analyze_weights
from gpt2atlas.areas import area
from gpt2atlas.model.config import GPT2Config

PROMPT = "The cat sat on the mat. The cat sat on the mat because it was warm."
rng = np.random.default_rng(0)


def test_max_abs_normal_is_the_95th_percentile_of_sampled_maxima():
    maxima = np.abs(rng.standard_normal((4000, 768))).max(axis=1)
    assert np.quantile(maxima, 0.95) == pytest.approx(chance.max_abs_normal(768), abs=0.06)
    assert np.mean(maxima <= chance.max_abs_normal(768)) == pytest.approx(0.95, abs=0.015)


def test_nearest_cosine_of_random_directions():
    d, n = 64, 5000
    best = []
    for _ in range(200):
        x = rng.standard_normal((n + 1, d))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        best.append((x[1:] @ x[0]).max())
    assert np.quantile(best, 0.95) == pytest.approx(chance.nearest_cosine(d, n), rel=0.06)


def test_top_component_share_and_stable_rank_of_gaussian_noise():
    x = rng.standard_normal((20_000, 256))
    eig = np.linalg.eigvalsh(np.cov(x, rowvar=False))
    assert eig[-1] / eig.sum() == pytest.approx(chance.top_component_share(20_000, 256), rel=0.03)
    w = rng.standard_normal((300, 900))
    s = np.linalg.svd(w, compute_uv=False)
    assert (s**2).sum() / s[0] ** 2 == pytest.approx(chance.stable_rank(300, 900), rel=0.03)


def test_period_share_chance_grows_as_columns_get_shorter():
    assert period_share_chance(64, 5) > period_share_chance(1024, 5) > 0


RANDOM_SHAPE = GPT2Config(n_layer=2, n_head=4, d_model=128, n_ctx=256)


@pytest.fixture(scope="module")
def embedding_readings() -> dict[str, list[str]]:
    found = {}
    for name, model in (("random", random_model(RANDOM_SHAPE, seed=3)), ("mini", load_model("mini"))):
        findings = analyze_embeddings(model, PROMPT, projections=("pca",), sample_size=300).findings
        found[name] = area("embeddings").read(findings) + area("weights").read(
            analyze_weights(model, param="blocks.0.attn.W_QKV").findings
        )
    return found


@pytest.mark.parametrize(
    "opening, random_says, mini_says",
    [
        ("Token embeddings: the dimensions", "within chance", "beyond chance"),
        ("PCA of the token embeddings", "within chance", "beyond chance"),
        ("Their dominant periods", "within chance", "beyond chance"),
        ("Nearest tokens by cosine", "within chance", "beyond chance"),
        ("Singular values", "no direction dominates more than in noise", None),
    ],
)
def test_a_random_model_reads_as_chance_and_the_trained_one_does_not(
    embedding_readings, opening, random_says, mini_says
):
    for name, expected in (("random", random_says), ("mini", mini_says)):
        sentence = next(s for s in embedding_readings[name] if s.startswith(opening))
        if expected:
            assert expected in sentence, (name, sentence)


def test_intrinsic_dimension_is_read_against_a_random_initialised_twin():
    from gpt2atlas.geometry.analysis import analyze as analyze_geometry

    options = {"max_texts": 100, "all_tokens_budget": 1000, "gride_max_rank": 16, "progress": False}
    said = {}
    for name, model in (("random", random_model(RANDOM_SHAPE, seed=3)), ("mini", load_model("mini"))):
        findings = analyze_geometry(model, **options).findings
        assert findings.control is not None
        control = findings.control.twonn
        assert {len(v) for v in control.values()} == {model.cfg.n_layer + 1}  # every residual layer
        said[name] = [s for s in area("geometry").read(findings) if "cloud: TwoNN" in s or "Anisotropy" in s]
        assert len(said[name]) == 3
    assert all("within chance" in s for s in said["random"]), said["random"]
    assert any("than chance, beyond 3 standard errors" in s for s in said["mini"]), said["mini"]
    assert any(s.startswith("Anisotropy") and "narrower than chance" in s for s in said["mini"])  # 0.69 vs 0.29
    off = analyze_geometry(random_model(RANDOM_SHAPE, seed=3), control=False, **options).findings
    assert off.control is None and all("random-initialised" not in s for s in area("geometry").read(off))


def test_attention_and_residual_readings_state_their_baselines():
    from gpt2atlas.analysis.attention import analyze as analyze_attention
    from gpt2atlas.analysis.residual import analyze as analyze_residual

    noise = random_model(RANDOM_SHAPE, seed=3)
    attention = area("attention").read(analyze_attention(noise, PROMPT, repeat_batch=2).findings)
    sink = next(s for s in attention if s.startswith("Attention to the first token"))
    assert "a head attending uniformly gives it" in sink and "within chance" in sink
    assert any("a head attending uniformly has" in s for s in attention)  # entropy
    residual = area("residual").read(analyze_residual(noise, PROMPT).findings)
    outliers = next(s for s in residual if "median |activation|" in s)
    assert "Gaussian activations of this size reach" in outliers and "no outlier dims" in outliers


def test_max_abs_over_median_matches_sampled_gaussians():
    z = np.abs(rng.standard_normal((2000, 5000)))
    ratios = z.max(axis=1) / np.median(z, axis=1)
    assert np.quantile(ratios, 0.95) == pytest.approx(chance.max_abs_over_median(5000), rel=0.03)
