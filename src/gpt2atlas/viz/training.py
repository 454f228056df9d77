"""The loss curve of a training run: training and validation loss against tokens seen."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import plotly.graph_objects as go


class LossRow(Protocol):
    """A line of metrics.jsonl as the figure reads it (run_folder.Metrics, history.LossPoint)."""

    @property
    def step(self) -> int: ...
    @property
    def tokens(self) -> int: ...
    @property
    def train_loss(self) -> float | None: ...
    @property
    def val_loss(self) -> float | None: ...


def loss_curve_figure(metrics: Sequence[LossRow], title: str = "Loss during training") -> go.Figure:
    """Train loss (every logged step) and validation loss (every evaluation) in nats per token, log x-axis."""
    train = [m for m in metrics if m.train_loss is not None and m.tokens > 0]
    val = [m for m in metrics if m.val_loss is not None and m.tokens > 0]
    fig = go.Figure()
    fig.add_scatter(
        x=[m.tokens for m in train],
        y=[m.train_loss for m in train],
        mode="lines",
        name="training batch",
        line={"width": 1, "color": "rgba(31,119,180,0.6)"},
        customdata=[m.step for m in train],
        hovertemplate="step %{customdata}<br>%{x:,} tokens<br>loss %{y:.3f}<extra>train</extra>",
    )
    fig.add_scatter(
        x=[m.tokens for m in val],
        y=[m.val_loss for m in val],
        mode="lines+markers",
        name="validation",
        line={"width": 2, "color": "#d62728"},
        marker={"size": 5},
        customdata=[m.step for m in val],
        hovertemplate="step %{customdata}<br>%{x:,} tokens<br>loss %{y:.3f}<extra>validation</extra>",
    )
    initial = next((m.val_loss for m in metrics if m.step == 0 and m.val_loss is not None), None)
    if initial is not None:
        fig.add_hline(
            y=initial,
            line_dash="dot",
            line_color="grey",
            annotation_text=f"at initialisation: {initial:.2f}",
            annotation_position="top right",
        )
    fig.update_layout(
        title=title,
        xaxis_title="tokens seen (log scale)",
        yaxis_title="cross-entropy (nats per token)",
        xaxis_type="log",
        template="plotly_white",
        height=450,
        autosize=True,
        legend={"orientation": "h", "y": -0.2},
    )
    return fig
