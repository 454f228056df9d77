"""Intrinsic-dimension estimators and simple statistics of a point cloud.

- TwoNN (Facco et al. 2017): in a d-dimensional cloud of locally uniform density the ratio mu = r2/r1 of the
  distances to a point's second and first nearest neighbours follows a Pareto law, P(mu > x) = x^-d. The
  largest ratios (outliers, low-density regions) are discarded and d is the slope of the line through the
  origin fitting -log(1 - F_emp(mu)) against log mu, exactly as scikit-dimension's `TwoNN` ("linear"), or the
  censored maximum-likelihood estimate ("mle"). The error bar is the standard deviation of the estimate over
  bootstrap resamples of the ratios.
- TwoNN with decimation: the same on random subsets of n, n/2, n/4, ... points, each at a larger distance
  scale (the mean second-neighbour distance), so ID can be read as a function of scale.
- GRIDE (Denti et al. 2022): the ratio mu = r_{2k}/r_k has density
      f(mu) = d (mu^d - 1)^(n2-n1-1) / (B(n2-n1, n1) mu^((n2-1) d + 1)),   n1 = k, n2 = 2k,
  maximised over d (the log-likelihood is concave, so the root of its derivative is unique); the error bar
  comes from the observed Fisher information (it treats the points' ratios as independent, so for n1 > 1,
  where neighbourhoods overlap, it is on the small side). k = 1, 2, 4, ... probes growing scales (the mean distance to
  the n2-th neighbour).
- PCA: the number of principal components needed for a share of the variance, and the participation ratio
  (sum lambda)^2 / sum lambda^2 of the covariance eigenvalues.
Distance-based estimators expect distinct points: pass clouds through `unique_rows` first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.optimize import brentq

from gpt2atlas.numerics.neighbours import Neighbours, nearest_neighbours
from gpt2atlas.numerics.pca import components_for, fit_pca

PCA_THRESHOLDS = (0.75, 0.8, 0.85, 0.9, 0.95)


@dataclass(frozen=True)
class IDEstimate:
    """An intrinsic dimension with its error bar, from `n_points` points."""

    id: float
    err: float
    n_points: int


@dataclass(frozen=True)
class IDScaling:
    """Intrinsic dimension at growing distance scales; `ranks` are GRIDE's n1 or TwoNN's subset sizes."""

    scales: list[float] = field(default_factory=list)
    ids: list[float] = field(default_factory=list)
    errs: list[float] = field(default_factory=list)
    ranks: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, list]:
        return asdict(self)


# ----- TwoNN -------------------------------------------------------------------------------------------------
def twonn(
    X: np.ndarray,
    discard_fraction: float = 0.1,
    *,
    method: str = "linear",
    n_bootstrap: int = 100,
    seed: int = 0,
    neighbours: Neighbours | None = None,
) -> IDEstimate:
    """TwoNN intrinsic dimension of the distinct points X (n, D); reuse `neighbours` when already computed."""
    if neighbours is None:
        neighbours = nearest_neighbours(X, 2)
    if neighbours.distances.shape[1] < 2:
        return IDEstimate(math.nan, math.nan, len(neighbours.distances))
    r1, r2 = neighbours.distances[:, 0], neighbours.distances[:, 1]
    return twonn_from_distances(r1, r2, discard_fraction, method=method, n_bootstrap=n_bootstrap, seed=seed)


def twonn_from_distances(
    r1: np.ndarray,
    r2: np.ndarray,
    discard_fraction: float = 0.1,
    *,
    method: str = "linear",
    n_bootstrap: int = 100,
    seed: int = 0,
) -> IDEstimate:
    """TwoNN from each point's first and second neighbour distances (points with r1 = 0 are dropped)."""
    if method not in ("linear", "mle"):
        raise ValueError("method must be 'linear' or 'mle'")
    if not 0 <= discard_fraction < 1:
        raise ValueError("discard_fraction must be in [0, 1)")
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = np.asarray(r2, dtype=np.float64) / np.asarray(r1, dtype=np.float64)
    mu = mu[np.isfinite(mu)]
    n = len(mu)
    if int(n * (1 - discard_fraction)) < 3:
        return IDEstimate(math.nan, math.nan, n)
    log_mu = np.log(np.sort(mu))
    estimate = _twonn_fit(log_mu[None, :], discard_fraction, method)[0]
    err = math.nan
    if n_bootstrap > 1:
        rng = np.random.default_rng(seed)
        resampled = np.sort(log_mu[rng.integers(0, n, size=(n_bootstrap, n))], axis=1)
        err = float(np.std(_twonn_fit(resampled, discard_fraction, method), ddof=1))
    return IDEstimate(float(estimate), err, n)


