"""Geometry of the hidden representations: intrinsic dimension and shape of point clouds, layer by layer."""

from gpt2atlas.geometry.estimators import (
    IDEstimate,
    IDScaling,
    gride,
    mean_cosine,
    mean_norm,
    participation_ratio,
    pca_id,
    pca_spectrum,
    twonn,
    twonn_scaling,
)
from gpt2atlas.numerics.neighbours import nearest_neighbours, unique_rows

__all__ = [
    "IDEstimate",
    "IDScaling",
    "gride",
    "mean_cosine",
    "mean_norm",
    "nearest_neighbours",
    "participation_ratio",
    "pca_id",
    "pca_spectrum",
    "twonn",
    "twonn_scaling",
    "unique_rows",
]
