"""The figures of any analysis result. Analyses compute numbers and never draw; this is where they are drawn."""

from __future__ import annotations

from importlib import import_module
from typing import Any

import plotly.graph_objects as go

from gpt2atlas.analysis.base import AnalysisResult

# area -> (viz module, its function from a result to its named figures)
_DRAWERS: dict[str, tuple[str, str]] = {
    "attention": ("gpt2atlas.viz.attention", "attention_figures"),
    "embeddings": ("gpt2atlas.viz.embeddings", "embedding_result_figures"),
    "geometry": ("gpt2atlas.viz.geometry", "geometry_result_figures"),
    "journey": ("gpt2atlas.viz.journey", "journey_figures"),
    "layernorm": ("gpt2atlas.viz.layernorm", "layernorm_figures"),
    "neurons": ("gpt2atlas.viz.neurons", "neuron_figures"),
    "residual": ("gpt2atlas.viz.residual", "residual_figures"),
    "saliency": ("gpt2atlas.viz.saliency", "saliency_figures"),
    "weights": ("gpt2atlas.viz.weights", "weights_figures"),
}


def figures_of(result: AnalysisResult) -> dict[str, go.Figure]:
    """Named plotly figures of an analysis result (names become file names); {} for an area without figures."""
    if result.area not in _DRAWERS:
        return {}
    module, function = _DRAWERS[result.area]
    draw: Any = getattr(import_module(module), function)
    return draw(result)
