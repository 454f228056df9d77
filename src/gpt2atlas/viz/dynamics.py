"""Figures of how a model learned (from `analysis.dynamics.Dynamics`), every x-axis in tokens seen (log)."""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gpt2atlas.analysis.dynamics import HEAD_SCORES, Dynamics
from gpt2atlas.training.history import TrainingHistory
from gpt2atlas.viz.figures import Figures
from gpt2atlas.viz.training import loss_curve_figure

SCORE_TITLES = {
    "prev_token": "previous-token",
    "induction": "induction",
    "duplicate": "duplicate-token",
    "bos": "first-token",
}
LAYOUT = {"template": "plotly_white", "autosize": True}


def tokens_text(tokens: int | None, step: int) -> str:
    """'33.6M tokens' (or 'step 1,024' where tokens are unknown)."""
    if tokens is None:
        return f"step {step:,}"
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if tokens >= size:
            return f"{tokens / size:.3g}{unit} tokens"
    return f"{tokens:,} tokens"


def _small_titles(fig: go.Figure) -> go.Figure:
    fig.update_annotations(font_size=12)
    return fig


def _x(tokens: int | None, step: int) -> float:
    """Tokens seen, with the initial checkpoint put just left of the first one (a log axis has no 0)."""
    value = tokens if tokens is not None else step
    return float(value) if value else math.nan


def _x_axis(dynamics: Dynamics) -> tuple[str, str]:
    with_tokens = any(p.tokens for p in dynamics.positions)
    return ("tokens seen (log scale)", "tokens") if with_tokens else ("step (log scale)", "step")


def loss_figure(dynamics: Dynamics) -> go.Figure:
    return loss_curve_figure(dynamics.losses, title="Loss")


def position_figure(dynamics: Dynamics) -> go.Figure:
    title, _ = _x_axis(dynamics)
    fig = make_subplots(
        rows=1,
        cols=3,
        horizontal_spacing=0.08,
        subplot_titles=("roughness (1.41 = noise)", "periodicity", "variance in 3 PCs"),
    )
    xs = [_x(p.tokens, p.step) for p in dynamics.positions]
    for col, (values, colour) in enumerate(
        (
            ([p.roughness for p in dynamics.positions], "#1f77b4"),
            ([p.periodicity for p in dynamics.positions], "#2ca02c"),
            ([p.pca3_share for p in dynamics.positions], "#9467bd"),
        ),
        start=1,
    ):
        fig.add_scatter(
            x=xs,
            y=values,
            mode="lines+markers",
            marker={"size": 4},
            line={"color": colour},
            showlegend=False,
            row=1,
            col=col,
        )
        fig.add_hline(
            y=values[0],
            line_dash="dot",
            line_color="grey",
            row=1,
            col=col,
            annotation_text="initialisation",
            annotation_position="bottom right",
        )
        fig.update_xaxes(type="log", title_text=title, row=1, col=col)
    fig.update_layout(
        title="Position embeddings over training: roughness, sinusoid share, principal components", height=380, **LAYOUT
    )
    return _small_titles(fig)


def heads_figure(dynamics: Dynamics) -> go.Figure:
    """Each head score as a (layer.head x checkpoint) heat map: the induction phase change reads left to right."""
    checkpoints = dynamics.checkpoints
    names = [
        f"{layer}.{head}"
        for layer in range(len(checkpoints[0].heads[0].values))
        for head in range(len(checkpoints[0].heads[0].values[0]))
    ]
    fig = make_subplots(
        rows=1,
        cols=len(HEAD_SCORES),
        shared_yaxes=True,
        horizontal_spacing=0.03,
        subplot_titles=[SCORE_TITLES[n] for n in HEAD_SCORES],
    )
    labels = [c.label for c in checkpoints]
    for col, name in enumerate(HEAD_SCORES, start=1):
        z = [[value for layer in c.head(name).values for value in layer] for c in checkpoints]
        fig.add_heatmap(
            x=labels,
            y=names,
            z=[list(row) for row in zip(*z)],
            zmin=0,
            zmax=1,
            colorscale="Viridis",
            showscale=col == len(HEAD_SCORES),
            colorbar={"title": "score"},
            hovertemplate="head %{y}<br>%{x}<br>score %{z:.3f}<extra></extra>",
            row=1,
            col=col,
        )
    fig.update_yaxes(title_text="layer.head", autorange="reversed", row=1, col=1)
    uniform = ", ".join(f"{SCORE_TITLES[n]} {dynamics.uniform_head[n]:.2f}" for n in HEAD_SCORES)
    fig.update_layout(
        title={
            "text": f"Head scores at each checkpoint<br><sup>probes: {dynamics.probe}<br>"
            f"a head attending evenly scores {uniform}</sup>"
        },
        height=max(380, 160 + 22 * len(names)),
        margin={"t": 110},
        **LAYOUT,
    )
    return _small_titles(fig)


