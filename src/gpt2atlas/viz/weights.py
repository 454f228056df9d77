"""A weight block as a heat map beside the histogram of its values."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gpt2atlas.analysis.weights import WeightBlockFindings, WeightReport, WeightView
from gpt2atlas.viz.figures import Figures
from gpt2atlas.viz.labels import escape

MAX_SECTION_LINES = 72
CLIP_QUANTILE = 0.999


def _span_text(findings: WeightBlockFindings) -> str:
    (c0, c1), rows = findings.cols, findings.rows
    return f"entries {c0}:{c1}" if rows is None else f"rows {rows[0]}:{rows[1]}, cols {c0}:{c1}"


def _section_lines(fig: go.Figure, sections: list[tuple[int, str]], index: np.ndarray, axis: str) -> None:
    """Thin lines where heads (and Q, K, V) start, if they fall inside the block and are not too many."""
    if len(index) < 2:
        return
    inside = [(start, label) for start, label in sections if index[0] < start <= index[-1]]
    if not inside or len(inside) > MAX_SECTION_LINES:
        return
    for start, label in inside:
        major = label.endswith("head 0")  # the start of Q, K or V
        style = {"line_color": "black" if major else "rgba(0,0,0,0.3)", "line_width": 1.5 if major else 0.5}
        if axis == "cols":
            fig.add_vline(x=start - 0.5, row=1, col=1, **style)
        else:
            fig.add_hline(y=start - 0.5, row=1, col=1, **style)


def weight_figure(view: WeightView, findings: WeightBlockFindings) -> go.Figure:
    """Heat map of the (possibly strided) block, and the histogram of every value in it."""
    values = view.values
    limit = float(np.quantile(np.abs(values), CLIP_QUANTILE)) if values.size else 1.0
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.72, 0.28],
        horizontal_spacing=0.14,
        subplot_titles=("values", "histogram of every value in the block (log scale)"),
    )
    fig.add_trace(
        go.Heatmap(
            z=values,
            x=view.col_index,
            y=view.row_index,
            colorscale="RdBu",
            zmid=0,
            zmin=-(limit or 1.0),
            zmax=limit or 1.0,
            colorbar={"title": "value", "x": 0.625, "thickness": 15},
            hovertemplate="row %{y}<br>col %{x}<br>%{z:.5f}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    centres = (view.edges[:-1] + view.edges[1:]) / 2
    fig.add_trace(
        go.Bar(
            x=centres,
            y=view.counts,
            width=np.diff(view.edges),
            marker_color="#1f77b4",
            showlegend=False,
            hovertemplate="%{x:.4f}: %{y} values<extra></extra>",
        ),
        row=1,
        col=2,
    )
    _section_lines(fig, view.sections["cols"], view.col_index, "cols")
    _section_lines(fig, view.sections["rows"], view.row_index, "rows")
    stats = findings.stats
    stride = findings.figure_stride
    shown = [f"1 in {n} {axis}" for n, axis in zip(stride, ("rows", "columns"), strict=True) if n > 1]
    strided = f"; heat map shows {' and '.join(shown)}" if shown else ""
    title = (
        f"{escape(findings.param)} {tuple(findings.shape)}, {escape(_span_text(findings))}"
        f"<br><sup>mean {stats.mean:.3g}, std {stats.std:.3g}, min {stats.min:.3g}, "
        f"max {stats.max:.3g}; colours clipped at ±{limit:.3g} ({CLIP_QUANTILE:.1%} of |values|)"
        f"{strided}</sup>"
    )
    fig.update_yaxes(title_text="row", autorange="reversed", row=1, col=1)
    fig.update_xaxes(title_text="column", row=1, col=1)
    fig.update_xaxes(title_text="value", row=1, col=2)
    fig.update_yaxes(title_text="count", type="log", row=1, col=2)
    fig.update_layout(title={"text": title, "x": 0.01}, height=650, width=1400, bargap=0)
    return fig


def weights_figures(result: WeightReport) -> dict[str, go.Figure]:
    """The weight heat map (when a weight was asked for), the model summary and the 3-D architecture."""
    from gpt2atlas.viz.architecture import architecture_figure, summary_figure

    figures: dict[str, go.Figure] = {}
    if result.view is not None and isinstance(result.findings, WeightBlockFindings):
        figures["heatmap"] = weight_figure(result.view, result.findings)
    figures["model_summary"] = summary_figure(result.model_summary)
    figures["architecture_3d"] = architecture_figure(result.model_summary)
    return figures


FIGURES = Figures(
    weights_figures,
    {
        "heatmap": "A block of one weight matrix, value by value, beside the histogram of all its values.",
        "model_summary": "Parameters per component and per layer.",
        "architecture_3d": "The architecture in 3-D: each block's parts, sized by their parameters.",
    },
    first=("heatmap", "model_summary", "architecture_3d"),
)
