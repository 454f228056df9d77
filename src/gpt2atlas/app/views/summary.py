"""The model summary: its configuration, parameters per component, and the architecture drawn."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from gpt2atlas.analysis.summary import ModelSummary
from gpt2atlas.app import state
from gpt2atlas.app.widgets import figure_picker, reading
from gpt2atlas.areas.weights import SPEC as WEIGHTS
from gpt2atlas.viz.readings import read_summary


@st.cache_resource(max_entries=2)
def model_summary(model_id: str) -> ModelSummary:
    from gpt2atlas.analysis.summary import summary

    return summary(state.get_model(model_id))


def render(model, settings) -> None:
    data = model_summary(settings.model_id)
    reading(read_summary(data))
    left, right = st.columns(2)
    config = data.config.settings()
    left.dataframe(
        pd.DataFrame({"setting": list(config), "value": [str(v) for v in config.values()]}),
        hide_index=True,
        width="stretch",
    )
    counts = data.parameter_counts
    right.dataframe(
        pd.DataFrame(
            {
                "component": [k.replace("_", " ") for k in counts],
                "parameters": list(counts.values()),
                "share": [v / counts["total"] for v in counts.values()],
            }
        ),
        hide_index=True,
        width="stretch",
        column_config={
            "parameters": st.column_config.NumberColumn(format="localized"),
            "share": st.column_config.NumberColumn(format="percent"),
        },
    )
    figures = state.cached_figures(settings.model_id, WEIGHTS, None)
    figure_picker(figures, WEIGHTS.figures, key="summary_figure", preferred=("model_summary", "architecture_3d"))
