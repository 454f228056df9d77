"""LayerNorm figures: the d = 3 toy, the steps on real vectors in 3D, the gains, gains vs position, GELU and the
superposition toy."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gpt2atlas.analysis.layernorm import Superposition, top3_projection
from gpt2atlas.viz.figures import Figures
from gpt2atlas.viz.labels import token_labels

if TYPE_CHECKING:
    from gpt2atlas.analysis.layernorm import LayerNormResult, LayerNormSteps

STAGES = (
    ("input", "input x", "#7f7f7f"),
    ("centred", "centred: x - mean(x)", "#1f77b4"),
    ("normalized", "scaled onto the sphere", "#2ca02c"),
    ("output", "gain and shift applied", "#d62728"),
)
SEGMENTS = 25  # input -> centred segments drawn in the toy


def _points3d(xyz: np.ndarray, name: str, color: str, **kwargs) -> go.Scatter3d:
    return go.Scatter3d(
        x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], mode="markers", name=name, marker={"size": 3, "color": color}, **kwargs
    )


def _segments(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Line segments a[i] -> b[i] as one polyline broken by NaNs."""
    gaps = np.full_like(a, np.nan)
    return np.stack([a, b, gaps], axis=1).reshape(-1, 3)


def toy_3d_figure(steps: LayerNormSteps, gamma: Sequence[float], beta: Sequence[float]) -> go.Figure:
    """d = 3: centring drops points onto the plane orthogonal to [1,1,1]; scaling puts them on a circle of radius
    sqrt(3) in that plane; the gain makes it an ellipse and the shift moves it."""
    u = np.array([1.0, -1.0, 0.0]) / math.sqrt(2)
    v = np.array([1.0, 1.0, -2.0]) / math.sqrt(6)
    t = np.linspace(0, 2 * math.pi, 121)
    circle = math.sqrt(3) * (np.cos(t)[:, None] * u + np.sin(t)[:, None] * v)
    ellipse = circle * np.asarray(gamma) + np.asarray(beta)
    stages = {key: getattr(steps, key).numpy() for key, _, _ in STAGES}
    extent = float(np.abs(stages["input"]).max()) * 1.1
    s = np.linspace(-extent, extent, 2)
    a, b = np.meshgrid(s, s)
    plane = a[..., None] * u + b[..., None] * v
    fig = go.Figure()
    fig.add_trace(
        go.Surface(
            x=plane[..., 0],
            y=plane[..., 1],
            z=plane[..., 2],
            opacity=0.25,
            showscale=False,
            colorscale=[[0, "#9ecae1"], [1, "#9ecae1"]],
            name="plane ⟂ [1,1,1]",
            showlegend=True,
        )
    )
    ones = np.array([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]) * extent / math.sqrt(3)
    fig.add_trace(
        go.Scatter3d(
            x=ones[:, 0],
            y=ones[:, 1],
            z=ones[:, 2],
            mode="lines",
            name="[1,1,1] direction",
            line={"color": "black", "width": 4},
        )
    )
    for key, label, color in STAGES:
        fig.add_trace(_points3d(stages[key], label, color))
    seg = _segments(stages["input"][:SEGMENTS], stages["centred"][:SEGMENTS])
    fig.add_trace(
        go.Scatter3d(
            x=seg[:, 0],
            y=seg[:, 1],
            z=seg[:, 2],
            mode="lines",
            name="centring moves along [1,1,1]",
            line={"color": "#1f77b4", "width": 1},
        )
    )
    curves = ((circle, "circle of radius √3", "#2ca02c"), (ellipse, "ellipse: γ·circle + β", "#d62728"))
    for curve, name, color in curves:
        fig.add_trace(
            go.Scatter3d(
                x=curve[:, 0], y=curve[:, 1], z=curve[:, 2], mode="lines", name=name, line={"color": color, "width": 3}
            )
        )
    fig.update_layout(
        title=f"LayerNorm in 3 dims: centre (onto the plane ⟂ [1,1,1]), scale (onto the circle of radius √3),<br>"
        f"then gain γ={[round(g, 3) for g in gamma]} (ellipse) and shift β={[round(b, 3) for b in beta]}",
        # the default camera looks straight down [1,1,1]; look across it so the drop onto the plane shows
        scene={
            "aspectmode": "data",
            "xaxis_title": "x1",
            "yaxis_title": "x2",
            "zaxis_title": "x3",
            "camera": {"eye": {"x": 1.7, "y": -1.3, "z": 0.8}},
        },
        width=950,
        height=720,
        legend={"y": 0.5},
    )
    return fig


