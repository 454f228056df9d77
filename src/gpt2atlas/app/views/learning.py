"""How it learned: the shipped model's training history, checkpoint by checkpoint (mini only, or none)."""

from __future__ import annotations

import streamlit as st

from gpt2atlas.app import state
from gpt2atlas.app.views.analysis import progress_bar
from gpt2atlas.app.widgets import figure_picker, reading
from gpt2atlas.viz.dynamics import FIGURES
from gpt2atlas.viz.readings import read_dynamics


def measured(model_id: str, on_progress=None):
    """The history and its measures, once per model (in this process)."""

    def compute():
        from gpt2atlas.analysis.dynamics import analyze
        from gpt2atlas.training.history import history_of_shipped

        history = history_of_shipped(model_id)
        return history, analyze(history, progress=False, on_progress=on_progress)

    return state.result_cache().get(("dynamics", model_id), compute)


@st.cache_resource(max_entries=2, show_spinner="drawing ...")
def figures(model_id: str) -> dict:
    history, dynamics = measured(model_id)
    return FIGURES(dynamics, history)


def render(model, settings) -> None:
    from gpt2atlas.shipped import SHIPPED_MODELS

    if settings.model_id not in SHIPPED_MODELS:
        st.info(
            "This view needs a training history: it shows the shipped model's (model `mini`). For a run of your "
            "own, use `gpt2atlas dynamics --run DIR` or `gpt2atlas report --run DIR`."
        )
        return
    bar = st.empty()
    with st.spinner("measuring every checkpoint of the training run ..."):
        _, dynamics = measured(settings.model_id, on_progress=progress_bar(bar))
    bar.empty()
    reading(read_dynamics(dynamics))
    preferred = ("position_tables", "heads_over_time")
    figure_picker(figures(settings.model_id), FIGURES, key="learning_figure", preferred=preferred)
