"""Causes figures: the direct attributions by component, each patching sweep as a heat map, and attribution
patching's estimate beside the real patching."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go

from gpt2atlas.analysis.causes.findings import PatchSweep, labels
from gpt2atlas.viz.figures import Figures
from gpt2atlas.viz.labels import escape, token_label, token_labels

if TYPE_CHECKING:
    from gpt2atlas.analysis.causes.findings import AblationFindings, CausesFindings, DirectAttribution
    from gpt2atlas.analysis.causes.summary import CausesResult

SITE_WORDS = {  # short: a title must fit the dashboard's column
    "resid_pre": "the residual stream",
    "attn_out": "attention outputs",
    "mlp_out": "MLP outputs",
    "head_out": "head outputs",
    "head_out_by_pos": "head outputs by position",
    "head_pattern": "head patterns",
}


def measured(f: DirectAttribution) -> str:
    """'logit of 'colour'' or 'logit difference 'colour' - 'height'' (escaped for a plotly title)."""
    if f.other_token is None:
        return escape(f"logit of {f.answer_token!r}")
    return escape(f"logit difference {f.answer_token!r} − {f.other_token!r}")


def dla_figure(f: DirectAttribution) -> go.Figure:
    """One bar per part of the final residual stream, with the band random unembedding directions reach."""
    chance = f.chance.p95_of_largest
    colours = ["#c0392b" if abs(v) > chance else "#4c78a8" for v in f.values]
    fig = go.Figure(
        go.Bar(
            x=f.names,
            y=f.values,
            marker_color=colours,
            hovertemplate="%{x}<br>%{y:.3f}<extra></extra>",
            name="direct attribution",
        )
    )
    for level in (chance, -chance):
        fig.add_hline(y=level, line={"dash": "dot", "color": "#888"})
    fig.update_layout(
        title=(
            f"Direct logit attribution at position {f.position} ({token_label(f.tokens[f.position])})<br>{measured(f)} = "
            f"{f.total:.3g}; dotted: 95% of random directions"
        ),
        xaxis_title="part of the final residual stream",
        yaxis_title="contribution to the logit (difference)",
        width=900,
        height=480,
        showlegend=False,
    )
    return fig


def sweep_grid(sweep: PatchSweep, tokens: list[str]) -> tuple[np.ndarray, list[str], list[str], str, str]:
    """The sweep as a 2-D grid: values, x labels, y labels and the axes' titles (by position: layer·head rows)."""
    values = np.asarray(sweep.values, dtype=float)
    n_layer = values.shape[0]
    layers = [f"L{layer}" for layer in range(n_layer)]
    if sweep.axes == ["layer", "pos"]:
        return values, token_labels(tokens, numbered=True), layers, "position", "layer"
    if sweep.axes == ["layer", "head"]:
        return values, [f"H{h}" for h in range(values.shape[1])], layers, "head", "layer"
    grid = values.transpose(0, 2, 1).reshape(-1, values.shape[1])  # (layer·head, pos)
    rows = labels(["layer", "head"], (n_layer, values.shape[2]))
    return grid, token_labels(tokens, numbered=True), rows, "position", "head"


def sweep_figure(sweep: PatchSweep, tokens: list[str]) -> go.Figure:
    """A heat map of the restored fraction, 0 (the corrupted run) white, 1 (the clean run) dark."""
    z, x, y, x_title, y_title = sweep_grid(sweep, tokens)
    bound = max(1.0, float(np.abs(z).max()) if z.size else 1.0)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=x,
            y=y,
            colorscale="RdBu",
            reversescale=True,
            zmid=0,
            zmin=-bound,
            zmax=bound,
            colorbar={"title": "restored"},
            hovertemplate="%{y} %{x}<br>restored %{z:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        title=f"Patching {SITE_WORDS[sweep.site]} ({sweep.site})<br>restored: 0 = corrupted run, 1 = clean run",
        xaxis_title=x_title,
        yaxis={"title": y_title, "autorange": "reversed"},
        width=900,
        height=max(360, 40 + 28 * len(y)) + (80 if x_title == "position" else 0),  # room for the tokens
        margin={"b": 120 if x_title == "position" else 80},
    )
    return fig


