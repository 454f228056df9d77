"""Journey figures: the logit-lens table, rank and KL curves, stream cosines, and one token's trajectory."""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gpt2atlas.analysis.journey import CosineTable, JourneyFindings, JourneyResult, LensGuess
from gpt2atlas.viz.figures import Figures
from gpt2atlas.viz.labels import escape, token_label, token_labels

CELL_CHARS = 10  # visible characters of a token in a logit-lens cell (the hover has it whole)
SIDEWAYS_AFTER = 16  # prompts longer than this get positions down the side of the logit-lens table
MAX_TABLE_POSITIONS = 128  # the logit-lens table shows at most this many (the last) positions
COSINE_NAMES = {
    "previous_layer": "with the previous layer",
    "own_embedding": "with its own token's embedding",
    "next_token_embedding": "with the next token's embedding",
    "last_position": "with the last position",
}


def _cosine_tables(f: JourneyFindings) -> dict[str, CosineTable]:
    """The stream cosines by their COSINE_NAMES key."""
    c = f.cosine
    return {
        "previous_layer": c.previous_layer,
        "own_embedding": c.own_embedding,
        "next_token_embedding": c.next_token_embedding,
        "last_position": c.last_position,
    }


def _lens_hover(top_k: list[list[list[LensGuess]]], inputs: list[str], layers: list[str]) -> list[list[str]]:
    """Hover text per (layer, position): the layer, the input token there and the lens's top-k."""
    rows = []
    for layer, state in zip(layers, top_k):
        row = []
        for pos, candidates in enumerate(state):
            lines = [f"{token_label(c.token)}: {c.prob:.3f}" for c in candidates]
            row.append(f"{layer}, input {inputs[pos]}<br>top {len(candidates)}:<br>" + "<br>".join(lines))
        rows.append(row)
    return rows


def _short(label: str, limit: int = CELL_CHARS) -> str:
    """A cell label cut to `limit` visible characters (labels are HTML-escaped, so cut before escaping)."""
    raw = html.unescape(label)
    return label if len(raw) <= limit else escape(raw[: limit - 1]) + "…"


def logit_lens_figure(result: JourneyResult) -> go.Figure:
    """The lens's top token in each (layer, position) cell, coloured by its probability.

    Layers run up the side and positions along the bottom; a long prompt is turned on its side (positions
    down the side) so every cell keeps room for its token.
    """
    f = result.findings
    shown = slice(max(0, len(f.tokens) - MAX_TABLE_POSITIONS), None)  # a long prompt: its last positions
    inputs = token_labels(f.tokens, numbered=True)[shown]
    cells = np.array([[_short(token_label(t)) for t in state[shown]] for state in f.top1], dtype=object)
    layers = f.layers
    hover = np.array(_lens_hover([state[shown] for state in f.top_k], inputs, layers), dtype=object)
    probs = np.asarray(f.top1_prob, dtype=float)[:, shown]
    n_pos, n_state = len(inputs), len(layers)
    sideways = n_pos > SIDEWAYS_AFTER
    if sideways:
        cells, hover, probs = cells.T, hover.T, probs.T
    fig = go.Figure(
        go.Heatmap(
            z=probs,
            x=layers if sideways else inputs,
            y=inputs if sideways else layers,
            text=cells,
            texttemplate="%{text}",
            textfont={"size": 10},
            customdata=hover,
            colorscale="Blues",
            zmin=0,
            zmax=1,
            colorbar={"title": "top-1 prob"},
            hovertemplate="%{customdata}<extra></extra>",
        )
    )
    token_axis = {"title": "input token (the cell is the guess for the token after it)"}
    layer_axis = {"title": "residual state (read before ln_final)"}
    if sideways:
        fig.update_layout(
            xaxis={**layer_axis, "side": "top"},
            yaxis={**token_axis, "autorange": "reversed"},
            width=int(max(700, 84 * n_state + 320)),
            height=int(22 * n_pos + 240),
            margin={"t": 150},
        )
    else:
        fig.update_layout(
            xaxis={**token_axis, "tickangle": -60},
            yaxis=layer_axis,
            width=int(max(700, 84 * n_pos + 220)),
            height=int(max(420, 34 * n_state + 260)),
        )
    cut = "" if len(inputs) == len(f.tokens) else f" — last {len(inputs)} of {len(f.tokens)} positions"
    fig.update_layout(title=f"Logit lens: the top next-token guess after each layer (ln_final + W_U applied){cut}")
    return fig


