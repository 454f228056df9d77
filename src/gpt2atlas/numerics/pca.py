"""Principal component analysis, exact: from the smaller of the covariance (d x d) and the Gram matrix (n x n).

Both have the same non-zero eigenvalues; the axes come from the covariance's eigenvectors, or, through the Gram
matrix, as X^T u / sqrt(lambda). float64 throughout, on one BLAS thread (see numerics.threads).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gpt2atlas.numerics.threads import single_thread_lapack

VARIANCE_TARGET = 0.9


@dataclass(frozen=True)
class PCA:
    """Principal axes of a cloud's rows, largest variance first."""

    mean: np.ndarray  # (d,)
    variances: np.ndarray  # (r,) covariance eigenvalues (r = min(n, d))
    axes: np.ndarray | None  # (d, r) unit columns; None when only the spectrum was asked for

    @property
    def ratio(self) -> np.ndarray:
        """Each axis's share of the total variance."""
        total = float(self.variances.sum())
        return self.variances / total if total > 0 else np.zeros(len(self.variances))

    def components_for(self, target: float = VARIANCE_TARGET) -> int:
        return components_for(self.ratio, target)

    def project(self, rows: np.ndarray | torch.Tensor, n: int) -> np.ndarray:
        """Coordinates of `rows` on the first `n` axes."""
        if self.axes is None:
            raise ValueError("this PCA was fitted without axes (axes=False)")
        rows = rows.double().numpy() if isinstance(rows, torch.Tensor) else np.asarray(rows, dtype=np.float64)
        return (rows - self.mean) @ self.axes[:, : min(n, self.axes.shape[1])]


def fit_pca(X: np.ndarray | torch.Tensor, *, axes: bool = True, centre: bool = True) -> PCA:
    """The exact PCA of X (n, d). `axes=False` computes the spectrum alone (eigenvalues only: faster).

    `centre=False` takes the axes through the origin (singular vectors of X itself; variances = s^2 / (n - 1)).
    """
    data = X.double().numpy() if isinstance(X, torch.Tensor) else np.asarray(X, dtype=np.float64)
    n, d = data.shape
    mean = data.mean(axis=0) if centre and n else np.zeros(d)
    if n < 2 and centre:
        return PCA(mean, np.zeros(0), np.zeros((d, 0)) if axes else None)
    centred = data - mean
    gram = n < d
    small = centred @ centred.T if gram else centred.T @ centred
    with single_thread_lapack():
        if axes:
            values, vectors = np.linalg.eigh(small)
        else:
            values, vectors = np.linalg.eigvalsh(small), None
    values = np.clip(values[::-1], 0.0, None)
    variances = values / max(n - 1, 1)
    if vectors is None:
        return PCA(mean, variances, None)
    vectors = np.ascontiguousarray(vectors[:, ::-1])
    if gram:  # axes from the Gram eigenvectors: X^T u / |X^T u|
        directions = centred.T @ vectors
        norms = np.linalg.norm(directions, axis=0)
        vectors = np.divide(directions, norms, out=np.zeros_like(directions), where=norms > 0)
    return PCA(mean, variances, vectors)


def components_for(ratio: np.ndarray, target: float = VARIANCE_TARGET) -> int:
    """How many leading components hold `target` of the variance (`ratio` or raw variances, largest first)."""
    ratio = np.asarray(ratio, dtype=np.float64)
    total = float(ratio.sum()) if len(ratio) else 0.0
    if total <= 0:
        return 0
    return min(int(np.searchsorted(np.cumsum(ratio) / total, target - 1e-12)) + 1, len(ratio))
