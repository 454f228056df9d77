"""Attention: pick a layer and a head (or all heads of the layer); matrix view or lines view."""

from __future__ import annotations

import numpy as np
import streamlit as st

from gpt2atlas.app import state
from gpt2atlas.app.widgets import chart
from gpt2atlas.viz.attention import layer_grid_figure, lines_figure, pattern_figure
from gpt2atlas.viz.labels import token_labels

ALL_HEADS = "all heads"


@st.cache_resource(max_entries=64)
def layer_patterns(model_id: str, prompt: str, layer: int) -> tuple[np.ndarray, list[str]]:
    """(head, query, key) attention patterns of one layer on the prompt, and numbered token labels."""
    from gpt2atlas.analysis.attention import layer_patterns as compute

    model = state.get_model(model_id)
    tokens = model.to_tokens(prompt)
    patterns = compute(model, tokens, layer)[0].cpu().numpy()
    return patterns, token_labels(model.to_str_tokens(tokens[0].tolist()), numbered=True)


def render(model, settings) -> None:
    cfg = model.cfg
    left, middle, right = st.columns(3)
    layer = left.selectbox("Layer", list(range(cfg.n_layer)), key="attention_layer")
    head = middle.selectbox("Head", [ALL_HEADS, *range(cfg.n_head)], key="attention_head")
    mode = right.radio("Show as", ["matrix", "lines"], horizontal=True, key="attention_mode")
    patterns, labels = layer_patterns(settings.model_id, settings.prompt, layer)
    if mode == "lines":  # all heads: every head at once, one colour each (BertViz's head view)
        fig = lines_figure(patterns, labels, layer, None if head == ALL_HEADS else head)
    elif head == ALL_HEADS:
        fig = layer_grid_figure(patterns, labels, layer)
    else:
        fig = pattern_figure(patterns[head], labels, f"layer {layer} head {head}: attention pattern")
    chart(fig, width="content" if mode == "lines" else "stretch", key="attention_chart")