def depth_figure(dynamics: Dynamics) -> go.Figure:
    """Logit-lens agreement and intrinsic dimension, layer by layer, one line per checkpoint."""
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("logit lens: share agreeing with the final top-1", "intrinsic dimension (TwoNN)"),
    )
    for c in dynamics.checkpoints:
        fig.add_scatter(
            x=["embed"] + [f"after block {i}" for i in range(len(c.lens_agreement) - 1)],
            y=c.lens_agreement,
            mode="lines+markers",
            name=c.label,
            legendgroup=c.label,
            row=1,
            col=1,
        )
        fig.add_scatter(
            x=[f"after block {i}" for i in range(len(c.intrinsic_dimension))],
            y=c.intrinsic_dimension,
            mode="lines+markers",
            name=c.label,
            legendgroup=c.label,
            showlegend=False,
            row=1,
            col=2,
        )
    fig.update_yaxes(range=[0, 1.05], row=1, col=1)
    fig.update_layout(title="Depth: where the prediction forms, and the stream's dimension", height=400, **LAYOUT)
    return _small_titles(fig)


def position_tables_figure(dynamics: Dynamics, history: TrainingHistory, columns: int = 3) -> go.Figure:
    """The position-embedding table at initialisation, midway and at the end, and three of its columns."""
    tables = history.positions
    rough = [p.roughness for p in dynamics.positions]  # measured on the same tables, in the same order
    middle = min(range(len(tables)), key=lambda i: abs(rough[i] - (rough[0] + rough[-1]) / 2))
    picks = [tables[0], tables[middle], tables[-1]]  # midway: where the roughness had made half its change
    final = picks[-1][2]
    dims = final.std(dim=0).argsort(descending=True)[:columns].tolist()  # the most active dims at the end
    titles = ["initialisation" if s == 0 else tokens_text(t, s) for s, t, _ in picks]
    fig = make_subplots(
        rows=2,
        cols=3,
        row_heights=[0.55, 0.45],
        vertical_spacing=0.14,
        subplot_titles=titles + [f"dims {', '.join(map(str, dims))}" for _ in titles],
    )
    for col, (_, _, table) in enumerate(picks, start=1):
        limit = float(table.abs().flatten().quantile(0.99))  # position 0's few large values would wash out the rest
        fig.add_heatmap(
            z=table.T.numpy(),
            zmin=-limit,
            zmax=limit,
            colorscale="RdBu",
            showscale=False,
            hovertemplate="position %{x}<br>dim %{y}<br>%{z:.3f}<extra></extra>",
            row=1,
            col=col,
        )
        for dim, colour in zip(dims, ("#1f77b4", "#ff7f0e", "#2ca02c")):
            fig.add_scatter(
                y=table[:, dim].numpy(),
                mode="lines",
                line={"color": colour, "width": 1.5},
                name=f"dim {dim}",
                legendgroup=str(dim),
                showlegend=col == 1,
                row=2,
                col=col,
            )
        fig.update_xaxes(title_text="position", row=2, col=col)
    fig.update_yaxes(title_text="dim", row=1, col=1)
    fig.update_layout(
        title="Position embeddings (position x dim) at initialisation, half-way smooth, and at the end",
        height=640,
        **LAYOUT,
    )
    return _small_titles(fig)


def figures(dynamics: Dynamics, history: TrainingHistory) -> dict[str, go.Figure]:
    found = {
        "positions_over_time": position_figure(dynamics),
        "position_tables": position_tables_figure(dynamics, history),
    }
    if dynamics.losses:
        found = {"loss": loss_figure(dynamics), **found}
    if dynamics.checkpoints:
        found["heads_over_time"] = heads_figure(dynamics)
        found["depth_over_time"] = depth_figure(dynamics)
    return found


FIGURES = Figures(
    figures,
    {
        "loss": "Training and validation loss over the run.",
        "position_tables": "The position embedding at initialisation, half-way and at the end.",
        "positions_over_time": "The position embedding's roughness, periodicity and PCA share over training.",
        "heads_over_time": "Each head's previous-token and induction scores at every checkpoint.",
        "depth_over_time": "Logit-lens agreement and intrinsic dimension per layer over training.",
    },
    first=("position_tables", "positions_over_time", "heads_over_time", "loss"),
)