def _twonn_fit(sorted_log_mu: np.ndarray, discard_fraction: float, method: str) -> np.ndarray:
    """TwoNN on each row of sorted log-ratios (rows: bootstrap replicates), scikit-dimension's conventions.

    The k = int(n (1 - discard_fraction)) smallest ratios are kept, with F_emp(mu_(i)) = i / n. With nothing
    discarded the last point has F = 1 and is left out of the linear fit.
    """
    n = sorted_log_mu.shape[1]
    keep = int(n * (1 - discard_fraction))
    x = sorted_log_mu[:, :keep]
    if method == "mle":  # log mu ~ Exponential(d); the discarded ratios are censored at the largest kept one
        return (keep - 1) / (x.sum(1) + (n - keep) * x[:, -1])
    if keep == n:
        x = x[:, :-1]
    y = -np.log1p(-np.arange(1, x.shape[1] + 1) / n)
    with np.errstate(divide="ignore", invalid="ignore"):  # every ratio 1: no dimension to fit
        return (x @ y) / np.einsum("ij,ij->i", x, x)


def twonn_scaling(
    X: np.ndarray,
    *,
    min_points: int = 40,
    discard_fraction: float = 0.1,
    method: str = "linear",
    seed: int = 0,
    neighbours: Neighbours | None = None,
) -> IDScaling:
    """TwoNN with decimation: ID on random subsets of n, n/2, n/4, ... points (at least `min_points`)."""
    X = np.asarray(X, dtype=np.float32)
    order = np.random.default_rng(seed).permutation(len(X))
    out = IDScaling()
    size = len(X)
    while size >= min_points:
        if size == len(X) and neighbours is not None:
            nb = neighbours
        else:
            nb = nearest_neighbours(X[order[:size]], 2)
        if nb.distances.shape[1] < 2:
            break
        est = twonn(X[order[:size]], discard_fraction, method=method, n_bootstrap=50, seed=seed, neighbours=nb)
        out.scales.append(float(nb.distances[:, 1].mean()))
        out.ids.append(est.id)
        out.errs.append(est.err)
        out.ranks.append(size)
        size //= 2
    return out


# ----- GRIDE -------------------------------------------------------------------------------------------------
def gride(X: np.ndarray, max_rank: int = 64, *, neighbours: Neighbours | None = None) -> IDScaling:
    """GRIDE at n1 = 1, 2, 4, ... with n2 = 2 n1 <= max_rank (at most the number of other points)."""
    if neighbours is None:
        neighbours = nearest_neighbours(X, max_rank)
    return gride_from_distances(neighbours.distances[:, :max_rank])


