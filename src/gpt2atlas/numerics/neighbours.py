"""Exact nearest neighbours of a point cloud, fast on a CPU, and duplicate removal.

Distance-based estimators need every point's k nearest neighbours. We find them exactly, one chunk of rows
of the squared-distance matrix |x|^2 + |y|^2 - 2 x.y at a time: one matrix product per chunk, and `topk`
keeps a few more candidates than asked for. (Computing only half of the symmetric matrix saves matrix
products but costs as much again in `topk` over transposed blocks: measured, no faster.)

In float32 that formula is accurate to ~1e-6 of |x|^2 + |y|^2 (on GPT-2 clouds the median relative error of
the distances measured 4e-8): fine unless points are much closer to each other than to the centre (a tight
cluster far from the cloud's mean), where rounding can even pick the wrong candidates. Rows with a candidate
within 2% of that are searched again: candidates chosen with the same formula in float64 (error ~1e-16 of the
norms) against every point. The formula's error relative to the distance grows with (|x|^2 + |y|^2) / |x - y|^2:
rows with a candidate within 25% of that sum (the 2% ones included) are measured from coordinate differences,
which float32 holds to ~1e-7 of the distance itself, and their k nearest kept. (Keeping the formula's distances
there gave relative errors of 1e-5 in a cloud 20x wider than its neighbour distances.) Elsewhere the formula's
distances are kept: in a 768-dim Gaussian cloud no row needs measuring, and measuring all costs 30% more time.
A 10-dimensional cloud is measured nearly everywhere: 20,000 points take 4.8 s instead of 4.0 s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

_CHUNK_BYTES = 128 * 2**20  # memory for one chunk of rows of the distance matrix
_REFINE_BYTES = 64 * 2**20  # memory for one chunk of candidate differences
_CLOSE = 0.02  # search again in float64 when |x - y|^2 < _CLOSE * (|x|^2 + |y|^2)
_MEASURE = 0.25  # measure from coordinate differences when |x - y|^2 < _MEASURE * (|x|^2 + |y|^2)


@dataclass(frozen=True)
class Neighbours:
    """Each point's k nearest other points, nearest first: `distances` (n, k) float64, `indices` (n, k)."""

    distances: np.ndarray
    indices: np.ndarray


def unique_rows(X: np.ndarray) -> np.ndarray:
    """The distinct rows of X, each at its first occurrence, in the original order."""
    X = np.ascontiguousarray(X)
    if len(X) == 0:
        return X
    as_bytes = X.view(np.dtype((np.void, X.dtype.itemsize * X.shape[1]))).ravel()
    _, first = np.unique(as_bytes, return_index=True)
    return X[np.sort(first)]


def nearest_neighbours(X: np.ndarray | torch.Tensor, k: int) -> Neighbours:
    """Exact k nearest neighbours (Euclidean) of every row of X, the point itself excluded.

    X should hold distinct rows (see `unique_rows`); k is capped at n - 1.
    """
    points = X.detach().cpu() if isinstance(X, torch.Tensor) else torch.as_tensor(np.asarray(X, dtype=np.float32))
    points = points.to(torch.float32)
    n, dim = points.shape
    k = min(k, n - 1)
    if k < 1:
        return Neighbours(np.zeros((n, 0)), np.zeros((n, 0), dtype=np.int64))
    with torch.inference_mode():
        original = points  # coordinate differences are taken here: centring would round them
        points = points - points.mean(0)  # distances unchanged; smaller norms, less cancellation
        sq_norms = points.pow(2).sum(1)
        n_candidates = min(n - 1, k + max(8, k // 4))
        chunk = int(max(1, min(4096, _CHUNK_BYTES // (4 * n))))
        distances = np.empty((n, k))
        indices = np.empty((n, k), dtype=np.int64)
        points64 = sq_norms64 = None  # made only if some rows need the float64 search
        for start in range(0, n, chunk):
            rows = slice(start, min(start + chunk, n))
            # squared distances from this chunk of rows to every point
            block = torch.addmm(sq_norms[rows, None] + sq_norms[None, :], points[rows], points.T, alpha=-2.0)
            block[torch.arange(rows.stop - start), torch.arange(start, rows.stop)] = float("inf")
            d2, candidates = block.topk(n_candidates, dim=1, largest=False, sorted=False)
            del block
            d2 = d2.clamp_min(0.0)
            norms = sq_norms[rows, None] + sq_norms[candidates]
            close, measure = (d2 < _CLOSE * norms).any(1), (d2 < _MEASURE * norms).any(1)  # close implies measure
            row_index = torch.arange(start, rows.stop)
            if close.any():
                if points64 is None:
                    points64 = points.double()
                    sq_norms64 = points64.pow(2).sum(1)
                assert sq_norms64 is not None  # set with points64
                candidates[close] = _candidates_float64(points64, sq_norms64, row_index[close], n_candidates)
            d2, order = d2.double().topk(k, dim=1, largest=False, sorted=True)
            idx = candidates.gather(1, order)
            if measure.any():
                d2[measure], idx[measure] = _exact_sorted(
                    original, original[row_index[measure]], candidates[measure], k, dim
                )
            distances[rows] = d2.sqrt().numpy()
            indices[rows] = idx.numpy()
    return Neighbours(distances, indices)


def _candidates_float64(
    points64: torch.Tensor, sq_norms64: torch.Tensor, rows: torch.Tensor, n_candidates: int
) -> torch.Tensor:
    """The n_candidates nearest other points of each row index in `rows`, from float64 squared distances."""
    step = int(max(1, _CHUNK_BYTES // (8 * len(points64))))
    parts = []
    for s in range(0, len(rows), step):
        index = rows[s : s + step]
        block = torch.addmm(sq_norms64[index, None] + sq_norms64[None, :], points64[index], points64.T, alpha=-2.0)
        block[torch.arange(len(index)), index] = float("inf")
        parts.append(block.topk(n_candidates, dim=1, largest=False, sorted=False).indices)
    return torch.cat(parts)


def _exact_sorted(
    points: torch.Tensor, rows: torch.Tensor, candidates: torch.Tensor, k: int, dim: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared distances from each row to its candidates, from coordinate differences; the k nearest, sorted."""
    step = int(max(1, _REFINE_BYTES // (4 * candidates.shape[1] * dim)))
    d2_parts, idx_parts = [], []
    for s in range(0, len(rows), step):
        cand = candidates[s : s + step]
        diff = points[cand].sub_(rows[s : s + step, None, :])  # the gather's copy, reused: one tensor, not three
        d2 = torch.linalg.vector_norm(diff, dim=-1).square_()
        d2, order = d2.topk(k, dim=1, largest=False, sorted=True)
        d2_parts.append(d2)
        idx_parts.append(cand.gather(1, order))
    return torch.cat(d2_parts).double(), torch.cat(idx_parts)
