"""Embeddings: the token cloud projected to 2D or 3D (PCA, t-SNE or UMAP) with the prompt's tokens labelled."""

from __future__ import annotations

import streamlit as st

from gpt2atlas.app import state
from gpt2atlas.app.widgets import figure_picker, reading
from gpt2atlas.report.readings import read

MODULE = "gpt2atlas.analysis.embeddings"
METHODS = {"PCA": "pca", "t-SNE (slower)": "tsne", "UMAP (slower)": "umap"}
SAMPLE_SIZE = 1500


def render(model, settings) -> None:
    if not state.module_available(MODULE):
        st.info(f"This view needs {MODULE}, which this installation does not have.")
        return
    left, right = st.columns(2)
    method = METHODS[left.radio("Projection", list(METHODS), horizontal=True, key="embeddings_method")]
    dims = right.radio("Dimensions", [2, 3], horizontal=True, key="embeddings_dims")
    options = (("projections", (method,)), ("sample_size", SAMPLE_SIZE), ("progress", False))
    result = state.cached_analysis(settings.model_id, MODULE, settings.prompt, options)
    figures = state.cached_figures(settings.model_id, MODULE, settings.prompt, options)
    st.plotly_chart(figures[f"tokens_{method}_{dims}d"], width="stretch", key="embeddings_projection")
    reading(read("embeddings", result.findings))
    others = {k: v for k, v in figures.items() if not k.startswith(f"tokens_{method}")}
    figure_picker(others, key="embeddings_figure", preferred=("dim_stats", "position_curves", "joint_pca_3d"))
