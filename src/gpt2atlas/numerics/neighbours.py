"""Exact nearest neighbours: Euclidean ones of a point cloud (fast on a CPU), cosine ones of table rows, and
duplicate removal.

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

On CPUs with bfloat16 matrix units (AMX, AVX-512 BF16) a bf16 matmul runs ~4-8x faster than fp32, so the
candidates can be found in bf16 and re-ranked exactly: the candidates' squared distances are recomputed in
float32 with the same formula, and a row is kept only when its bf16 search missed none of the float32 search's
candidates. The bf16 side of that test is a derived bound (see _Bf16Search): each coordinate's rounding
|x - bf16(x)| is measured, the product's float32 accumulation is bounded by (d + 4) 2^-24, and its output is
rounded once to bf16, whose unit roundoff is u = 2^-8; so any point outside a row's m bf16 candidates is at least
(its m-th bf16 distance - that bound) away. The float32 side is not proven: the float32 formula's own error gets
an empirical margin, _FP32_SLACK = 1e-5 of |x|^2 + |y|^2 on each side of the comparison (measured ~1e-7; the
worst-case bound d 2^-24, 5e-5 for d = 768, is larger). A row where the test fails is searched again in float32
whole, and a cloud where most rows need that (no room between neighbours: a 768-dim Gaussian) goes back to the
float32 search. The neighbours are the float32 search's (tested).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

_CHUNK_BYTES = 128 * 2**20  # memory for one chunk of rows of the distance matrix
_REFINE_BYTES = 64 * 2**20  # memory for one chunk of candidate differences
_CLOSE = 0.02  # search again in float64 when |x - y|^2 < _CLOSE * (|x|^2 + |y|^2)
_MEASURE = 0.25  # measure from coordinate differences when |x - y|^2 < _MEASURE * (|x|^2 + |y|^2)
_BF16_EXTRA = 12  # bf16 candidates beyond the float32 search's own
_BF16_MIN_POINTS = 4096  # below this the float32 search is as fast
_GATHER_ROWS = 512  # rows whose candidates are gathered at once (rows x candidates x d floats)
_FP32_SLACK = 1e-5  # margin for the float32 formula's own error, relative to |x|^2 + |y|^2: empirical (measured
# ~1e-7 on GPT-2 clouds), not a proven bound (the worst case, d * 2^-24, is 5e-5 at d = 768)


@lru_cache(maxsize=1)
def bf16_matmul_is_fast() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (AMX or AVX-512 BF16)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags for flag in (" amx_bf16", " avx512_bf16"))


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


def nearest_neighbours(X: np.ndarray | torch.Tensor, k: int, *, bf16: bool | None = None) -> Neighbours:
    """Exact k nearest neighbours (Euclidean) of every row of X, the point itself excluded.

    X should hold distinct rows (see `unique_rows`); k is capped at n - 1. `bf16` finds candidates in bfloat16
    first (default: when the CPU has bf16 matrix units and the cloud is large); the result is the same.
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
        use_bf16 = bf16 if bf16 is not None else (bf16_matmul_is_fast() and n >= _BF16_MIN_POINTS)
        search = _Bf16Search(points, sq_norms, n_candidates) if use_bf16 else None
        for start in range(0, n, chunk):
            rows = slice(start, min(start + chunk, n))
            if search is not None and search.worth_it:
                d2, candidates = search.candidates(rows)
            else:
                d2, candidates = _float32_candidates(points, sq_norms, torch.arange(start, rows.stop), n_candidates)
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


