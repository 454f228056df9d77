"""Every analysis area, each declared once in its own module as an `AreaSpec` (see spec.py); the registry is
the list of specs, in the order the report and the dashboard show them."""

from __future__ import annotations

import plotly.graph_objects as go

from gpt2atlas.analysis.base import AnalysisResult
from gpt2atlas.areas import (
    attention,
    causes,
    embeddings,
    geometry,
    journey,
    layernorm,
    neurons,
    residual,
    saliency,
    weights,
)
from gpt2atlas.areas.spec import AreaSpec

AREAS: tuple[AreaSpec, ...] = (
    embeddings.SPEC,
    weights.SPEC,
    attention.SPEC,
    neurons.SPEC,
    layernorm.SPEC,
    residual.SPEC,
    journey.SPEC,
    saliency.SPEC,
    geometry.SPEC,
    causes.SPEC,
)
LAYER_AREAS = tuple(spec for spec in AREAS if spec.inside_layers)


def spec_of(result: AnalysisResult) -> AreaSpec:
    """The spec of the area that made `result` (ValueError for a result no area declares: never drawn as
    nothing)."""
    for spec in AREAS:
        if spec.key == result.area:
            return spec
    raise ValueError(f"no area declares results of {result.area!r} ({type(result).__name__})")


def figures_of(result: AnalysisResult) -> dict[str, go.Figure]:
    """The named figures of any area's result."""
    return spec_of(result).figures(result)


def area(key: str) -> AreaSpec:
    """The spec of the area named `key`, for scripts and tests (KeyError naming the areas for an unknown one)."""
    for spec in AREAS:
        if spec.key == key:
            return spec
    raise KeyError(f"no area {key!r}: the areas are {', '.join(spec.key for spec in AREAS)}")