def steps_pca_figure(steps: LayerNormSteps, tokens: Sequence[str], name: str) -> go.Figure:
    """Real vectors through one LayerNorm, each step projected on its own top-3 singular directions."""
    labels = token_labels(tokens)
    d = steps.input.shape[-1]
    panels = []
    for key, label, color in STAGES:
        x = getattr(steps, key)
        coords, share = top3_projection(x)
        norms = x.norm(dim=-1).numpy()
        title = f"{label}<br><sup>norms {norms.min():.3g}–{norms.max():.3g}<br>top-3 directions: {share:.0%}</sup>"
        panels.append((coords, norms, label, color, title))
    fig = make_subplots(
        rows=1,
        cols=4,
        specs=[[{"type": "scene"}] * 4],
        horizontal_spacing=0.01,
        subplot_titles=[title for *_, title in panels],
    )
    for col, (coords, norms, label, color, _) in enumerate(panels, start=1):
        hover = [f"{tok}<br>norm {n:.4g}" for tok, n in zip(labels, norms)]
        fig.add_trace(
            _points3d(coords, label, color, text=hover, hovertemplate="%{text}<extra></extra>"), row=1, col=col
        )
    fig.update_layout(
        title=f"{name} on the prompt's vectors, step by step<br><sup>each panel on its own top-3 directions, "
        f"through the origin; √d = {math.sqrt(d):.2f}</sup>",
        width=1500,
        height=560,
        margin={"t": 150},
        showlegend=False,
    )
    return fig


def _visible(names: Sequence[str], shown: set[str]) -> list[bool | str]:
    return [True if name in shown else "legendonly" for name in names]


def gamma_figure(gammas: dict[str, np.ndarray], outliers: dict[str, list[int]], shown: set[str]) -> go.Figure:
    """The gain of each dim for every LayerNorm (a few shown; the rest one click away), outlier dims marked."""
    fig = go.Figure()
    for (name, gamma), visible in zip(gammas.items(), _visible(list(gammas), shown)):
        fig.add_trace(
            go.Scatter(
                x0=0,
                dx=1,
                y=gamma,
                mode="markers",
                marker={"size": 3},
                name=name,
                visible=visible,
                legendgroup=name,
                hovertemplate=f"{name}<br>dim %{{x}}<br>γ %{{y:.4g}}<extra></extra>",
            )
        )
        dims = outliers[name]
        if dims:
            fig.add_trace(
                go.Scatter(
                    x=dims,
                    y=gamma[dims],
                    mode="markers+text",
                    text=[str(d) for d in dims],
                    textposition="top center",
                    marker={"size": 9, "symbol": "x", "color": "red"},
                    name=f"{name} outlier dims",
                    visible=visible,
                    legendgroup=name,
                    showlegend=False,
                )
            )
    fig.update_layout(
        title="LayerNorm gain γ per dimension (red ×: outlier dims; the legend shows the others)",
        xaxis_title="residual dimension",
        yaxis_title="γ",
        width=1100,
        height=520,
    )
    return fig


def gamma_position_figure(
    gammas: dict[str, np.ndarray], position_log_std: np.ndarray, correlations: dict[str, float | None], shown: set[str]
) -> go.Figure:
    """log10|γ| against log10 of the position embedding's std, one point per dim, per LayerNorm."""
    fig = go.Figure()
    for (name, gamma), visible in zip(gammas.items(), _visible(list(gammas), shown)):
        r = correlations.get(name)
        legend = f"{name} (r = {r:.2f})" if r is not None else f"{name} (r undefined)"
        fig.add_trace(
            go.Scatter(
                x=position_log_std,
                y=np.log10(np.maximum(np.abs(gamma), 1e-30)),
                mode="markers",
                marker={"size": 4, "opacity": 0.6},
                name=legend,
                visible=visible,
                hovertemplate=(  # the point number is the dim: no per-point text to carry
                    f"{name}<br>dim %{{pointNumber}}<br>log10 std pos %{{x:.3f}}<br>log10|γ| %{{y:.3f}}<extra></extra>"
                ),
            )
        )
    fig.update_layout(
        title="Which dims carry position: log10|γ| of each LayerNorm vs log10 std of W_pos per dim",
        xaxis_title="log10 std over positions of the position embedding",
        yaxis_title="log10 |γ|",
        width=1000,
        height=560,
    )
    return fig