def gride_from_distances(distances: np.ndarray) -> IDScaling:
    """GRIDE scaling from sorted neighbour distances (n, k): column j holds the distance to neighbour j + 1."""
    out = IDScaling()
    n1 = 1
    while 2 * n1 <= distances.shape[1]:
        r1, r2 = distances[:, n1 - 1], distances[:, 2 * n1 - 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            log_mu = np.log(r2 / r1)
        estimate, err = gride_mle(log_mu[np.isfinite(log_mu)], n1, 2 * n1)
        out.scales.append(float(r2.mean()))
        out.ids.append(estimate)
        out.errs.append(err)
        out.ranks.append(n1)
        n1 *= 2
    return out


def gride_mle(log_mu: np.ndarray, n1: int, n2: int) -> tuple[float, float]:
    """Maximum-likelihood d (and its Fisher error bar) for the log-ratios log(r_n2 / r_n1) of many points."""
    if n1 >= n2:
        raise ValueError("GRIDE needs n1 < n2")
    extra = n2 - n1 - 1  # exponent of (mu^d - 1)
    log_mu = np.asarray(log_mu, dtype=np.float64)
    if extra:
        log_mu = log_mu[log_mu > 0]  # a tie r_n2 = r_n1 has zero likelihood for every d
    n = len(log_mu)
    if n < 3 or log_mu.sum() <= 0:
        return math.nan, math.nan
    total = log_mu.sum()

    def score(d: float) -> float:  # derivative of the log-likelihood; decreasing in d
        value = n / d - (n2 - 1) * total
        if extra:
            value += extra * np.sum(log_mu / -np.expm1(-d * log_mu))
        return value

    if extra == 0:
        d = n / ((n2 - 1) * total)
    else:
        hi = max(1.0, n / total)
        while score(hi) > 0:
            hi *= 2
        lo = hi / 2
        while score(lo) < 0:
            lo /= 2
        d = brentq(score, lo, hi, xtol=1e-10, rtol=1e-12)
    curvature = n / d**2
    if extra:
        with np.errstate(over="ignore"):
            curvature += extra * np.sum(log_mu**2 / (4 * np.sinh(d * log_mu / 2) ** 2))
    return float(d), float(1 / math.sqrt(curvature))


# ----- PCA and cloud statistics -------------------------------------------------------------------------------
def pca_spectrum(X: np.ndarray) -> np.ndarray:
    """Variances along the principal axes (covariance eigenvalues), largest first (numerics.pca)."""
    return fit_pca(X, axes=False).variances


def pca_id(X: np.ndarray, threshold: float = 0.9) -> int:
    """Number of principal components that explain `threshold` (e.g. 90%) of the variance."""
    return components_for(pca_spectrum(X), threshold)


def participation_ratio(X: np.ndarray | None = None, *, spectrum: np.ndarray | None = None) -> float:
    """(sum lambda)^2 / sum lambda^2 over the covariance eigenvalues: d for an isotropic d-dim Gaussian."""
    if spectrum is not None:
        values = spectrum
    elif X is not None:
        values = pca_spectrum(X)
    else:
        raise ValueError("participation_ratio needs the points X or their spectrum")
    denominator = float(np.sum(values**2))
    return float(np.sum(values) ** 2 / denominator) if denominator > 0 else math.nan


def mean_norm(X: np.ndarray) -> float:
    """Average Euclidean length of the points."""
    return float(np.linalg.norm(np.asarray(X, dtype=np.float64), axis=1).mean()) if len(X) else math.nan


def mean_cosine(X: np.ndarray) -> float:
    """Mean cosine similarity over all pairs of distinct points (anisotropy); zero vectors are left out."""
    X = np.asarray(X, dtype=np.float64)
    norms = np.linalg.norm(X, axis=1)
    units = X[norms > 0] / norms[norms > 0, None]
    n = len(units)
    if n < 2:
        return math.nan
    total = units.sum(0)
    return float((total @ total - n) / (n * (n - 1)))


def pca_components(spectrum: np.ndarray, thresholds: Sequence[float] = PCA_THRESHOLDS) -> dict[str, int]:
    """Components needed for each variance share, keyed by percent ('75', '80', ...)."""
    return {f"{round(t * 100)}": components_for(spectrum, t) for t in thresholds}


def gram_log_volume(vectors: np.ndarray, *, unit: bool = False) -> float:
    """log of the volume of the parallelotope the vectors span, 0.5 log det(V V^T) (-inf if dependent).

    With `unit`, the vectors are first scaled to length 1, so only their directions count (0 = orthogonal).
    """
    V = np.asarray(vectors, dtype=np.float64)
    if unit:
        V = V / np.linalg.norm(V, axis=1, keepdims=True)
    singular = np.linalg.svd(V, compute_uv=False)
    if len(singular) < len(V) or singular.min() <= singular.max() * 1e-6:  # dependent at float32 precision
        return -math.inf
    return float(np.log(singular).sum())
