"""Attention figures: one head's pattern, a layer's heads, the model's head scores, a lines view, batch means."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gpt2atlas.analysis.attention import SCORES, AttentionResult, HeadScores, InductionTarget, ScoredHead
from gpt2atlas.viz.figures import Figures
from gpt2atlas.viz.labels import token_labels

WEIGHT_SCALE = [[0.0, "#ffffff"], [1.0, "#08306b"]]  # white (0) to navy (1)
LINE_BINS = 8  # the lines view draws weights in this many opacity steps
MIN_LINE_WEIGHT = 0.02


def _masked(pattern: np.ndarray) -> np.ndarray:
    """The pattern with future (masked) cells as NaN, so they show blank rather than as weight 0."""
    n_q, n_k = pattern.shape
    future = np.arange(n_k)[None, :] > np.arange(n_q)[:, None]
    return np.where(future, np.nan, pattern)


def _pattern_trace(pattern: np.ndarray, labels: Sequence[str], *, coloraxis: str = "coloraxis") -> go.Heatmap:
    return go.Heatmap(
        z=_masked(pattern),
        x=list(labels),
        y=list(labels),
        coloraxis=coloraxis,
        hovertemplate="query %{y}<br>key %{x}<br>weight %{z:.3f}<extra></extra>",
    )


def _blank_background(fig: go.Figure) -> go.Figure:
    """White background without grid lines, so masked (future) cells read as empty."""
    fig.update_xaxes(showgrid=False, zeroline=False)
    fig.update_yaxes(showgrid=False, zeroline=False)
    return fig.update_layout(plot_bgcolor="white")


def _side(n_tokens: int) -> int:
    return int(min(1100, max(420, 16 * n_tokens + 180)))


def pattern_figure(pattern: np.ndarray, labels: Sequence[str], title: str) -> go.Figure:
    """One head's (query, key) pattern with token labels on both axes (labels must be unique: number them)."""
    fig = go.Figure(_pattern_trace(pattern, labels))
    side = _side(len(labels))
    fig.update_layout(
        title=title,
        width=side + 80,
        height=side,
        coloraxis={"colorscale": WEIGHT_SCALE, "cmin": 0, "cmax": 1, "colorbar": {"title": "weight"}},
        xaxis={"title": "key (attended to)", "tickangle": -60},
        yaxis={"title": "query (attending)", "autorange": "reversed"},
    )
    return _blank_background(fig)


def prompt_induction_figure(
    pattern: np.ndarray, labels: Sequence[str], best: ScoredHead, uniform: float, targets: Sequence[InductionTarget]
) -> go.Figure:
    """The best induction head's pattern on the prompt, its targets circled: where "... A B ... A" should look."""
    fig = pattern_figure(
        pattern,
        labels,
        f"Induction on the prompt: layer {best.layer} head {best.head} puts {best.score:.2f} of its "
        f"attention on the circled tokens (a uniform head: {uniform:.2f})",
    )
    cells = [(labels[k], labels[t.query]) for t in targets for k in t.keys]
    fig.add_trace(
        go.Scatter(
            x=[k for k, _ in cells],
            y=[q for _, q in cells],
            mode="markers",
            marker={"symbol": "circle-open", "size": 14, "color": "#d62728", "line": {"width": 2}},
            name="token after the earlier copy",
            hoverinfo="skip",
        )
    )
    return fig.update_layout(legend={"orientation": "h", "y": -0.25})