def gelu_figure(grid: np.ndarray, curve: np.ndarray, pre: np.ndarray, layer: int) -> go.Figure:
    """GELU (tanh form) next to ReLU, over a histogram of the layer's real MLP pre-activations."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    counts, edges = np.histogram(np.clip(pre, grid[0], grid[-1]), bins=80, range=(grid[0], grid[-1]))
    fig.add_trace(
        go.Bar(
            x=(edges[:-1] + edges[1:]) / 2,
            y=counts,
            name=f"block {layer} MLP pre-activations",
            marker={"color": "#c6dbef"},
        ),
        secondary_y=True,
    )
    fig.add_trace(go.Scatter(x=grid, y=curve, mode="lines", name="GELU (tanh form)", line={"color": "#d62728"}))
    fig.add_trace(
        go.Scatter(x=grid, y=np.maximum(grid, 0), mode="lines", name="ReLU", line={"color": "grey", "dash": "dash"})
    )
    low = int(np.argmin(curve))
    fig.add_trace(
        go.Scatter(
            x=[grid[low]],
            y=[curve[low]],
            mode="markers+text",
            name="minimum",
            text=[f"min {curve[low]:.3f} at {grid[low]:.2f}"],
            textposition="bottom right",
        )
    )
    fig.update_yaxes(title_text="activation", secondary_y=False)
    fig.update_yaxes(title_text="count (clipped to the plotted range)", secondary_y=True, showgrid=False)
    fig.update_layout(
        title=f"The MLP's nonlinearity: GELU, and where block {layer}'s pre-activations fall",
        xaxis_title="pre-activation",
        width=900,
        height=500,
        bargap=0,
    )
    return fig


def superposition_figure(before: np.ndarray, after: np.ndarray, numbers: Superposition) -> go.Figure:
    """Histogram of pairwise angles, random vs optimised, with the target band shaded."""
    edges = np.arange(math.floor(min(before.min(), after.min())), math.ceil(max(before.max(), after.max())) + 0.5, 0.5)
    fig = go.Figure()
    for angles, name in ((before, "random"), (after, "optimised")):
        counts, _ = np.histogram(angles, bins=edges)
        stats = numbers.random if name == "random" else numbers.optimised
        fig.add_trace(
            go.Bar(
                x=(edges[:-1] + edges[1:]) / 2,
                y=counts / len(angles),
                opacity=0.6,
                name=f"{name}: {stats.fraction_in_band:.1%} in band, {stats.min_angle:.1f}°–{stats.max_angle:.1f}°",
            )
        )
    lo, hi = numbers.band_deg
    fig.add_vrect(x0=lo, x1=hi, fillcolor="green", opacity=0.15, line_width=0)
    welch = numbers.welch_bound
    fig.update_layout(
        title=f"Superposition toy: {numbers.n_vectors} unit vectors in {numbers.dim} dims "
        f"(pairwise angles; band {lo:g}°–{hi:g}° shaded)<br><sup>Welch bound: the widest angle range "
        f"can shrink to at best {welch.best_possible_angle_range[0]:.1f}°–"
        f"{welch.best_possible_angle_range[1]:.1f}°; at most {welch.max_vectors_all_in_band} vectors "
        f"fit with every angle in the band</sup>",
        xaxis_title="angle between two vectors (degrees)",
        yaxis_title="share of pairs",
        barmode="overlay",
        bargap=0,
        width=950,
        height=520,
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def layernorm_figures(result: LayerNormResult) -> dict[str, go.Figure]:
    f, draw = result.findings, result.drawings
    name = f.illustrated_layernorm
    shown = {name, name.replace("ln1", "ln2"), "ln_final"}
    outliers = {row.name: row.gain.gamma_outlier_dims for row in f.layernorms}
    correlations = {row.name: row.pearson for row in f.gamma_vs_position.correlation}
    return {
        "toy_3d": toy_3d_figure(draw.toy, f.toy_3d.gamma, f.toy_3d.beta),
        "steps_3d": steps_pca_figure(draw.steps, draw.step_tokens, name),
        "gamma_per_dim": gamma_figure(draw.gammas, outliers, shown),
        "gamma_vs_position": gamma_position_figure(draw.gammas, draw.position_log_std, correlations, shown),
        "gelu": gelu_figure(draw.gelu_grid, draw.gelu_curve, draw.pre_activations, f.gelu.layer),
        "superposition": superposition_figure(draw.angles_before, draw.angles_after, f.superposition),
    }


FIGURES = Figures(
    layernorm_figures,
    {
        "steps_3d": "LayerNorm step by step on the prompt's residual vectors: centre, scale onto the sphere, gain, shift.",
        "toy_3d": "LayerNorm's steps on points in three dimensions, where the sphere can be seen.",
        "gamma_per_dim": "The gain γ of each dimension for every LayerNorm; outlier dims marked.",
        "gamma_vs_position": "Which dimensions carry position: each LayerNorm's gain against the position "
        "embedding's spread, one point per dimension.",
        "superposition": "Angles between directions packed into the residual space, random and optimised.",
        "gelu": "The GELU non-linearity, with the pre-activations the MLP sees on the prompt.",
    },
    first=("steps_3d", "toy_3d", "gamma_per_dim", "gamma_vs_position", "superposition", "gelu"),
)
