"""Intrinsic-dimension estimators on data of known dimension, against scikit-dimension and brute force."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.spatial.distance import cdist, pdist
from scipy.special import betaln

from gpt2atlas.geometry import (
    gride,
    mean_cosine,
    mean_norm,
    nearest_neighbours,
    participation_ratio,
    pca_id,
    pca_spectrum,
    twonn,
    twonn_scaling,
    unique_rows,
)
from gpt2atlas.geometry.estimators import gram_log_volume, gride_mle, twonn_from_distances
from gpt2atlas.geometry.tsne import kl_divergence, tsne

AMBIENT = 768


def embed(Z: np.ndarray, *, noise: float = 1e-4, seed: int = 0) -> np.ndarray:
    """Z (n, d) placed in 768 dimensions by a random rotation, plus isotropic Gaussian noise."""
    rng = np.random.default_rng(seed + 1000)
    basis, _ = np.linalg.qr(rng.standard_normal((AMBIENT, Z.shape[1])))
    return (Z @ basis.T + noise * rng.standard_normal((len(Z), AMBIENT))).astype(np.float32)


def sphere(n: int, d: int, rng) -> np.ndarray:
    """Uniform on the unit d-sphere (in d + 1 coordinates)."""
    z = rng.standard_normal((n, d + 1))
    return z / np.linalg.norm(z, axis=1, keepdims=True)


def swiss_roll(n: int, rng) -> np.ndarray:
    t = 1.5 * np.pi * (1 + 2 * rng.uniform(size=n))
    return np.stack([t * np.cos(t), 21 * rng.uniform(size=n), t * np.sin(t)], axis=1)


KNOWN = {  # name -> (n points in 768 dimensions, true intrinsic dimension)
    "8-dim linear subspace": (lambda rng, n: embed(rng.standard_normal((n, 8)), seed=int(rng.integers(99))), 8),
    "5-sphere": (lambda rng, n: embed(sphere(n, 5, rng), seed=int(rng.integers(99))), 5),
    "swiss roll": (lambda rng, n: embed(swiss_roll(n, rng), seed=int(rng.integers(99))), 2),
}


@pytest.fixture(scope="module", params=list(KNOWN))
def known(request):
    """Three independent samples of 3,000 points of a manifold of known dimension."""
    make, d = KNOWN[request.param]
    rng = np.random.default_rng(0)
    return [make(rng, 3000) for _ in range(3)], d


# ----- neighbours ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "case", ["high-dimensional", "low-dimensional, far from the origin", "tight cluster far from the cloud's mean"]
)
def test_nearest_neighbours_match_brute_force(case):
    rng = np.random.default_rng(1)
    if case == "high-dimensional":
        X = rng.standard_normal((1500, AMBIENT)).astype(np.float32)
    elif case == "low-dimensional, far from the origin":  # float32 |x|^2 + |y|^2 - 2xy alone would get these wrong
        X = (embed(rng.standard_normal((1500, 3)) * 1e-2) + 50).astype(np.float32)
    else:  # centring on the mean cannot help the cluster; float32 rounding would even pick wrong candidates
        cloud = rng.standard_normal((1000, 64))
        cluster = rng.standard_normal((500, 64)) * 1e-2 + 300 / 8
        X = np.vstack([cloud, cluster]).astype(np.float32)
    found = nearest_neighbours(X, 12)
    D = cdist(X.astype(np.float64), X.astype(np.float64))
    np.fill_diagonal(D, np.inf)
    expected = np.sort(D, axis=1)[:, :12]
    np.testing.assert_allclose(found.distances, expected, rtol=1e-5)
    assert (np.argsort(D, axis=1)[:, :12] == found.indices).mean() > 0.999  # only exact ties may differ


def test_unique_rows_keeps_first_occurrences_in_order():
    X = np.array([[1, 2], [3, 4], [1, 2], [5, 6], [3, 4]], dtype=np.float32)
    np.testing.assert_array_equal(unique_rows(X), [[1, 2], [3, 4], [5, 6]])


# ----- TwoNN ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["linear", "mle"])
@pytest.mark.parametrize("discard", [0.1, 0.25])
def test_twonn_agrees_with_scikit_dimension(method, discard):
    """Same formula on the same neighbour distances; end to end, the same up to float32 distances."""
    skdim = pytest.importorskip("skdim")
    rng = np.random.default_rng(2)
    X = embed(sphere(1500, 4, rng), noise=1e-3)
    nb = nearest_neighbours(X, 2)
    ours = twonn(X, discard, method=method, n_bootstrap=0, neighbours=nb)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        same_distances = skdim.id.TwoNN(discard_fraction=discard, method=method, dist=True).fit(nb.distances)
        end_to_end = skdim.id.TwoNN(discard_fraction=discard, method=method).fit(X.astype(np.float64))
    assert ours.id == pytest.approx(same_distances.dimension_, rel=1e-12)
    assert ours.id == pytest.approx(end_to_end.dimension_, rel=2e-5)


def test_estimators_recover_known_dimension(known):
    """Each TwoNN estimate agrees with the truth within its error bar; TwoNN and GRIDE (n1 = 1, 2, 4) are
    within 4% on average over the samples."""
    samples, d = known
    twonn_ids, gride_ids = [], []
    for X in samples:
        nb = nearest_neighbours(X, 8)
        estimate = twonn(X, neighbours=nb)
        assert abs(estimate.id - d) < 3 * estimate.err
        scaling = gride(X, neighbours=nb)
        assert scaling.ranks == [1, 2, 4]
        assert scaling.scales == sorted(scaling.scales)
        twonn_ids.append(estimate.id)
        gride_ids.append(scaling.ids)
    assert np.mean(twonn_ids) == pytest.approx(d, rel=0.04)
    np.testing.assert_allclose(np.mean(gride_ids, axis=0), d, rtol=0.04)


def test_twonn_error_bar_matches_the_spread_of_repeated_estimates():
    """Ratios drawn from the exact Pareto law of a 6-dimensional cloud: unbiased, and the bootstrap error
    bar is the standard deviation seen across independent samples."""
    rng = np.random.default_rng(3)
    estimates, errors = [], []
    for _ in range(40):
        mu = rng.pareto(6.0, size=2000) + 1  # P(mu > x) = x^-6
        est = twonn_from_distances(np.ones_like(mu), mu, 0.1, n_bootstrap=100, seed=int(rng.integers(1e9)))
        estimates.append(est.id)
        errors.append(est.err)
    assert np.mean(estimates) == pytest.approx(6.0, rel=0.02)
    assert np.mean(errors) == pytest.approx(np.std(estimates, ddof=1), rel=0.35)


def test_twonn_with_decimation_halves_the_points_and_keeps_the_dimension():
    X = embed(sphere(3000, 3, np.random.default_rng(4)))
    scaling = twonn_scaling(X, min_points=300)
    assert scaling.ranks == [3000, 1500, 750, 375]
    assert scaling.scales == sorted(scaling.scales)  # fewer points: farther neighbours
    for estimate, err in zip(scaling.ids, scaling.errs):
        assert abs(estimate - 3) < max(0.1 * 3, 3 * err)


def test_degenerate_clouds_give_nan_not_errors():
    assert math.isnan(twonn(np.zeros((1, 5), dtype=np.float32)).id)
    assert gride(np.eye(2, dtype=np.float32)).ids == []  # one neighbour each: no ratio
    assert all(math.isnan(i) for i in gride(np.eye(3, dtype=np.float32)).ids)  # all ratios 1


# ----- GRIDE ---------------------------------------------------------------------------------------------------
def _gride_ratios(rng, d: float, n1: int, n2: int, size: int) -> np.ndarray:
    """log(r_n2 / r_n1) for a Poisson process in d dimensions: (V_n1 / V_n2) ~ Beta(n1, n2 - n1)."""
    return -np.log(rng.beta(n1, n2 - n1, size=size)) / d


def test_gride_is_the_maximum_of_its_likelihood():
    rng = np.random.default_rng(5)
    log_mu = _gride_ratios(rng, 7.0, 4, 8, 3000)

    def neg_loglik(d):
        mu_d = np.exp(d * log_mu)
        return -np.sum(np.log(d) + 3 * np.log(mu_d - 1) - (7 * d + 1) * log_mu - betaln(4, 4))

    best = minimize_scalar(neg_loglik, bounds=(0.5, 50), method="bounded", options={"xatol": 1e-9}).x
    estimate, _ = gride_mle(log_mu, 4, 8)
    assert estimate == pytest.approx(best, rel=1e-5)


@pytest.mark.parametrize("n1", [1, 2, 8])
def test_gride_is_unbiased_with_calibrated_error_bars(n1):
    rng = np.random.default_rng(6 + n1)
    results = np.array([gride_mle(_gride_ratios(rng, 12.0, n1, 2 * n1, 1500), n1, 2 * n1) for _ in range(40)])
    assert results[:, 0].mean() == pytest.approx(12.0, rel=0.02)
    assert results[:, 1].mean() == pytest.approx(results[:, 0].std(ddof=1), rel=0.3)


def test_gride_n1_1_is_the_pareto_maximum_likelihood():
    log_mu = np.random.default_rng(7).exponential(1 / 5, size=500)
    assert gride_mle(log_mu, 1, 2)[0] == pytest.approx(len(log_mu) / log_mu.sum())


def test_gride_sees_noise_at_small_scales_and_the_plane_at_large_ones():
    """A plane with isotropic noise: high-dimensional up close, two-dimensional from afar."""
    rng = np.random.default_rng(8)
    X = embed(rng.uniform(-1, 1, size=(3000, 2)), noise=0.01 / np.sqrt(AMBIENT) * 2)
    scaling = gride(X, 64)
    assert scaling.ranks == [1, 2, 4, 8, 16, 32]
    assert scaling.ids[0] > 6
    assert scaling.ids[-1] == pytest.approx(2, rel=0.2)
    assert scaling.ids == sorted(scaling.ids, reverse=True)


# ----- PCA and statistics --------------------------------------------------------------------------------------
def _cloud_with_spectrum(variances: list[float], n: int = 500, seed: int = 9) -> np.ndarray:
    """Points whose covariance has exactly these eigenvalues, rotated into 768 dimensions."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, len(variances)))
    Z -= Z.mean(0)
    Z = np.linalg.qr(Z)[0] * np.sqrt(n - 1)  # orthonormal columns: sample covariance exactly the identity
    return embed(Z * np.sqrt(variances), noise=0).astype(np.float64)


