"""Neuron figures: activation heat maps (tokens x layers, tokens x strongest neurons) and one neuron's key/value."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gpt2atlas.analysis.neurons import ChosenNeuron, NeuronsResult, StrongNeuron
from gpt2atlas.viz.figures import Figures
from gpt2atlas.viz.labels import token_label, token_labels


def _height(n_rows: int) -> int:
    return int(min(2400, max(420, 18 * n_rows + 200)))


def tokens_by_layers_figure(acts: np.ndarray, labels: Sequence[str]) -> go.Figure:
    """Per token and layer: the largest neuron activation (hover names the neuron) and the share of neurons > 0."""
    n_layer = acts.shape[0]
    peak = acts.max(axis=2).T  # (pos, layer)
    which = acts.argmax(axis=2).T
    active = (acts > 0).mean(axis=2).T
    layers = list(range(n_layer))
    fig = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        horizontal_spacing=0.12,
        subplot_titles=["largest neuron activation", "share of neurons with GELU output > 0"],
    )
    fig.add_trace(
        go.Heatmap(
            z=peak,
            x=layers,
            y=list(labels),
            customdata=which,
            colorscale="Viridis",
            colorbar={"title": "activation", "x": 0.44},
            hovertemplate="%{y}, layer %{x}<br>neuron %{customdata}: %{z:.3f}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Heatmap(
            z=active,
            x=layers,
            y=list(labels),
            colorscale="Cividis",
            zmin=0,
            zmax=1,
            colorbar={"title": "share"},
            hovertemplate="%{y}, layer %{x}<br>%{z:.3f} of neurons active<extra></extra>",
        ),
        row=1,
        col=2,
    )
    fig.update_xaxes(title_text="layer", dtick=1 if n_layer <= 24 else None)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(title="MLP neurons: tokens x layers", width=1100, height=_height(len(labels)))
    return fig


def tokens_by_neurons_figure(acts: np.ndarray, labels: Sequence[str], neurons: Sequence[StrongNeuron]) -> go.Figure:
    """Activations of the strongest neurons (columns) on every token (rows)."""
    names = [f"L{n.layer}.N{n.neuron}" for n in neurons]
    z = np.stack([acts[n.layer, :, n.neuron] for n in neurons], axis=1) if neurons else np.zeros((len(labels), 0))
    bound = float(np.abs(z).max()) if z.size else 1.0
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=names,
            y=list(labels),
            colorscale="RdBu",
            zmid=0,
            zmin=-bound,
            zmax=bound,
            colorbar={"title": "activation"},
            hovertemplate="%{y}<br>%{x}: %{z:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        title="tokens x strongest neurons (GELU output)",
        width=max(700, 28 * len(names) + 300),
        height=_height(len(labels)),
        xaxis={"tickangle": -60},
        yaxis={"autorange": "reversed"},
    )
    return fig


def key_value_figure(neuron: ChosenNeuron, acts_on_prompt: np.ndarray, labels: Sequence[str]) -> go.Figure:
    """One neuron: its activation on each prompt token (key side) and the tokens its value vector pushes up/down."""
    pushed = sorted(neuron.promotes + neuron.suppresses, key=lambda r: r.logit)
    fig = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.18,
        subplot_titles=[
            "activation on each prompt token (key)",
            "W_out[n] @ W_U: tokens promoted / suppressed (value)",
        ],
    )
    fig.add_trace(
        go.Bar(
            x=acts_on_prompt,
            y=list(labels),
            orientation="h",
            showlegend=False,
            hovertemplate="%{y}: %{x:.3f}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    names = [f"{token_label(r.token)} ({r.token_id})" for r in pushed]
    fig.add_trace(
        go.Bar(
            x=[r.logit for r in pushed],
            y=names,
            orientation="h",
            showlegend=False,
            marker={"color": ["#b2182b" if r.logit < 0 else "#2166ac" for r in pushed]},
            hovertemplate="%{y}: %{x:.3f}<extra></extra>",
        ),
        row=1,
        col=2,
    )
    fig.update_yaxes(autorange="reversed", row=1, col=1)
    fig.update_xaxes(title_text="activation", row=1, col=1)
    fig.update_xaxes(title_text="logit change per unit activation", row=1, col=2)
    fig.update_layout(
        title=f"neuron {neuron.neuron} of layer {neuron.layer} as a key-value memory",
        width=1200,
        height=_height(max(len(labels), len(pushed))),
    )
    return fig


def fraction_active_figure(fractions: Sequence[float]) -> go.Figure:
    fig = go.Figure(
        go.Bar(x=list(range(len(fractions))), y=list(fractions), hovertemplate="layer %{x}: %{y:.3f}<extra></extra>")
    )
    fig.update_layout(
        title="share of MLP neurons with GELU output > 0, per layer",
        xaxis={"title": "layer", "dtick": 1},
        yaxis={"title": "share", "range": [0, 1]},
        width=700,
        height=420,
    )
    return fig


def neuron_figures(result: NeuronsResult) -> dict[str, go.Figure]:
    """Every neuron figure, by file name."""
    f = result.findings
    acts = result.activations.numpy()
    labels = token_labels(f.tokens, numbered=True)
    chosen = f.neuron
    return {
        "tokens_by_layers": tokens_by_layers_figure(acts, labels),
        "tokens_by_neurons": tokens_by_neurons_figure(acts, labels, f.strongest_neurons),
        "neuron_key_value": key_value_figure(chosen, acts[chosen.layer, :, chosen.neuron], labels),
        "fraction_active": fraction_active_figure(f.fraction_active_by_layer),
    }


FIGURES = Figures(
    neuron_figures,
    {
        "fraction_active": "The share of MLP neurons active (GELU output > 0) in each layer.",
        "tokens_by_neurons": "The neurons that fire most for each token of the prompt.",
        "neuron_key_value": "One neuron: what turns it on (its input weights) and what it writes (its output "
        "weights read through the unembedding).",
        "tokens_by_layers": "For each token and layer, its strongest neuron activation (hover names the neuron) "
        "and the share of neurons above zero.",
    },
    first=("fraction_active", "tokens_by_neurons", "neuron_key_value", "tokens_by_layers"),
)
