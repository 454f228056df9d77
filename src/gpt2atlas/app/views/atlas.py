"""The dashboard view "Neuron atlas": pick a layer and a neuron or head, or search the atlas by token, text or
density; its corpus examples shaded, histogram, bands and logit effect. Everything comes from the atlas's
database (opened once per path and shared): nothing is scanned again."""

from __future__ import annotations

import os
import time
from typing import Any

import pandas as pd
import streamlit as st

from gpt2atlas.app import state
from gpt2atlas.app.widgets import chart, reading
from gpt2atlas.atlas.reader import AtlasReader, check_model, open_atlas
from gpt2atlas.model.gpt2 import GPT2
from gpt2atlas.shipped import shipped_atlas
from gpt2atlas.viz.atlas import CSS, UnitView, head_view, neuron_view
from gpt2atlas.viz.tables import Table

ATLAS_ENV = "GPT2ATLAS_ATLAS"
MODES = ("neuron", "head", "search")


@st.cache_resource(max_entries=4, show_spinner="opening the atlas ...")
def cached_atlas(path: str) -> AtlasReader:
    """The atlas at `path`, opened once per process and shared by every session."""
    return open_atlas(path)


def default_atlas(model_id: str) -> str:
    """The atlas the view opens first: the command line's --atlas, else $GPT2ATLAS_ATLAS, else the shipped one."""
    given = state.app_argument("atlas") or os.environ.get(ATLAS_ENV)
    if given:
        return given
    shipped = shipped_atlas(model_id)
    return str(shipped) if shipped is not None else ""


def table(t: Table) -> None:
    st.caption(t.title)
    st.dataframe(pd.DataFrame(t.rows, columns=t.header), hide_index=True, width="stretch")


def show(view: UnitView, key: str) -> None:
    """One unit: its reading; its histogram beside its tables (logit effect, token means); then its examples and
    bands (escaped HTML from viz)."""
    st.subheader(view.title)
    reading(list(view.reading))
    left, right = st.columns(2) if view.figures else (None, st.container())
    if left is not None:
        with left:
            for name, fig in view.figures.items():
                chart(fig, key=f"{key}-{name}")
                st.caption(view.captions[name])
    with right:
        for t in view.tables:
            table(t)
    for block in view.blocks:
        st.html(f'<style>{CSS}</style><div class="atlas" data-block="{block.name}">{block.html}</div>')


def picked(reader: AtlasReader, mode: str) -> tuple[str, int, int] | None:
    """The unit the user picked: by layer and number, or from the search's hits."""
    if mode in ("neuron", "head"):
        left, right = st.columns(2)
        layer = left.selectbox("Layer", list(range(reader.layers)), key="atlas_layer")
        count = reader.neurons_per_layer if mode == "neuron" else reader.heads_per_layer
        index = right.number_input(mode.capitalize(), 0, count - 1, 0, key=f"atlas_{mode}")  # a key per range
        return mode, int(layer), int(index)
    left, right = st.columns(2)
    text = left.text_input(
        "Token or text (#464 for token id 464)",
        key="atlas_search",
        help="text is searched token by token, as GPT-2 reads it: a word inside a sentence starts with a space "
        "(' rocks', not 'rocks')",
    )
    low, high = right.slider("Active share (neurons)", 0.0, 1.0, (0.0, 1.0), key="atlas_density")
    query: dict[str, Any] = {}
    if text.strip().startswith("#") and text.strip()[1:].isdigit():
        query["token"] = int(text.strip()[1:])
    elif text.strip():
        query["text"] = text
    if (low, high) != (0.0, 1.0):
        query.update(min_density=low, max_density=high)
    if not query:
        st.info("Type a token or a piece of text, or narrow the active share, to search the atlas.")
        return None
    hits = reader.search(**query)
    if not hits:
        st.info("Nothing in the atlas matches.")
        return None
    st.dataframe(
        pd.DataFrame(
            {
                "unit": [f"L{h.layer}{'N' if h.unit == 'neuron' else 'H'}{h.index}" for h in hits],
                "why": [h.reason.replace("_", " ") for h in hits],
                "score": [h.score for h in hits],
            }
        ),
        hide_index=True,
        width="stretch",
    )
    labels = {f"{h.unit} L{h.layer}{'N' if h.unit == 'neuron' else 'H'}{h.index}": h for h in hits}
    choice = st.selectbox("Show", list(labels), key="atlas_hit")
    hit = labels[choice]
    return hit.unit, hit.layer, hit.index


def render(model: GPT2, settings: Any) -> None:
    path = st.text_input(
        "Atlas",
        value=default_atlas(settings.model_id),
        key="atlas_path",
        help="the folder written by `gpt2atlas atlas --model M --data D --out DIR` (or its atlas.sqlite)",
    ).strip()
    if not path:
        st.info(
            "No atlas for this model yet: make one with `gpt2atlas atlas --model M --data D --out DIR` and give its "
            "folder here (the shipped mini model has its own)."
        )
        return
    reader = cached_atlas(path)
    check_model(reader, model.cfg)
    run = reader.run
    st.caption(f"{run.model}: {run.tokens:,} tokens in {run.windows:,} windows, top {run.top_k} examples per unit")
    mode = st.radio("Find", MODES, horizontal=True, key="atlas_mode")
    unit = picked(reader, mode)
    if unit is None:
        return
    kind, layer, index = unit
    start = time.perf_counter()
    view = neuron_view(reader, layer, index) if kind == "neuron" else head_view(reader, layer, index)
    show(view, key=f"atlas-{kind}-{layer}-{index}")
    st.caption(f"answered from the atlas in {1000 * (time.perf_counter() - start):.0f} ms")
