"""A view made from one analysis module: its written reading and a picker over its figures."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from gpt2atlas.app import state
from gpt2atlas.app.widgets import figure_picker, reading
from gpt2atlas.viz.readings import read


@dataclass(frozen=True)
class AnalysisView:
    area: str
    module: str
    per_prompt: bool = True
    on_demand: bool = False  # slow analyses run only when asked
    options: tuple = ()
    preferred: tuple[str, ...] = ()

    def render(self, model, settings) -> None:
        if not state.module_available(self.module):
            st.info(f"This view needs {self.module}, which this installation does not have.")
            return
        prompt = settings.prompt if self.per_prompt else None
        key = f"run_{self.area}"
        if self.on_demand and not st.session_state.get(key):
            if not st.button(f"Run the {self.area} analysis", key=f"{key}_button"):
                st.caption("This analysis takes longer than the others: it runs when you ask.")
                return
            st.session_state[key] = True
        result = state.cached_analysis(settings.model_id, self.module, prompt, self.options)
        reading(read(self.area, result.findings))
        figures = state.cached_figures(settings.model_id, self.module, prompt, self.options)
        figure_picker(figures, key=f"{self.area}_figure", preferred=self.preferred)
