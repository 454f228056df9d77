"""The typed findings of the embeddings analysis (`analysis.embeddings.analyze`): field names are findings.json's
keys, in the order they are written."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EmbeddedModel:
    """The model the tables come from."""

    source: str
    d_model: int
    d_vocab: int
    n_ctx: int


# ----- token embedding (W_E) ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OffsetDim:
    """A dim whose mean over all tokens stands out: z = (mean - mean of means) / std of means."""

    dim: int
    mean: float
    z: float


@dataclass(frozen=True)
class TokenValue:
    """A token and its value (a norm)."""

    id: int
    token: str
    value: float


@dataclass(frozen=True)
class TokenNorm:
    """Token-embedding norms: mean, std, range, and the tokens at both ends."""

    mean: float
    std: float
    min: float
    max: float
    min_token: str
    max_token: str
    min_token_id: int
    max_token_id: int
    smallest: list[TokenValue]
    largest: list[TokenValue]


@dataclass(frozen=True)
class LocalPCA:
    """PCA of kNN neighbourhoods (cosine): components for 90% of the variance, over the anchors (None: no anchor)."""

    neighbourhood_size: int
    anchors: int
    components_for_90pct_mean: float | None
    components_for_90pct_median: float | None
    components_for_90pct_min: int | None
    components_for_90pct_max: int | None


@dataclass(frozen=True)
class TokenEmbedding:
    offset_dims: list[OffsetDim]
    offset_z_chance: float  # |z| of the top dim, 95% of Gaussian tables
    norm: TokenNorm
    pca_explained_variance_ratio: list[float]
    pca_first_share_chance: float  # isotropic Gaussian, same shape
    pca_components_for_90pct: int
    local_pca: LocalPCA


# ----- position embedding (W_pos) ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ActiveDim:
    """A dim (column) that varies much across positions."""

    dim: int
    std: float


@dataclass(frozen=True)
class Period:
    """A column's dominant period over positions (None: flat) and the share of its power that sinusoid holds."""

    period: float | None
    power_share: float


@dataclass(frozen=True)
class PeriodicDim:
    """An active dim's dominant period over positions (None: flat), the share of power it holds, and smoothness."""

    dim: int
    period: float | None
    power_share: float
    smoothness: float


@dataclass(frozen=True)
class PositionValue:
    """A position and its value (a norm)."""

    position: int
    value: float


@dataclass(frozen=True)
class PositionNorm:
    """Position-embedding norms: mean, std, range, and the positions at both ends."""

    mean: float
    std: float
    min: float
    max: float
    min_position: int
    max_position: int
    smallest: list[PositionValue]
    largest: list[PositionValue]


@dataclass(frozen=True)
class NormOutlier:
    """A position whose norm is far from the others' (z over positions)."""

    position: int
    norm: float
    z: float


@dataclass(frozen=True)
class PositionEmbedding:
    active_dims: list[ActiveDim]
    periodicity: list[PeriodicDim]
    period_share_chance: float | None  # the best share among as many white-noise columns, 95% of draws
    smoothness: float
    pca_explained_variance_ratio: list[float]
    pca_components_for_90pct: int
    norm: PositionNorm
    position0_norm_z: float
    norm_outliers: list[NormOutlier]


# ----- neighbours and the rest ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Neighbour:
    id: int
    token: str
    cosine: float


@dataclass(frozen=True)
class TokenNeighbours:
    """A queried token and its nearest tokens by cosine, nearest first."""

    id: int
    token: str
    neighbours: list[Neighbour]


@dataclass(frozen=True)
class ProjectionSample:
    """The token sample drawn in the projections (t-SNE and UMAP embed its first `tsne_umap_size`)."""

    size: int
    tsne_umap_size: int
    seed: int
    methods: list[str]
    labelled_tokens: int


@dataclass(frozen=True)
class EmbeddingFindings:
    model: EmbeddedModel
    token_embedding: TokenEmbedding
    position_embedding: PositionEmbedding
    neighbours_of: str  # "prompt" or "default" (a list of words)
    neighbours: list[TokenNeighbours]
    neighbour_cosine_chance: float  # the nearest of d_vocab - 1 random directions, 95% of draws
    dim_pairs: list[list[int]]
    projection_sample: ProjectionSample
