"""What noise of the same shape gives: the baselines a reading must beat before it claims structure.

A random-initialised GPT-2 has i.i.d. Gaussian weights, so most of its statistics have a known distribution;
where one has no closed form, the analysis samples it with its own measure (embeddings.period_share_chance). Each
function returns the value noise stays under in 95% of draws (the `q` quantile), unless it says otherwise.
"""

from __future__ import annotations

import math
from statistics import NormalDist

Q = 0.95
_NORMAL = NormalDist()


def max_abs_normal(n: int, q: float = Q) -> float:
    """The q-quantile of max |z| over n independent standard normals: P(max |z| <= t) = (2Φ(t) - 1)^n = q."""
    return _NORMAL.inv_cdf((1.0 + q ** (1.0 / max(n, 1))) / 2.0)


def max_abs_over_median(n: int, q: float = Q) -> float:
    """The q-quantile of max |z| / median |z| over n independent normals (the median of |z| is 0.6745 sigma)."""
    return max_abs_normal(n, q) / _NORMAL.inv_cdf(0.75)


def nearest_cosine(d: int, n: int, q: float = Q) -> float:
    """The q-quantile of the largest cosine between one random direction in d dims and n others.

    The cosine of two uniform random directions follows (1 + c) / 2 ~ Beta((d - 1) / 2, (d - 1) / 2) exactly
    (the normal N(0, 1/d) overstates its tails when d is small).
    """
    from scipy.stats import beta

    shape = (d - 1) / 2
    return float(2.0 * beta.ppf(q ** (1.0 / max(n, 1)), shape, shape) - 1.0)


def top_component_share(n: int, d: int) -> float:
    """The first principal component's share of the variance of n isotropic Gaussian points in d dims.

    The top eigenvalue of their covariance sits at the Marchenko–Pastur edge, (1 + sqrt(d / n))² times the
    per-dim variance, and the d eigenvalues sum to d times it.
    """
    return (1.0 + math.sqrt(d / n)) ** 2 / d


def stable_rank(rows: int, cols: int) -> float:
    """‖W‖_F² / ‖W‖_2² of a rows × cols matrix of i.i.d. entries: rows·cols / (sqrt(rows) + sqrt(cols))²."""
    return rows * cols / (math.sqrt(rows) + math.sqrt(cols)) ** 2
