"""The typed findings of the geometry analysis (`geometry.analysis.analyze`): field names are findings.json's keys,
in the order they are written."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, Union

from gpt2atlas.analysis.base import optional
from gpt2atlas.geometry.estimators import IDScaling


@dataclass(frozen=True, kw_only=True)
class CorpusInfo:
    """Where the texts came from; a source writes only the keys it has (user texts: name and counts only)."""

    name: str
    description: str | None = optional()
    source: str | None = optional()
    python: str | None = optional()
    n_files: int | None = optional()
    n_available: int
    n_texts: int


@dataclass(frozen=True)
class GeometryConfig:
    """The model's shape."""

    n_layer: int
    d_model: int


@dataclass(frozen=True)
class GeometrySettings:
    """The knobs of the run, then how each number was obtained (METHODS)."""

    max_texts: int
    max_tokens: int
    all_tokens_budget: int
    substeps: bool
    include_first_position: bool
    gride_max_rank: int
    twonn_discard_fraction: float
    seed: int
    twonn: str
    gride: str
    twonn_decimation: str
    pca: str
    duplicates: str
    clouds: str


@dataclass(frozen=True)
class CloudMeasures:
    """Every estimate for one cloud (NaN where the cloud is too degenerate to say)."""

    n_points: int  # distinct points, the ones the distance-based estimates use
    n_duplicates: int
    twonn_id: float
    twonn_err: float
    gride: IDScaling
    twonn_decimation: IDScaling
    pca_id_90: int
    pca_components: dict[str, int]  # variance percent ('75', '80', ...) -> components needed
    pca_spectrum: list[float]
    participation_ratio: float
    mean_norm: float
    mean_cosine: float


@dataclass(frozen=True)
class LayerRow:
    """One cloud at one measurement site: where it was measured, then its CloudMeasures."""

    layer: int
    substep: str
    site: str
    depth: float
    cloud: str
    n_points: int
    n_duplicates: int
    twonn_id: float
    twonn_err: float
    gride: IDScaling
    twonn_decimation: IDScaling
    pca_id_90: int
    pca_components: dict[str, int]
    pca_spectrum: list[float]
    participation_ratio: float
    mean_norm: float
    mean_cosine: float

    @classmethod
    def of(cls, layer: int, substep: str, site: str, depth: float, cloud: str, measured: CloudMeasures) -> LayerRow:
        return cls(
            layer,
            substep,
            site,
            depth,
            cloud,
            **{f.name: getattr(measured, f.name) for f in dataclasses.fields(measured)},
        )


@dataclass(frozen=True)
class CloudSummary:
    """A cloud's residual-stream TwoNN ID at its peak layer, the control's at that layer (None without one), and
    at the first and last layers."""

    peak_layer: int
    peak_twonn_id: float
    peak_control_twonn_id: float | None
    peak_control_twonn_err: float | None
    first_twonn_id: float
    last_twonn_id: float


@dataclass(frozen=True)
class ControlEstimate:
    id: float
    err: float


@dataclass(frozen=True)
class RandomControl:
    """The random-initialised GPT-2 of the same shape, measured on the same texts and points (the chance baseline)."""

    kind: str
    seed: int
    twonn: dict[str, list[ControlEstimate]]  # per cloud, per residual layer (0 = embedding output)
    mean_cosine: dict[str, list[float]]  # the same, for the anisotropy reading


@dataclass(frozen=True)
class TextDistances:
    """Distances between the last-token vectors of the first texts at the focus layer."""

    layer: int
    cloud: str
    texts: list[str]
    euclidean: list[list[float]]
    cosine: list[list[float]]


@dataclass(frozen=True)
class TsneMap:
    """3D t-SNE of the last-token cloud at the focus layer (empty lists under 5 points)."""

    layer: int
    cloud: str
    n_points: int
    coords: list[list[float]]
    texts: list[str]
    n_tokens: list[int]


@dataclass(frozen=True)
class GramProfile:
    """log-volume spanned by the prompt's token vectors at every residual layer (-inf where they are dependent)."""

    prompt: str
    tokens: list[str]
    first_position: int
    layers: list[int]
    log_volume: list[float]
    log_volume_unit: list[float]


@dataclass(frozen=True)
class Timing:
    """Seconds per stage of the run."""

    corpus_s: float
    extraction_s: float
    estimation_s: float
    control_s: float
    extras_s: float
    total_s: float


@dataclass(frozen=True)
class Memory:
    clouds_mb: float
    peak_rss_mb: float | None  # None where the platform cannot say


@dataclass(frozen=True)
class GeometryFindings:
    model: str
    config: GeometryConfig
    corpus: CorpusInfo
    settings: GeometrySettings
    n_texts: int
    n_texts_skipped_short: int
    n_tokens: int
    layers: list[LayerRow]
    summary: dict[str, CloudSummary]  # cloud -> its summary
    control: RandomControl | None
    focus_layer: int
    text_distances: TextDistances
    tsne: TsneMap
    gram: GramProfile
    timing: Timing
    memory: Memory

    @classmethod
    def from_jsonable(cls, data: dict[str, Any]) -> GeometryFindings:
        """The findings back from their JSON (a saved findings.json): the marks "NaN", "Infinity" and "-Infinity"
        become those floats again, and a null number (files written before the marks) becomes NaN."""
        return typing.cast(GeometryFindings, _build(cls, data))


def _build(kind: Any, value: Any) -> Any:
    """`value` (JSON data) as an instance of the type `kind`: dataclasses, lists, dicts, optionals and scalars."""
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        hints = typing.get_type_hints(kind)
        return kind(
            **{f.name: _build(hints[f.name], value[f.name]) for f in dataclasses.fields(kind) if f.name in value}
        )
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (Union, types.UnionType):
        if value is None:
            return None
        return _build(next(a for a in args if a is not type(None)), value)
    if origin is list:
        return [_build(args[0], v) for v in value]
    if origin is dict:
        return {k: _build(args[1], v) for k, v in value.items()}
    if kind is float:
        return math.nan if value is None else float(value)
    return value