def layer_grid_figure(patterns: np.ndarray, labels: Sequence[str], layer: int) -> go.Figure:
    """All heads of one layer as a grid of patterns; tokens are in the hover text."""
    n_head = patterns.shape[0]
    cols = math.ceil(math.sqrt(n_head))
    rows = math.ceil(n_head / cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[f"head {h}" for h in range(n_head)],
        horizontal_spacing=0.02,
        vertical_spacing=0.05,
    )
    for h in range(n_head):
        fig.add_trace(_pattern_trace(patterns[h], labels), row=h // cols + 1, col=h % cols + 1)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, autorange="reversed")
    fig.update_layout(
        title=f"layer {layer}: every head's attention pattern (rows: queries, columns: keys)",
        width=260 * cols + 120,
        height=260 * rows + 100,
        coloraxis={"colorscale": WEIGHT_SCALE, "cmin": 0, "cmax": 1, "colorbar": {"title": "weight"}},
    )
    return _blank_background(fig)


SCORE_TITLES = {
    "prev_token": "previous token",
    "bos": "first token (sink)",
    "entropy": "entropy (nats)",
    "self": "the token itself",
    "induction": "induction (repeated sequences)",
    "duplicate": "duplicate token (repeated sequences)",
}


def score_title(score: str) -> str:
    return SCORE_TITLES.get(score, score.replace("_", " "))


def score_grid_figure(heads: Sequence[HeadScores], scores: Sequence[str], n_layer: int, n_head: int) -> go.Figure:
    """The whole model as layer x head grids, one per score (entropy in nats on its own colour scale)."""
    cols = 3
    rows = math.ceil(len(scores) / cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[score_title(s).replace(" (", "<br>(") for s in scores],  # narrow screens: two lines
        horizontal_spacing=0.06,
        vertical_spacing=0.12,
    )
    for i, score in enumerate(scores):
        grid = np.full((n_layer, n_head), np.nan)
        for row in heads:
            grid[row.layer, row.head] = row.score(score)
        fig.add_trace(
            go.Heatmap(
                z=grid,
                x=list(range(n_head)),
                y=list(range(n_layer)),
                coloraxis="coloraxis2" if score == "entropy" else "coloraxis",
                hovertemplate=f"layer %{{y}} head %{{x}}<br>{score_title(score)} %{{z:.3f}}<extra></extra>",
            ),
            row=i // cols + 1,
            col=i % cols + 1,
        )
    fig.update_xaxes(title_text="head", dtick=1 if n_head <= 16 else None)
    fig.update_yaxes(autorange="reversed", dtick=1 if n_layer <= 24 else None)
    fig.update_yaxes(title_text="layer", col=1)  # once per row: beside the middle grids it ran into their neighbours
    # the two colour bars stacked at the right, entropy's beside the top row (where its grid is): side by side, they
    # overlapped once the page was narrower than the figure
    fig.update_layout(
        title="Each head's attention scores, layer by head (share of attention on each target)",
        width=1200,
        height=420 * rows + 80,
        coloraxis={
            "colorscale": "Viridis",
            "cmin": 0,
            "cmax": 1,
            "colorbar": {"title": "share", "x": 1.02, "y": 0.0, "yanchor": "bottom", "len": 0.46},
        },
        coloraxis2={
            "colorscale": "Magma",
            "colorbar": {"title": "entropy<br>(nats)", "x": 1.02, "y": 1.0, "yanchor": "top", "len": 0.46},
        },
    )
    return fig


HEAD_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a",
)  # fmt: skip


def _line_traces(pattern: np.ndarray, visible: bool, head: int, colour: str) -> list[go.Scatter]:
    """Query->key lines of one head, grouped into opacity bins (one trace per bin keeps the figure light)."""
    traces = []
    edges = np.linspace(0.0, 1.0, LINE_BINS + 1)
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        q, k = np.nonzero((pattern > max(lo, MIN_LINE_WEIGHT)) & (pattern <= hi))
        xs = np.tile(np.array([0.0, 1.0, np.nan], dtype=np.float32), len(q))
        ys = np.column_stack([-q, -k, np.full(len(q), np.nan)]).astype(np.float32).ravel()
        traces.append(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                visible=visible,
                hoverinfo="skip",
                name=f"head {head}",
                legendgroup=f"head {head}",
                showlegend=i == LINE_BINS - 1,  # one legend entry per head (clicking it hides the head)
                line={"color": colour, "width": 2},
                opacity=float(hi),
            )
        )
    return traces


