"""Figures of the token and position embedding tables (drawn from `analysis.embeddings.EmbeddingData`)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gpt2atlas.analysis.embeddings import EmbeddingData, EmbeddingFindings, EmbeddingReport
from gpt2atlas.numerics.pca import components_for
from gpt2atlas.viz.figures import Figures
from gpt2atlas.viz.labels import escape, token_label

KIND_COLOURS = {
    "word (leading space)": "#1f77b4",
    "word piece": "#2ca02c",
    "number": "#ff7f0e",
    "punctuation": "#9467bd",
    "whitespace": "#8c564b",
    "partial byte": "#7f7f7f",
    "other": "#bcbd22",
}
HIGHLIGHT = "#d62728"
POSITION_SCALE = "Viridis"
N_CURVES = 6
LEGEND_BELOW = {"orientation": "h", "x": 0.0, "y": -0.15}  # keeps the legend clear of the colour bar


def figure_title(text: str, source: str) -> dict[str, Any]:
    """A title with the model's source (escaped: it may be a user's path) as its subtitle."""
    return {"text": f"{text}<br><sup>{escape(source)}</sup>", "x": 0.01}


def _hover(ids: Sequence[int] | np.ndarray, vocab: Sequence[str]) -> list[str]:
    return [f"{token_label(vocab[i])} (id {i})" for i in ids]


def _scatter(dims: int, coords: np.ndarray, **kwargs: Any) -> go.Scattergl | go.Scatter3d:
    """A 2D (WebGL) or 3D scatter of the first `dims` columns of coords."""
    if dims == 3:
        return go.Scatter3d(x=coords[:, 0], y=coords[:, 1], z=coords[:, 2], **kwargs)
    return go.Scattergl(x=coords[:, 0], y=coords[:, 1], **kwargs)


def _labelled(dims: int, coords: np.ndarray, labels: list[str], **kwargs: Any) -> go.Scatter | go.Scatter3d:
    """Points drawn with text labels (already HTML-escaped).

    2D labels are SVG, where plotly parses markup, so they stay escaped (and show decoded). 3D labels are
    painted on the WebGL canvas as plain text, never parsed as HTML, so they are unescaped to read right.
    """
    if dims == 3:
        return go.Scatter3d(
            x=coords[:, 0],
            y=coords[:, 1],
            z=coords[:, 2],
            mode="markers+text",
            text=[html.unescape(label) for label in labels],
            **kwargs,
        )
    return go.Scatter(x=coords[:, 0], y=coords[:, 1], mode="markers+text", text=labels, **kwargs)


def dim_stats_figure(data: EmbeddingData, findings: EmbeddingFindings) -> go.Figure:
    """Per-dimension mean/std histograms and per-row mean-vs-std scatter, token vs position side by side."""
    fig = make_subplots(
        rows=2,
        cols=3,
        subplot_titles=(
            "tokens: mean of each dim",
            "tokens: std of each dim",
            "tokens: mean vs std of each token",
            "positions: mean of each dim",
            "positions: std of each dim",
            "positions: mean vs std of each position",
        ),
    )
    for row, (mean, std, colour) in enumerate(
        [(data.token_dim_mean, data.token_dim_std, "#1f77b4"), (data.pos_dim_mean, data.pos_dim_std, "#2ca02c")], 1
    ):
        fig.add_trace(go.Histogram(x=mean, nbinsx=80, marker_color=colour, showlegend=False), row=row, col=1)
        fig.add_trace(go.Histogram(x=std, nbinsx=80, marker_color=colour, showlegend=False), row=row, col=2)
    ids = np.arange(len(data.token_row_mean))
    fig.add_trace(
        go.Scattergl(
            x=data.token_row_mean,
            y=data.token_row_std,
            mode="markers",
            name="tokens",
            marker={"size": 3, "color": "#1f77b4", "opacity": 0.5},
            hovertext=_hover(ids, data.vocab),
            hoverinfo="text+x+y",
        ),
        row=1,
        col=3,
    )
    positions = np.arange(len(data.pos_row_mean))
    fig.add_trace(
        go.Scatter(
            x=data.pos_row_mean[1:],
            y=data.pos_row_std[1:],
            mode="markers",
            name="positions",
            marker={"size": 4, "color": positions[1:], "colorscale": POSITION_SCALE},
            hovertext=[f"position {p}" for p in positions[1:]],
            hoverinfo="text+x+y",
        ),
        row=2,
        col=3,
    )
    fig.add_trace(
        go.Scatter(
            x=data.pos_row_mean[:1],
            y=data.pos_row_std[:1],
            mode="markers+text",
            name="position 0",
            text=["position 0"],
            textposition="top center",
            marker={"size": 12, "color": HIGHLIGHT, "symbol": "star"},
        ),
        row=2,
        col=3,
    )
    for col, label in ((1, "mean"), (2, "std")):
        for row in (1, 2):
            fig.update_xaxes(title_text=label, row=row, col=col)
            fig.update_yaxes(title_text="dims", row=row, col=col)
    for row in (1, 2):
        fig.update_xaxes(title_text="mean over dims", row=row, col=3)
        fig.update_yaxes(title_text="std over dims", row=row, col=3)
    z0 = findings.position_embedding.position0_norm_z
    fig.update_layout(
        title=figure_title(f"Embedding statistics (position 0's norm z = {z0:.1f})", data.title), height=750, width=1300
    )
    return fig


def dim_pair_figure(data: EmbeddingData) -> go.Figure:
    """Tokens (sample) and positions in pairs of dims."""
    pairs = data.dim_pairs
    fig = make_subplots(rows=1, cols=len(pairs), subplot_titles=[f"dims {a} and {b}" for a, b in pairs])
    positions = np.arange(len(data.W_pos))
    hover = _hover(data.sample_ids, data.vocab)
    for col, (a, b) in enumerate(pairs, 1):
        first = col == 1
        fig.add_trace(
            go.Scattergl(
                x=data.sample_vectors[:, a],
                y=data.sample_vectors[:, b],
                mode="markers",
                name="tokens (sample)",
                legendgroup="tokens",
                showlegend=first,
                marker={"size": 3, "color": "#7f7f7f", "opacity": 0.5},
                hovertext=hover,
                hoverinfo="text",
            ),
            row=1,
            col=col,
        )
        fig.add_trace(
            go.Scattergl(
                x=data.W_pos[:, a],
                y=data.W_pos[:, b],
                mode="markers",
                name="positions",
                legendgroup="positions",
                showlegend=first,
                marker={
                    "size": 4,
                    "color": positions,
                    "colorscale": POSITION_SCALE,
                    "showscale": first,
                    "colorbar": {"title": "position"},
                },
                hovertext=[f"position {p}" for p in positions],
                hoverinfo="text",
            ),
            row=1,
            col=col,
        )
        fig.add_trace(
            go.Scatter(
                x=data.W_pos[:1, a],
                y=data.W_pos[:1, b],
                mode="markers",
                name="position 0",
                legendgroup="p0",
                showlegend=first,
                marker={"size": 11, "color": HIGHLIGHT, "symbol": "star"},
            ),
            row=1,
            col=col,
        )
        fig.update_xaxes(title_text=f"dim {a}", row=1, col=col)
        fig.update_yaxes(title_text=f"dim {b}", row=1, col=col)
    fig.update_layout(
        title=figure_title("Tokens and positions in pairs of dimensions", data.title),
        height=540,
        width=450 * len(pairs) + 150,
        legend=LEGEND_BELOW,
    )
    return fig


def pca_figure(data: EmbeddingData, findings: EmbeddingFindings) -> go.Figure:
    """Cumulative explained variance: global PCA, mean local (kNN) PCA, positions; and local dims per anchor."""
    token = findings.token_embedding
    local = token.local_pca
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=(
            "cumulative explained variance",
            f"local PCA: components for 90% ({local.neighbourhood_size} neighbours)",
        ),
    )
    curves = [
        ("tokens: global", data.token_ratio, "#1f77b4"),
        ("tokens: local (mean over neighbourhoods)", data.local_ratio, "#ff7f0e"),
        ("positions", data.pos_ratio, "#2ca02c"),
    ]
    for name, ratio, colour in curves:
        curve, k90 = np.cumsum(ratio), components_for(ratio)
        x = np.arange(1, len(curve) + 1)
        fig.add_trace(
            go.Scatter(x=x, y=curve, mode="lines", name=f"{name}: {k90} for 90%", line={"color": colour}), row=1, col=1
        )
        if k90:
            fig.add_trace(
                go.Scatter(
                    x=[k90], y=[curve[k90 - 1]], mode="markers", showlegend=False, marker={"color": colour, "size": 9}
                ),
                row=1,
                col=1,
            )
    fig.add_hline(y=0.9, line_dash="dash", line_color="grey", row=1, col=1)
    fig.add_trace(go.Histogram(x=data.local_components, marker_color="#ff7f0e", showlegend=False), row=1, col=2)
    fig.add_vline(
        x=token.pca_components_for_90pct,
        line_dash="dash",
        line_color="#1f77b4",
        row=1,
        col=2,
        annotation_text="global",
    )
    fig.update_xaxes(title_text="components", type="log", row=1, col=1)
    fig.update_yaxes(title_text="share of variance", range=[0, 1.02], row=1, col=1)
    fig.update_xaxes(title_text="components for 90%", row=1, col=2)
    fig.update_yaxes(title_text="neighbourhoods", row=1, col=2)
    fig.update_layout(
        title=figure_title("Global and local PCA of the token embeddings", data.title),
        height=480,
        width=1250,
        legend={"x": 0.01, "y": -0.2, "orientation": "h"},
    )
    return fig


def dim_means_figure(data: EmbeddingData, findings: EmbeddingFindings) -> go.Figure:
    """Mean of each dim over the vocabulary, with the offset dims marked."""
    means = data.token_dim_mean
    spread, centre = float(means.std()), float(means.mean())
    offsets = findings.token_embedding.offset_dims
    dims = [o.dim for o in offsets]
    fig = go.Figure(go.Bar(x=np.arange(len(means)), y=means, name="mean over tokens", marker_color="#1f77b4"))
    fig.add_trace(
        go.Scatter(
            x=dims,
            y=[o.mean for o in offsets],
            mode="markers+text",
            name="offset dims",
            text=[str(d) for d in dims],
            textposition="top center",
            hovertext=[f"dim {o.dim}: mean {o.mean:.4g}, z {o.z:.1f}" for o in offsets],
            hoverinfo="text",
            marker={"color": HIGHLIGHT, "size": 9},
        )
    )
    for k in (-3, 3):
        fig.add_hline(
            y=centre + k * spread, line_dash="dot", line_color="grey", annotation_text=f"{k:+d} std of the means"
        )
    fig.update_layout(
        title=figure_title("Mean of each token-embedding dimension (offset dims marked)", data.title),
        xaxis_title="dim",
        yaxis_title="mean over the vocabulary",
        height=450,
        width=1200,
    )
    return fig


def position_heatmap_figure(data: EmbeddingData) -> go.Figure:
    """The position-embedding table, positions x dims (colour clipped at the 99.5th percentile of |value|)."""
    table = data.W_pos.astype(np.float32)
    limit = float(np.quantile(np.abs(table), 0.995)) or 1.0
    fig = go.Figure(
        go.Heatmap(
            z=table,
            colorscale="RdBu",
            zmid=0,
            zmin=-limit,
            zmax=limit,
            colorbar={"title": "value"},
            hovertemplate="position %{y}<br>dim %{x}<br>%{z:.4f}<extra></extra>",
        )
    )
    fig.update_layout(
        title=figure_title("Position embeddings (rows: positions, columns: dims)", data.title),
        xaxis_title="dim",
        yaxis_title="position",
        yaxis_autorange="reversed",
        height=700,
        width=1000,
    )
    return fig


def position_curves_figure(data: EmbeddingData, findings: EmbeddingFindings) -> go.Figure:
    """The most active columns of W_pos as curves over position, with their dominant period."""
    fig = go.Figure()
    positions = np.arange(len(data.W_pos))
    for entry in findings.position_embedding.periodicity[:N_CURVES]:
        period = entry.period
        label = f"dim {entry.dim} (period {period:.1f})" if period else f"dim {entry.dim}"
        fig.add_trace(go.Scatter(x=positions, y=data.W_pos[:, entry.dim], mode="lines", name=label))
    smooth = findings.position_embedding.smoothness
    fig.update_layout(
        title=figure_title(
            f"Most active position-embedding columns (smoothness {smooth:.3f}; white noise ≈ 1.41)", data.title
        ),
        xaxis_title="position",
        yaxis_title="value",
        height=480,
        width=1100,
    )
    return fig


def position_cosine_figure(data: EmbeddingData) -> go.Figure:
    """Cosine similarity between every pair of position embeddings."""
    unit = data.W_pos / np.maximum(np.linalg.norm(data.W_pos, axis=1, keepdims=True), 1e-12)
    cosine = (unit @ unit.T).astype(np.float32)
    fig = go.Figure(
        go.Heatmap(
            z=cosine,
            colorscale="RdBu",
            zmid=0,
            zmin=-1,
            zmax=1,
            colorbar={"title": "cosine"},
            hovertemplate="positions %{y} and %{x}<br>cosine %{z:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        title=figure_title("Cosine similarity between positions", data.title),
        xaxis_title="position",
        yaxis_title="position",
        yaxis_autorange="reversed",
        height=700,
        width=760,
    )
    return fig


def position_pca_figure(data: EmbeddingData, dims: int) -> go.Figure:
    """Position embeddings projected on their first principal components: the curve they draw."""
    positions = np.arange(len(data.pos_pca))
    coords = data.pos_pca[:, :dims]
    fig = go.Figure(
        _scatter(
            dims,
            coords,
            mode="lines+markers",
            name="positions",
            hovertext=[f"position {p}" for p in positions],
            hoverinfo="text",
            marker={
                "size": 3 if dims == 3 else 5,
                "color": positions,
                "colorscale": POSITION_SCALE,
                "colorbar": {"title": "position"},
            },
            line={"color": "rgba(120,120,120,0.4)"},
        )
    )
    fig.add_trace(
        _labelled(
            dims,
            coords[:1],
            ["position 0"],
            name="position 0",
            marker={"size": 8 if dims == 3 else 12, "color": HIGHLIGHT},
        )
    )
    _axis_titles(fig, dims, "PC")
    fig.update_layout(
        title=figure_title(f"PCA of the position embeddings ({dims}D)", data.title),
        height=650,
        width=800,
        legend=LEGEND_BELOW,
    )
    return fig


def token_projection_figure(data: EmbeddingData, method: str, dims: int) -> go.Figure:
    """A token sample projected by PCA, t-SNE or UMAP, coloured by token kind, the chosen tokens labelled."""
    coords = data.projections[f"{method}_{dims}d" if method != "pca" else "pca_3d"][:, :dims]
    n = len(coords)  # t-SNE and UMAP embed the first part of the sample
    kinds, ids, highlighted = np.array(data.sample_kinds[:n]), data.sample_ids[:n], data.highlighted[:n]
    fig = go.Figure()
    for kind, colour in KIND_COLOURS.items():
        mask = (kinds == kind) & ~highlighted
        if mask.any():
            fig.add_trace(
                _scatter(
                    dims,
                    coords[mask],
                    mode="markers",
                    name=kind,
                    marker={"size": 2.5 if dims == 3 else 4, "color": colour, "opacity": 0.6},
                    hovertext=_hover(ids[mask], data.vocab),
                    hoverinfo="text",
                )
            )
    labels = [token_label(data.vocab[i]) for i in ids[highlighted]]
    fig.add_trace(
        _labelled(
            dims,
            coords[highlighted],
            labels,
            name="labelled tokens",
            textposition="top center",
            hovertext=_hover(ids[highlighted], data.vocab),
            hoverinfo="text",
            marker={"size": 5 if dims == 3 else 9, "color": HIGHLIGHT},
        )
    )
    name = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}[method]
    _axis_titles(fig, dims, "PC" if method == "pca" else name)
    fig.update_layout(
        title=figure_title(f"{name} of {n} token embeddings ({dims}D)", data.title), height=700, width=900
    )
    return fig


def joint_projection_figure(data: EmbeddingData, dims: int) -> go.Figure:
    """Tokens (sample) and all positions on the principal components of both together."""
    positions = np.arange(len(data.joint_positions))
    fig = go.Figure(
        _scatter(
            dims,
            data.joint_tokens[:, :dims],
            mode="markers",
            name="tokens (sample)",
            marker={"size": 2.5 if dims == 3 else 4, "color": "#7f7f7f", "opacity": 0.5},
            hovertext=_hover(data.sample_ids, data.vocab),
            hoverinfo="text",
        )
    )
    fig.add_trace(
        _scatter(
            dims,
            data.joint_positions[:, :dims],
            mode="lines+markers",
            name="positions",
            hovertext=[f"position {p}" for p in positions],
            hoverinfo="text",
            marker={
                "size": 3 if dims == 3 else 5,
                "color": positions,
                "colorscale": POSITION_SCALE,
                "colorbar": {"title": "position"},
            },
            line={"color": "rgba(120,120,120,0.4)"},
        )
    )
    _axis_titles(fig, dims, "PC")
    fig.update_layout(
        title=figure_title(f"Tokens and positions in one PCA ({dims}D)", data.title),
        height=700,
        width=900,
        legend=LEGEND_BELOW,
    )
    return fig


def _axis_titles(fig: go.Figure, dims: int, prefix: str) -> None:
    names = [f"{prefix} {i}" for i in (1, 2, 3)]
    if dims == 3:
        fig.update_layout(scene={"xaxis_title": names[0], "yaxis_title": names[1], "zaxis_title": names[2]})
    else:
        fig.update_layout(xaxis_title=names[0], yaxis_title=names[1])


def embedding_figures(findings: EmbeddingFindings, data: EmbeddingData) -> dict[str, go.Figure]:
    """Every embedding figure, by file name."""
    figures = {
        "dim_stats": dim_stats_figure(data, findings),
        "dim_pairs": dim_pair_figure(data),
        "token_dim_means": dim_means_figure(data, findings),
        "pca_global_local": pca_figure(data, findings),
        "position_heatmap": position_heatmap_figure(data),
        "position_curves": position_curves_figure(data, findings),
        "position_cosine": position_cosine_figure(data),
        "position_pca_2d": position_pca_figure(data, 2),
        "position_pca_3d": position_pca_figure(data, 3),
    }
    for method in ("pca", "tsne", "umap"):
        if any(key.startswith(method) for key in data.projections):
            for dims in (2, 3):
                figures[f"tokens_{method}_{dims}d"] = token_projection_figure(data, method, dims)
    figures["joint_pca_2d"] = joint_projection_figure(data, 2)
    figures["joint_pca_3d"] = joint_projection_figure(data, 3)
    return figures


def embedding_result_figures(result: EmbeddingReport) -> dict[str, go.Figure]:
    return embedding_figures(result.findings, result.data)


FIGURES = Figures(
    embedding_result_figures,
    {
        "dim_stats": "Token and position embeddings, dimension by dimension and row by row.",
        "token_dim_means": "The mean of each token-embedding dimension over the vocabulary; marked dims stand out "
        "by more than 3 standard deviations of the means.",
        "position_curves": "The position embedding's most varying dimensions along the positions: trained models "
        "draw smooth waves, random ones noise.",
        "position_pca_3d": "Positions in the first three principal components of the position embedding.",
        "position_pca_2d": "Positions in the first two principal components of the position embedding.",
        "position_heatmap": "The position embedding, position by dimension.",
        "position_cosine": "Cosine similarity between the position embeddings of every pair of positions.",
        "pca_global_local": "Variance explained by principal components, over the whole vocabulary and in local "
        "neighbourhoods.",
        "dim_pairs": "Tokens (a sample) and positions in pairs of embedding dimensions.",
        "tokens_pca_2d": "A sample of the vocabulary in the first two principal components; the prompt's tokens "
        "are labelled.",
        "tokens_tsne_2d": "A sample of the vocabulary laid out by t-SNE; the prompt's tokens are labelled.",
        "tokens_umap_2d": "A sample of the vocabulary laid out by UMAP; the prompt's tokens are labelled.",
        "joint_pca_2d": "The prompt's token and position embeddings together in two principal components.",
        "joint_pca_3d": "The prompt's token and position embeddings together in three principal components.",
        "tokens_pca_3d": "A sample of the vocabulary in the first three principal components; the prompt's tokens "
        "are labelled.",
        "tokens_tsne_3d": "A sample of the vocabulary laid out by t-SNE in three dimensions; the prompt's tokens are "
        "labelled.",
        "tokens_umap_3d": "A sample of the vocabulary laid out by UMAP in three dimensions; the prompt's tokens are "
        "labelled.",
    },
    first=(
        "dim_stats",
        "token_dim_means",
        "position_curves",
        "position_pca_3d",
        "pca_global_local",
        "tokens_umap_2d",
        "tokens_tsne_2d",
        "tokens_pca_2d",
        "joint_pca_3d",
    ),
)
