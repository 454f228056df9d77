"""Saliency figures: the prompt's tokens coloured by their score, and both methods side by side."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gpt2atlas.analysis.saliency import SaliencyResult
from gpt2atlas.viz.figures import Figures
from gpt2atlas.viz.labels import token_label, token_labels

DIVERGING = "RdBu"  # red: pushes the target down, blue: pushes it up
PER_LINE = 12


def _wrapped(
    values: Sequence[float], labels: Sequence[str], per_line: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values, cell text and positions laid out like text: `per_line` tokens per row, NaN padding at the end."""
    n_rows = math.ceil(len(values) / per_line)
    size = n_rows * per_line
    z = np.full(size, np.nan)
    z[: len(values)] = values
    text = np.array(list(labels) + [""] * (size - len(labels)), dtype=object)
    pos = np.array(list(range(len(values))) + [-1] * (size - len(values)))
    return z.reshape(n_rows, per_line), text.reshape(n_rows, per_line), pos.reshape(n_rows, per_line)


def coloured_tokens_figure(methods: dict[str, Sequence[float]], tokens: Sequence[str], target: str) -> go.Figure:
    """The prompt as wrapped text, one panel per method, each token's cell coloured by its score (0 = white)."""
    labels = token_labels(tokens)
    per_line = min(PER_LINE, len(labels))
    n_rows = math.ceil(len(labels) / per_line)
    fig = make_subplots(rows=len(methods), cols=1, subplot_titles=list(methods), vertical_spacing=0.12)
    for i, values in enumerate(methods.values()):
        z, text, pos = _wrapped(values, labels, per_line)
        bound = float(np.nanmax(np.abs(z))) or 1.0
        fig.add_trace(
            go.Heatmap(
                z=z,
                text=text,
                customdata=pos,
                texttemplate="%{text}",
                colorscale=DIVERGING,
                zmid=0,
                zmin=-bound,
                zmax=bound,
                xgap=2,
                ygap=2,
                colorbar={"title": "score", "len": 1 / len(methods), "y": 1 - (i + 0.5) / len(methods)},
                hovertemplate="position %{customdata}: %{text}<br>score %{z:.4f}<extra></extra>",
            ),
            row=i + 1,
            col=1,
        )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed")
    fig.update_layout(
        title=f"which tokens drive the logit of {target} (blue: up, red: down)",
        width=max(700, 95 * per_line + 150),
        height=len(methods) * (48 * n_rows + 90) + 120,
        plot_bgcolor="white",
    )
    return fig


def scores_bar_figure(methods: dict[str, Sequence[float]], tokens: Sequence[str]) -> go.Figure:
    """Both methods per position as grouped bars."""
    labels = token_labels(tokens, numbered=True)
    fig = go.Figure(
        [
            go.Bar(name=name, x=labels, y=list(values), hovertemplate="%{x}: %{y:.4f}<extra></extra>")
            for name, values in methods.items()
        ]
    )
    fig.update_layout(
        title="saliency per input token",
        barmode="group",
        xaxis={"tickangle": -60},
        yaxis={"title": "contribution to the target logit"},
        width=max(700, 24 * len(labels) + 250),
        height=480,
    )
    return fig


def saliency_figures(result: SaliencyResult) -> dict[str, go.Figure]:
    """Every saliency figure, by file name."""
    f = result.findings
    methods: dict[str, Sequence[float]] = {
        "integrated gradients": f.integrated_gradients,
        "gradient x input": f.gradient_x_input,
    }
    target = token_label(f.target.token)
    return {
        "tokens_coloured": coloured_tokens_figure(methods, f.tokens, target),
        "scores_bar": scores_bar_figure(methods, f.tokens),
    }


FIGURES = Figures(
    saliency_figures,
    {
        "tokens_coloured": "The prompt coloured by each token's saliency for the prediction.",
        "scores_bar": "Each input token's saliency for the predicted next token.",
    },
    first=("tokens_coloured", "scores_bar"),
)
