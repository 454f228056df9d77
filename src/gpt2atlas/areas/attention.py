"""Attention and head roles; the dashboard shows a layer's heads as matrices or lines, then the head roles."""

from typing import Any

import numpy as np

from gpt2atlas.analysis import attention
from gpt2atlas.analysis.kinds import PerPrompt
from gpt2atlas.areas.pickers import streamlit
from gpt2atlas.areas.spec import (
    LAYER_OF_PICTURE,
    AreaSpec,
    CommandPart,
    DashboardPart,
    Knob,
    Page,
    ReportContext,
    ReportPart,
)
from gpt2atlas.viz import attention as figures
from gpt2atlas.viz.labels import token_labels
from gpt2atlas.viz.readings import read_attention

ALL_HEADS = "all heads"


def report_options(ctx: ReportContext) -> dict[str, Any]:
    return {"seed": ctx.seed, **({"repeat_batch": 2} if ctx.quick else {})}


def layer_patterns(page: Page, layer: int) -> tuple[np.ndarray, list[str]]:
    """(head, query, key) attention patterns of one layer on the prompt, and numbered token labels."""

    def compute() -> tuple[np.ndarray, list[str]]:
        tokens = page.model.to_tokens(page.prompt)
        patterns = attention.layer_patterns(page.model, tokens, layer)[0].cpu().numpy()
        return patterns, token_labels(page.model.to_str_tokens(tokens[0].tolist()), numbered=True)

    return page.cached(("attention patterns", page.prompt, layer), compute)


def view(page: Page) -> None:
    """Pick a layer and a head (or all heads of the layer); matrix view or lines view."""
    cfg = page.model.cfg
    left, middle, right = streamlit().columns(3)
    layer = left.selectbox("Layer", list(range(cfg.n_layer)), key="attention_layer")
    head = middle.selectbox("Head", [ALL_HEADS, *range(cfg.n_head)], key="attention_head")
    mode = right.radio("Show as", ["matrix", "lines"], horizontal=True, key="attention_mode")
    patterns, labels = layer_patterns(page, layer)
    if mode == "lines":  # all heads: every head at once, one colour each (BertViz's head view)
        fig = figures.lines_figure(patterns, labels, layer, None if head == ALL_HEADS else head)
    elif head == ALL_HEADS:
        fig = figures.layer_grid_figure(patterns, labels, layer)
    else:
        fig = figures.pattern_figure(patterns[head], labels, f"layer {layer} head {head}: attention pattern")
    page.chart(fig, width="content" if mode == "lines" else "stretch", key="attention_chart")


def roles(page: Page) -> None:
    """Head roles: every head's scores as layer x head grids, and the heads named for each role."""
    result = page.analysis(SPEC)
    page.reading(SPEC.read(result.findings))
    cfg = page.model.cfg
    page.chart(
        figures.score_grid_figure(result.findings.heads, attention.SCORES, cfg.n_layer, cfg.n_head), "roles_chart"
    )


SPEC = AreaSpec(
    "attention",
    "Attention and head roles",
    "Attention",
    "what each head attends to; previous-token, induction, duplicate and sink heads",
    PerPrompt(attention.analyze),
    figures.FIGURES,
    read_attention,
    knobs=(
        Knob("layer", LAYER_OF_PICTURE, flags=("--layer", "-l")),
        Knob("head", "head to show (default: top previous-token head)"),
        Knob("prepend_bos", "put <|endoftext|> before the prompt", bool, ("--prepend-bos",)),
        Knob("seed", "seed of the random sequences for the induction scores"),
    ),
    report=ReportPart(report_options),
    dashboard=DashboardPart(view=view, after=(("Head roles", roles),)),
    command=CommandPart(
        "Score every attention head (previous-token, BOS, entropy, self, induction, duplicate) and name roles."
    ),
    inside_layers=True,
)
