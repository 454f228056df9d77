"""Embeddings: the token cloud projected to 2D or 3D (PCA, t-SNE or UMAP) with the prompt's tokens labelled."""

from __future__ import annotations

import streamlit as st

from gpt2atlas.app import state
from gpt2atlas.app.widgets import chart, figure_picker, reading
from gpt2atlas.viz.figures import figures_of as draw_figures
from gpt2atlas.viz.readings import read

MODULE = "gpt2atlas.analysis.embeddings"
METHODS = {"PCA": "pca", "t-SNE (slower)": "tsne", "UMAP (slower)": "umap"}
SAMPLE_SIZE = 1500


@st.cache_resource(max_entries=2, show_spinner="analysing the vocabulary ...")
def vocabulary(model_id: str):
    """The prompt-independent numbers, once per model: a new prompt then costs only its own part."""
    from gpt2atlas.analysis.embeddings import vocabulary_stats

    return vocabulary_stats(state.get_model(model_id))


@st.cache_resource(max_entries=16, show_spinner="analysing ...")
def analysis(model_id: str, prompt: str, method: str):
    from gpt2atlas.analysis.embeddings import analyze

    return analyze(
        state.get_model(model_id),
        prompt,
        projections=(method,),
        sample_size=SAMPLE_SIZE,
        progress=False,
        vocabulary=vocabulary(model_id),
    )


@st.cache_resource(max_entries=16, show_spinner="drawing ...")
def figures_of(model_id: str, prompt: str, method: str) -> dict:
    return draw_figures(analysis(model_id, prompt, method))


def render(model, settings) -> None:
    if not state.module_available(MODULE):
        st.info(f"This view needs {MODULE}, which this installation does not have.")
        return
    left, right = st.columns(2)
    method = METHODS[left.radio("Projection", list(METHODS), horizontal=True, key="embeddings_method")]
    dims = right.radio("Dimensions", [2, 3], horizontal=True, key="embeddings_dims")
    result = analysis(settings.model_id, settings.prompt, method)
    figures = figures_of(settings.model_id, settings.prompt, method)
    chart(figures[f"tokens_{method}_{dims}d"], key="embeddings_projection")
    reading(read("embeddings", result.findings))
    others = {k: v for k, v in figures.items() if not k.startswith(f"tokens_{method}")}
    figure_picker(others, key="embeddings_figure", preferred=("dim_stats", "position_curves", "joint_pca_3d"))