def _lines_title(layer: int, head: int | None) -> str:
    which = "every head (one colour each)" if head is None else f"head {head}"
    return f"layer {layer}, {which}: attention lines<br><sup>left: query, right: key; opacity = weight</sup>"


def lines_figure(patterns: np.ndarray, labels: Sequence[str], layer: int, selected: int | None) -> go.Figure:
    """BertViz-like view: queries on the left, keys on the right, line opacity = weight; a menu picks the head.

    `selected=None` shows every head at once, each in its colour (BertViz's head view); the legend toggles them.
    """
    n_head, n_tok = patterns.shape[0], len(labels)
    fig = go.Figure()
    for h in range(n_head):
        colour = HEAD_COLOURS[h % len(HEAD_COLOURS)] if selected is None else "#1f4e9c"
        for trace in _line_traces(patterns[h], selected is None or h == selected, h, colour):
            fig.add_trace(trace)
    y = -np.arange(n_tok)
    for x, anchor in ((0.0, "middle left"), (1.0, "middle right")):
        fig.add_trace(
            go.Scatter(
                x=[x] * n_tok,
                y=y,
                mode="text",
                text=list(labels),
                showlegend=False,
                textposition=anchor,
                hoverinfo="text",
            )
        )
    n_fixed = 2
    buttons = [
        {
            "label": "all heads",
            "method": "update",
            "args": [{"visible": [True] * (n_head * LINE_BINS + n_fixed)}, {"title": _lines_title(layer, None)}],
        }
    ]
    for h in range(n_head):
        visible = [hh == h for hh in range(n_head) for _ in range(LINE_BINS)] + [True] * n_fixed
        buttons.append(
            {
                "label": f"head {h}",
                "method": "update",
                "args": [{"visible": visible}, {"title": _lines_title(layer, h)}],
            }
        )
    fig.update_layout(
        title=_lines_title(layer, selected),
        updatemenus=[
            {
                "buttons": buttons,
                "active": 0 if selected is None else selected + 1,
                "x": 1.0,
                "y": 1.0,
                "xanchor": "right",
                "yanchor": "bottom",
            }
        ],
        xaxis={"visible": False, "range": [-0.6, 1.6]},
        yaxis={"visible": False},
        width=700,
        height=int(min(2400, max(400, 22 * n_tok + 120))),
        plot_bgcolor="white",
        showlegend=selected is None,
    )
    return fig


def batch_mean_figure(batch_patterns: np.ndarray, picks: Sequence[tuple[str, int, int]], half: int) -> go.Figure:
    """Patterns averaged over the repeated random sequences for a few heads (induction shows as a stripe)."""
    labels = ["0:eot"] + [f"{i}:r{i}" for i in range(1, half + 1)] + [f"{half + i}:r{i}'" for i in range(1, half + 1)]
    fig = make_subplots(
        rows=1, cols=len(picks), subplot_titles=[f"{why}: L{l}H{h}" for why, l, h in picks], horizontal_spacing=0.04
    )
    for i, (_, layer, head) in enumerate(picks):
        fig.add_trace(_pattern_trace(batch_patterns[layer, head], labels), row=1, col=i + 1)
    fig.update_xaxes(showticklabels=False, title_text="key")
    fig.update_yaxes(showticklabels=False, autorange="reversed")
    fig.update_yaxes(title_text="query", col=1)
    fig.update_layout(
        title=f"patterns averaged over random sequences repeated twice (T={half}); "
        "induction = stripe at key q-T+1, duplicate = stripe at key q-T",
        width=420 * len(picks) + 120,
        height=480,
        coloraxis={"colorscale": WEIGHT_SCALE, "cmin": 0, "cmax": 1, "colorbar": {"title": "weight"}},
    )
    return _blank_background(fig)