def rank_kl_figure(result: JourneyResult) -> go.Figure:
    """Final token's rank (log scale) and KL to the final distribution per layer: the traced token and the mean."""
    f = result.findings
    layers, position = f.layers, f.trajectory.position
    ranks = np.asarray(f.final_token_rank, dtype=float)
    used = slice(1, None) if f.position_0_excluded else slice(None)
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("rank of the final top-1 token (+1, log)", "KL(final || layer), nats")
    )
    traced = f"position {position} ({token_label(f.tokens[position])})"
    fig.add_trace(
        go.Scatter(x=layers, y=ranks[:, position] + 1, mode="lines+markers", name=traced, line={"color": "#d62728"}),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=layers,
            y=np.median(ranks[:, used], axis=1) + 1,
            mode="lines+markers",
            name="median over positions",
            line={"color": "#1f77b4"},
        ),
        row=1,
        col=1,
    )
    kl = np.asarray(f.kl_to_final, dtype=float)
    fig.add_trace(
        go.Scatter(
            x=layers,
            y=kl[:, position],
            mode="lines+markers",
            name=f"KL at {traced}",
            line={"color": "#d62728", "dash": "dot"},
        ),
        row=1,
        col=2,
    )
    fig.add_trace(
        go.Scatter(
            x=layers,
            y=f.kl_to_final_mean,
            mode="lines+markers",
            name="mean KL",
            line={"color": "#1f77b4", "dash": "dot"},
        ),
        row=1,
        col=2,
    )
    fig.update_yaxes(type="log", row=1, col=1)
    note = " (statistics leave out position 0)" if f.position_0_excluded else ""
    fig.update_layout(title=f"How the final prediction forms layer by layer{note}", width=1100, height=460)
    return fig


def cosines_figure(result: JourneyResult) -> go.Figure:
    """Mean cosine similarities of the stream per layer, and the spread of the token cloud."""
    f = result.findings
    layers = f.layers
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("mean cosine of a position's residual", "token cloud spread (log scale)")
    )
    tables = _cosine_tables(f)
    for key, label in COSINE_NAMES.items():
        fig.add_trace(go.Scatter(x=layers, y=tables[key].mean, mode="lines+markers", name=label), row=1, col=1)
    fig.add_trace(
        go.Scatter(x=layers, y=f.centroid_distance_mean, mode="lines+markers", name="mean distance to centroid"),
        row=1,
        col=2,
    )
    fig.add_trace(
        go.Scatter(x=layers, y=f.covariance_trace, mode="lines+markers", name="covariance trace"), row=1, col=2
    )
    fig.update_yaxes(type="log", row=1, col=2)
    note = " (position 0 left out)" if f.position_0_excluded else ""
    fig.update_layout(title=f"Geometry of the residual stream across layers{note}", width=1150, height=460)
    return fig


def _trajectory_trace(
    xy: np.ndarray, layers: list[str], name: str, hover: list[str], *, ends_only: bool = False, **style: Any
) -> go.Scatter:
    """The path of one token; every layer labelled, or only the first and last where the map is crowded."""
    text = [t if not ends_only or i in (0, len(layers) - 1) else "" for i, t in enumerate(layers)]
    return go.Scatter(
        x=xy[:, 0],
        y=xy[:, 1],
        mode="lines+markers+text",
        text=text,
        textposition="top center",
        customdata=hover,
        name=name,
        hovertemplate="%{customdata}<extra></extra>",
        **style,
    )


