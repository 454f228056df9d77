"""numerics/: the one PCA matches an SVD on both of its paths, and the bf16 neighbour search equals the float32 one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gpt2atlas.numerics import neighbours as N
from gpt2atlas.numerics.pca import components_for, fit_pca

rng = np.random.default_rng(0)


@pytest.mark.parametrize("shape", [(500, 40), (30, 200)])  # covariance path, Gram path
def test_pca_matches_the_svd_on_both_paths(shape):
    X = rng.standard_normal(shape) @ np.diag(np.linspace(3, 0.1, shape[1]))
    pca = fit_pca(X)
    centred = X - X.mean(0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    r = min(shape)
    assert pca.variances[: r - 1] == pytest.approx((s**2 / (shape[0] - 1))[: r - 1], rel=1e-9)
    axes = pca.axes[:, : r - 1]
    assert np.allclose(axes.T @ axes, np.eye(r - 1), atol=1e-9)
    assert np.allclose(np.abs(axes.T @ vt[: r - 1].T), np.eye(r - 1), atol=1e-6)  # the same axes, up to sign
    assert np.allclose(np.abs(pca.project(X, 3)), np.abs(centred @ vt[:3].T), atol=1e-8)
    assert fit_pca(X, axes=False).variances == pytest.approx(pca.variances, rel=1e-9, abs=1e-12)


def test_pca_through_the_origin_and_components_for():
    X = torch.randn(200, 10, generator=torch.Generator().manual_seed(1)) + 5.0  # far from the origin
    through_origin = fit_pca(X, centre=False)
    s = np.linalg.svd(X.double().numpy(), compute_uv=False)
    assert through_origin.ratio[:3] == pytest.approx((s**2 / (s**2).sum())[:3], rel=1e-9)
    assert through_origin.ratio[0] > 0.9  # the offset direction dominates when nothing is centred
    assert components_for(np.array([0.5, 0.3, 0.15, 0.05]), 0.9) == 3
    assert components_for(np.array([5.0, 3.0, 1.5, 0.5]), 0.8) == 2  # raw variances work too
    assert components_for(np.zeros(3)) == 0


def known_cloud(n: int, d: int = 10, ambient: int = 768) -> np.ndarray:
    basis, _ = np.linalg.qr(rng.standard_normal((ambient, d)))
    return (rng.standard_normal((n, d)) @ basis.T + 1e-4 * rng.standard_normal((n, ambient))).astype(np.float32)


def clusters_far_out(n: int = 3000, dim: int = 64) -> np.ndarray:
    """Tight clusters far from the centre: neighbour distances tiny next to the norms (hard for any formula)."""
    centres = rng.standard_normal((30, dim)) * 50.0
    return (centres[rng.integers(0, 30, n)] + 0.01 * rng.standard_normal((n, dim))).astype(np.float32)


@pytest.mark.parametrize(
    "cloud, k",
    [
        (lambda: known_cloud(6000), 2),  # the bf16 search vouches for nearly every row
        (lambda: rng.standard_normal((3000, 768)).astype(np.float32), 2),  # no room: rows searched again
        (clusters_far_out, 5),
        (lambda: rng.standard_normal((300, 16)).astype(np.float32), 20),  # wide set covers every point
    ],
)
def test_the_bf16_search_finds_the_float32_neighbours(cloud, k):
    X = N.unique_rows(cloud())
    exact = N.nearest_neighbours(X, k, bf16=False)
    fast = N.nearest_neighbours(X, k, bf16=True)
    assert np.array_equal(fast.indices, exact.indices)
    assert np.allclose(fast.distances, exact.distances, rtol=2e-6, atol=0)


def test_the_bf16_bound_is_sound_for_every_row_it_vouches_for():
    """Brute force in float64: no point outside a vouched row's wide candidates is nearer than its float32 top."""
    X = torch.from_numpy(known_cloud(2500))
    points = X - X.mean(0)
    sq = points.pow(2).sum(1)
    search = N._Bf16Search(points, sq, n_candidates=10)
    d2, candidates = search.candidates(slice(0, 2500))
    assert search.rows_redone < 250  # the bound is tight enough to keep most rows
    true = torch.cdist(points.double(), points.double()).pow(2)
    true.fill_diagonal_(float("inf"))
    best = true.topk(10, dim=1, largest=False).indices
    assert (torch.sort(best, dim=1).values == torch.sort(candidates, dim=1).values).float().mean() > 0.999


def test_bf16_is_used_only_where_it_pays():
    assert N.nearest_neighbours(rng.standard_normal((50, 8)), 3).indices.shape == (50, 3)  # small: float32
    assert isinstance(N.bf16_matmul_is_fast(), bool)