def sink_and_last_figure(
    sink: Sequence[float], last_by_layer: np.ndarray, labels: Sequence[str], last_label: str
) -> go.Figure:
    """Left: attention to position 0 per layer (the sink). Right: where the last token looks, layer x key."""
    titles = ["attention to position 0 (mean over heads)", f"attention of the last token {last_label}"]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.3, 0.7], horizontal_spacing=0.08, subplot_titles=titles)
    fig.add_trace(
        go.Bar(
            x=list(range(len(sink))),
            y=list(sink),
            showlegend=False,
            hovertemplate="layer %{x}: %{y:.3f}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Heatmap(
            z=last_by_layer,
            x=list(labels),
            y=list(range(last_by_layer.shape[0])),
            colorscale=WEIGHT_SCALE,
            zmin=0,
            zmax=float(np.max(last_by_layer)),
            colorbar={"title": "weight"},
            hovertemplate="layer %{y}<br>key %{x}<br>weight %{z:.3f}<extra></extra>",
        ),
        row=1,
        col=2,
    )
    fig.update_xaxes(title_text="layer", dtick=1, row=1, col=1)
    fig.update_yaxes(title_text="share of attention", range=[0, 1], row=1, col=1)
    fig.update_xaxes(title_text="key", tickangle=-60, row=1, col=2)
    fig.update_yaxes(title_text="layer", autorange="reversed", dtick=1, row=1, col=2)
    fig.update_layout(title="attention sink and the last token's attention", width=1300, height=520)
    return fig


def _top_head(heads: Sequence[HeadScores], score: str) -> tuple[int, int]:
    best = max(heads, key=lambda r: -1.0 if math.isnan(r.score(score)) else r.score(score))
    return best.layer, best.head


def attention_figures(result: AttentionResult) -> dict[str, go.Figure]:
    """Every attention figure, by file name."""
    f = result.findings
    labels = token_labels(f.tokens, numbered=True)
    layer, head = f.selected_head.layer, f.selected_head.head
    patterns = result.layer_patterns.numpy()
    n_layer = len(f.attention_sink.by_layer)
    n_head = patterns.shape[0]
    picks = [
        (why, *_top_head(f.heads, score))
        for why, score in (
            ("top prev_token", "prev_token"),
            ("top duplicate", "duplicate"),
            ("top induction", "induction"),
        )
    ]
    figures = {
        "head_pattern": pattern_figure(patterns[head], labels, f"layer {layer} head {head}: attention pattern"),
        "layer_heads": layer_grid_figure(patterns, labels, layer),
        "head_scores": score_grid_figure(f.heads, SCORES, n_layer, n_head),
        "lines": lines_figure(patterns, labels, layer, head),
        "batch_mean_patterns": batch_mean_figure(result.batch_patterns.numpy(), picks, f.induction_setup.half_length),
        "sink_and_last_token": sink_and_last_figure(
            f.attention_sink.by_layer, np.array(f.last_token_attention.by_layer), labels, labels[-1]
        ),
    }
    induction = f.prompt_induction
    if result.induction_pattern is not None and induction.best and induction.uniform_baseline is not None:
        figures["prompt_induction"] = prompt_induction_figure(
            result.induction_pattern.numpy(),
            labels,
            induction.best,
            induction.uniform_baseline,
            induction.targets or [],
        )
    return figures


FIGURES = Figures(
    attention_figures,
    {
        "head_scores": "Each head's score for each role (previous token, induction, duplicate token, first-token "
        "sink) on this prompt.",
        "head_pattern": "One head's attention pattern on the prompt: each row a query token, each column the key it reads.",
        "lines": "Attention as lines from each token to the tokens it reads (thicker: more weight).",
        "layer_heads": "Every head of one layer side by side.",
        "prompt_induction": "Induction on the prompt itself: the head that looks most at the token that followed an "
        "earlier copy of the current one; its targets are circled.",
        "sink_and_last_token": "Attention to the first token (the sink) per layer, and where the last token looks, "
        "layer by key.",
        "batch_mean_patterns": "Attention patterns averaged over a batch of texts.",
    },
    first=("head_scores", "head_pattern", "prompt_induction", "lines", "layer_heads", "sink_and_last_token"),
)