def _float32_candidates(
    points: torch.Tensor, sq_norms: torch.Tensor, index: torch.Tensor, n_candidates: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The n_candidates nearest other points of each row in `index` (unsorted), from float32 squared distances."""
    block = torch.addmm(sq_norms[index, None] + sq_norms[None, :], points[index], points.T, alpha=-2.0)
    block[torch.arange(len(index)), index] = float("inf")
    return block.topk(n_candidates, dim=1, largest=False, sorted=False)


class _Bf16Search:
    """Candidates found in bfloat16, re-ranked in float32; rows it cannot vouch for searched again in float32.

    One bf16 product gives every squared distance directly: [x, 1, 1, |x|^2 hi, lo] . [-2y, |y|^2 hi, lo, 1, 1]
    (each norm split into two bf16 parts, so it is carried to ~u^2), ranked by a bf16 `topk`; no float32 copy of
    the block is ever made. For a point y outside a row's m candidates, whose computed value is at least the m-th
    one v_m, the true squared distance is at least v_m - u/(1 - u)|v_m| - 2(|x| R + r_x N) - (u^2 + a)(|x|^2 +
    N^2) - 2a|x|N: u = 2^-8 is bf16's unit roundoff (the output's rounding), r_x = |x - bf16(x)| the row's own
    rounding, R and N the largest rounding and the largest norm among all points, a = (d + 4) 2^-24 the float32
    accumulation. That part is derived; comparing it with the float32 candidates' distances adds the empirical
    _FP32_SLACK (the float32 formula's error, measured, not proven).
    """

    def __init__(self, points: torch.Tensor, sq_norms: torch.Tensor, n_candidates: int) -> None:
        n, dim = points.shape
        self.points, self.sq_norms, self.n_candidates = points, sq_norms, n_candidates
        low = points.to(torch.bfloat16)
        residual = (points - low.float()).norm(dim=1)  # each point's own rounding, |x - bf16(x)|
        high = sq_norms.to(torch.bfloat16)
        rest = (sq_norms - high.float()).to(torch.bfloat16)
        one = torch.ones(n, 1, dtype=torch.bfloat16)
        self.left = torch.cat([low, one, one, high[:, None], rest[:, None]], dim=1)
        # -2x is exact in bf16; stored transposed and contiguous: the bf16 kernel runs ~30% faster on it
        self.right_t = torch.cat([-2.0 * low, high[:, None], rest[:, None], one, one], dim=1).T.contiguous()
        self.n_wide = min(n - 1, n_candidates + _BF16_EXTRA)
        u, accumulation = 2.0**-8, (dim + 4) * 2.0**-24
        norms, low_norms = sq_norms.sqrt(), low.float().norm(dim=1)
        max_residual, max_low, max_sq = float(residual.max()), float(low_norms.max()), float(sq_norms.max())
        # everything but the output's rounding, per row
        self.input_error = (
            2.0 * (norms * max_residual + residual * max_low)
            + (u * u + accumulation) * (sq_norms + max_sq)
            + accumulation * 2.0 * low_norms * max_low
        )
        self.output_rounding = u / (1.0 - u)
        self.max_sq = max_sq
        self.rows_done = self.rows_redone = 0

    @property
    def worth_it(self) -> bool:
        """False once most rows have needed the float32 search anyway (a cloud with no room between neighbours)."""
        return self.rows_done < 1024 or self.rows_redone < 0.5 * self.rows_done

    def candidates(self, rows: slice) -> tuple[torch.Tensor, torch.Tensor]:
        n_rows = rows.stop - rows.start
        block = self.left[rows] @ self.right_t  # bf16: |x|^2 + |y|^2 - 2 x.y
        block[torch.arange(n_rows), torch.arange(rows.start, rows.stop)] = float("inf")
        wide_value, wide = block.topk(self.n_wide, dim=1, largest=False, sorted=True)
        del block
        exact = torch.cat(
            [
                torch.einsum(
                    "rd,rmd->rm", self.points[rows][s : s + _GATHER_ROWS], self.points[wide[s : s + _GATHER_ROWS]]
                )
                for s in range(0, n_rows, _GATHER_ROWS)
            ]
        )  # gathered a few hundred rows at a time (rows x candidates x d floats)
        exact = (self.sq_norms[rows, None] + self.sq_norms[wide]).sub_(exact, alpha=2.0)  # the float32 formula
        d2, order = exact.topk(self.n_candidates, dim=1, largest=False, sorted=True)
        candidates = wide.gather(1, order)
        # a point outside the wide set has a true squared distance of at least this
        last = wide_value[:, -1].float()
        outside = last - self.output_rounding * last.abs() - self.input_error[rows]
        slack = _FP32_SLACK * (self.sq_norms[rows] + self.max_sq)
        doubtful = ~(outside - slack > d2[:, -1] + slack)
        if self.n_wide >= len(self.points) - 1:
            doubtful[:] = False  # every other point is a candidate
        if doubtful.any():
            index = torch.arange(rows.start, rows.stop)[doubtful]
            d2[doubtful], candidates[doubtful] = _float32_candidates(
                self.points, self.sq_norms, index, self.n_candidates
            )
        self.rows_done += n_rows
        self.rows_redone += int(doubtful.sum())
        return d2, candidates


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


def nearest_by_cosine(
    table: torch.Tensor, query_ids: Sequence[int], k: int = 10, *, exclude_self: bool = True, chunk: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k rows by cosine similarity for each query row: (ids, cosines), each (n_queries, k).

    One normalised matmul against the whole table per chunk of queries, then `torch.topk`.
    """
    table = table.float()
    inv_norm = 1.0 / table.norm(dim=1).clamp_min(1e-12)
    queries = torch.as_tensor(list(query_ids), dtype=torch.long)
    k = min(k, len(table) - int(exclude_self))
    all_ids, all_sims = [], []
    for start in range(0, len(queries), chunk):
        ids = queries[start : start + chunk]
        sims = (table[ids] * inv_norm[ids, None]) @ table.T * inv_norm
        if exclude_self:
            sims[torch.arange(len(ids)), ids] = float("-inf")
        top = sims.topk(k, dim=1)
        all_ids.append(top.indices)
        all_sims.append(top.values)
    empty = torch.empty(0, k)
    return (torch.cat(all_ids) if all_ids else empty.long()), (torch.cat(all_sims) if all_sims else empty)