def trajectory_figure(result: JourneyResult) -> go.Figure:
    """The traced token through the layers: PCA of the stream (other positions faint) and the UMAP token map."""
    f = result.findings
    t = f.trajectory
    layers = f.layers
    traced = f"{t.position}:{token_label(t.token)}"
    umap_points = result.umap_points
    has_umap = umap_points is not None
    ratio = t.pca_explained_variance_ratio
    titles = [f"PCA of unit-normalised residuals ({ratio[0]:.0%} + {ratio[1]:.0%} of variance)"]
    if has_umap:
        titles.append(f"UMAP of {t.umap_sample_size} token embeddings (cosine)")
    fig = make_subplots(rows=1, cols=len(titles), subplot_titles=titles)
    labels = token_labels(f.tokens, numbered=True)
    for pos, label in enumerate(labels):
        if pos != t.position:
            xy = result.pca[:, pos]
            fig.add_trace(
                go.Scatter(
                    x=xy[:, 0],
                    y=xy[:, 1],
                    mode="lines",
                    line={"color": "lightgrey", "width": 1},
                    name=label,
                    showlegend=False,
                    hovertemplate=label + "<extra></extra>",
                ),
                row=1,
                col=1,
            )
    fig.add_trace(
        _trajectory_trace(result.pca[:, t.position], layers, f"{traced} (PCA)", layers, line={"color": "#d62728"}),
        row=1,
        col=1,
    )
    if umap_points is not None and t.umap is not None and t.nearest_sampled_token is not None:
        points = umap_points
        coords = np.asarray(points.coords)
        names = token_labels(points.tokens)
        fig.add_trace(
            go.Scatter(
                x=coords[:, 0],
                y=coords[:, 1],
                mode="markers",
                text=names,
                marker={"size": 3, "color": "lightgrey"},
                name="token embeddings",
                hovertemplate="%{text}<extra></extra>",
            ),
            row=1,
            col=2,
        )
        index = {token_id: i for i, token_id in enumerate(points.ids)}
        prompt = [index[i] for i in dict.fromkeys(f.token_ids)]
        fig.add_trace(
            go.Scatter(
                x=coords[prompt, 0],
                y=coords[prompt, 1],
                mode="markers+text",
                text=[names[i] for i in prompt],
                textposition="bottom center",
                marker={"size": 7, "color": "#1f77b4"},
                name="the prompt's tokens",
            ),
            row=1,
            col=2,
        )
        hover = [
            f"{layer}<br>nearest token: {token_label(near)}" for layer, near in zip(layers, t.nearest_sampled_token)
        ]
        fig.add_trace(
            _trajectory_trace(
                np.asarray(t.umap), layers, f"{traced} (UMAP)", hover, ends_only=True, line={"color": "#d62728"}
            ),
            row=1,
            col=2,
        )
    fig.update_layout(
        title=f"The journey of token {traced} through the layers",
        width=650 * len(titles),
        height=620,
        legend={"orientation": "h", "y": -0.12},
    )
    return fig


def journey_figures(result: JourneyResult) -> dict[str, go.Figure]:
    return {
        "logit_lens": logit_lens_figure(result),
        "rank_kl": rank_kl_figure(result),
        "cosines": cosines_figure(result),
        "trajectory": trajectory_figure(result),
    }


FIGURES = Figures(
    journey_figures,
    {
        "logit_lens": "The logit lens: the model's top guess for the next token after each layer.",
        "rank_kl": "How far each layer's guess is from the final prediction: the final token's rank and the KL divergence.",
        "cosines": "Mean cosine similarity of the residual stream at each layer, and the spread of the token cloud.",
        "trajectory": "The traced token's residual vector through the layers, projected by PCA (the other "
        "positions faint).",
    },
    first=("logit_lens", "rank_kl", "cosines", "trajectory"),
)
