"""Residual-stream figures: norm growth, a token x layer norm heat map, outlier dims across layers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go

from gpt2atlas.viz.figures import Figures
from gpt2atlas.viz.labels import token_labels

if TYPE_CHECKING:
    from gpt2atlas.analysis.residual import OutlierDim, RatioDim, ResidualResult

MAX_DIM_LINES = 8


def norm_growth_figure(result: ResidualResult) -> go.Figure:
    """Mean norm of the stream per state (log scale), position 0 apart, and what each block's parts write."""
    f = result.findings
    states = f.states
    used = "positions ≥ 1" if f.position_0_excluded else "all positions"
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=states, y=f.norm_by_layer, mode="lines+markers", name=f"stream, mean over {used}"))
    fig.add_trace(
        go.Scatter(
            x=states, y=f.norm_position_0, mode="lines+markers", name="stream at position 0", line={"dash": "dot"}
        )
    )
    blocks = [f"block {row.layer}" for row in f.contributions]
    fig.add_trace(go.Bar(x=blocks, y=[r.attn_out_norm for r in f.contributions], name="attention output"))
    fig.add_trace(go.Bar(x=blocks, y=[r.mlp_out_norm for r in f.contributions], name="MLP output"))
    fig.update_layout(
        title="Residual stream norm after the embedding and after each block; bars: what the block added",
        xaxis_title="residual state",
        yaxis={"title": "L2 norm (log scale)", "type": "log"},
        barmode="group",
        width=900,
        height=520,
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def token_layer_figure(result: ResidualResult) -> go.Figure:
    """Norm of every token's residual at every state, coloured on a log scale (position 0 included)."""
    f = result.findings
    norms = result.norms.numpy().T  # (pos, state)
    labels = token_labels(f.tokens, numbered=True)
    fig = go.Figure(
        go.Heatmap(
            z=np.log10(np.maximum(norms, 1e-12)),
            x=f.states,
            y=labels,
            customdata=norms,
            colorscale="Viridis",
            colorbar={"title": "log10 norm"},
            hovertemplate="%{y}<br>%{x}<br>norm %{customdata:.4g}<extra></extra>",
        )
    )
    fig.update_layout(
        title="Residual norm per token and layer (log colour; position 0 shown, though left out of statistics)",
        xaxis_title="residual state",
        yaxis={"title": "token", "autorange": "reversed"},
        width=900,
        height=int(min(1400, max(400, 18 * len(labels) + 160))),
    )
    return fig


def outlier_dims_figure(result: ResidualResult) -> go.Figure:
    """Peak |activation| over the median of each state for the outlier dims (or the top dims if none)."""
    f = result.findings
    rows: Sequence[OutlierDim | RatioDim] = f.outlier_dims or f.top_ratio_dims
    dims = [row.dim for row in rows[:MAX_DIM_LINES]]
    ratios = result.ratios.numpy()
    fig = go.Figure()
    for dim in dims:
        fig.add_trace(go.Scatter(x=f.states, y=ratios[:, dim], mode="lines+markers", name=f"dim {dim}"))
    fig.add_trace(
        go.Scatter(
            x=f.states,
            y=np.median(ratios, axis=1),
            mode="lines",
            name="median dim",
            line={"color": "grey", "dash": "dash"},
        )
    )
    # a trace, not add_hline: plotly places a shape's annotation on a log axis at 10^y
    fig.add_trace(
        go.Scatter(
            x=f.states,
            y=[f.outlier_threshold] * len(f.states),
            mode="lines",
            name=f"outlier threshold {f.outlier_threshold:g}x",
            line={"color": "red", "dash": "dot"},
        )
    )
    which = "outlier dims" if f.outlier_dims else "no dim reaches the threshold; the top dims"
    fig.update_layout(
        title=f"Residual dims across layers ({which}): peak |activation| / median |activation|",
        xaxis_title="residual state",
        yaxis={"title": "ratio to the median (log scale)", "type": "log"},
        width=900,
        height=500,
    )
    return fig


def residual_figures(result: ResidualResult) -> dict[str, go.Figure]:
    return {
        "norm_growth": norm_growth_figure(result),
        "token_layer_norms": token_layer_figure(result),
        "outlier_dims": outlier_dims_figure(result),
    }


FIGURES = Figures(
    residual_figures,
    {
        "norm_growth": "The residual stream's norm after each layer, and what attention and MLP add to it.",
        "outlier_dims": "The outlier dimensions: peak |activation| over the median of each residual state.",
        "token_layer_norms": "The residual norm of each token at each layer.",
    },
    first=("norm_growth", "outlier_dims", "token_layer_norms"),
)