def test_pca_id_and_participation_ratio_on_a_known_spectrum():
    variances = [8.0, 4.0, 2.0, 1.0, 0.5, 0.5]  # total 16
    X = _cloud_with_spectrum(variances)
    np.testing.assert_allclose(pca_spectrum(X)[:6], variances, rtol=1e-4)
    # cumulative shares: 0.5, 0.75, 0.875, 0.9375, 0.96875, 1
    assert [pca_id(X, t) for t in (0.45, 0.7, 0.8, 0.9, 0.95, 0.99)] == [1, 2, 3, 4, 5, 6]
    assert participation_ratio(X) == pytest.approx(16.0**2 / sum(v * v for v in variances), rel=1e-4)
    assert participation_ratio(_cloud_with_spectrum([1.0] * 10)) == pytest.approx(10, rel=1e-4)


def test_norm_and_mean_cosine_against_brute_force():
    X = np.random.default_rng(10).standard_normal((200, 16)) + 1.5
    assert mean_norm(X) == pytest.approx(np.linalg.norm(X, axis=1).mean())
    assert mean_cosine(X) == pytest.approx(np.mean(1 - pdist(X, "cosine")))
    assert mean_cosine(np.tile([[1.0, 2.0]], (5, 1))) == pytest.approx(1.0)


def test_gram_log_volume():
    V = np.diag([2.0, 3.0, 0.5])[:, :] @ np.eye(3, 10)
    assert gram_log_volume(V) == pytest.approx(math.log(3.0))
    assert gram_log_volume(V, unit=True) == pytest.approx(0.0, abs=1e-12)
    assert gram_log_volume(np.vstack([V, V[0] + V[1]])) == -math.inf


# ----- t-SNE ---------------------------------------------------------------------------------------------------
def test_tsne_keeps_clusters_apart_and_lowers_the_kl_divergence():
    rng = np.random.default_rng(11)
    labels = np.repeat(np.arange(4), 75)
    X = rng.standard_normal((4, 50))[labels] * 4 + rng.standard_normal((300, 50))
    Y = tsne(X, 3, seed=0)
    assert Y.shape == (300, 3)
    nearest = np.argsort(cdist(Y, Y) + np.eye(300) * 1e9, axis=1)[:, :10]
    assert (labels[nearest] == labels[:, None]).mean() > 0.98
    assert kl_divergence(X, Y) < 0.5 * kl_divergence(X, rng.standard_normal((300, 3)))