def attribution_figure(sweep: PatchSweep, estimated: np.ndarray, correlation: float) -> go.Figure:
    """Each component's attribution-patching estimate against its real patch, with the line of agreement."""
    patched = np.asarray(sweep.values, dtype=float).ravel()
    guess = np.asarray(estimated, dtype=float).ravel()
    names = labels(sweep.axes, np.asarray(sweep.values).shape)
    ends = [float(min(patched.min(), guess.min())), float(max(patched.max(), guess.max()))]
    fig = go.Figure(
        [
            go.Scatter(x=ends, y=ends, mode="lines", line={"dash": "dot", "color": "#888"}, name="estimate = patch"),
            go.Scatter(
                x=patched,
                y=guess,
                mode="markers",
                text=names,
                name="component",
                hovertemplate="%{text}<br>patched %{x:.3f}<br>estimated %{y:.3f}<extra></extra>",
            ),
        ]
    )
    fig.update_layout(
        title=f"Attribution patching vs real patching ({sweep.site})<br>correlation {correlation:.3f}",
        xaxis_title="real patching (restored fraction)",
        yaxis_title="attribution patching's estimate",
        width=700,
        height=560,
    )
    return fig


def ablation_figure(f: AblationFindings) -> go.Figure:
    """Per head and MLP, the loss increase over the corpus when its output is zeroed and when it is averaged."""
    names = [c.component for c in f.components]
    fig = go.Figure(
        [
            go.Bar(
                x=names,
                y=[getattr(c, kind) for c in f.components],
                name=f"{kind} ablation",
                marker_color=colour,
                hovertemplate="%{x}<br>+%{y:.3f} nats per token<extra>" + kind + "</extra>",
            )
            for kind, colour in (("zero", "#c0392b"), ("mean", "#4c78a8"))
        ]
    )
    fig.update_layout(
        title=(
            f"Ablation over {escape(Path(f.data).name or f.data)} ({f.tokens} tokens)<br>loss without ablation "
            f"{f.base_loss:.3f} nats per token"
        ),
        barmode="group",
        xaxis_title="component",
        yaxis_title="loss increase (nats per token)",
        width=900,
        height=480,
    )
    return fig


def causes_figures(result: CausesResult) -> dict[str, go.Figure]:
    f: CausesFindings = result.findings
    out = {"dla": dla_figure(f.attribution)}
    for sweep in f.sweeps:
        out[f"patch_{sweep.site}"] = sweep_figure(sweep, f.pair.clean_tokens)
    for sweep, check in zip(f.sweeps, f.estimates, strict=True):
        out[f"attribution_{sweep.site}"] = attribution_figure(
            sweep, result.estimated[sweep.site].cpu().numpy(), check.correlation
        )
    if f.ablation is not None:
        out["ablation"] = ablation_figure(f.ablation)
    return out


SITE_CAPTIONS = {
    "resid_pre": "the residual stream entering each layer, per layer and position",
    "attn_out": "each layer's attention output, per layer and position",
    "mlp_out": "each layer's MLP output, per layer and position",
    "head_out": "each head's output over all positions, per layer and head",
    "head_out_by_pos": "each head's output at one position, per head and position",
    "head_pattern": "each head's attention pattern, per layer and head",
}
CAPTIONS = {
    "dla": "Direct logit attribution: each part's share of the answer's logit (difference), against random directions.",
    **{
        f"patch_{site}": f"Activation patching of {words}: the fraction of the logit difference it restores."
        for site, words in SITE_CAPTIONS.items()
    },
    **{
        f"attribution_{site}": f"Attribution patching's estimate beside real patching of {site.replace('_', ' ')}."
        for site in SITE_CAPTIONS
    },
    "ablation": (
        "Ablation over the corpus given (drawn only with --data): the loss increase when each head's or MLP's "
        "output is set to zero or to its mean."
    ),
}
FIGURES = Figures(
    causes_figures,
    CAPTIONS,
    first=("dla", "patch_head_out", "attribution_head_out", "patch_resid_pre", "attribution_resid_pre"),
)
