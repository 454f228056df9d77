"""A view made from one analysis module: optional pickers, its written reading and a picker over its figures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

from gpt2atlas.app import state
from gpt2atlas.app.widgets import figure_picker, reading
from gpt2atlas.viz.readings import read

STAGES = {"extracting": "reading the texts through the model", "estimating": "measuring each layer's cloud",
          "control": "measuring a random-initialised twin (the chance baseline)",
          "checkpoints": "measuring each checkpoint"}  # fmt: skip


def progress_bar(slot) -> Callable[[str, int, int], None]:
    """A callback that shows an analysis's progress in `slot` as a bar with the stage in words."""

    def show(stage: str, done: int, total: int) -> None:
        slot.progress(done / max(total, 1), text=f"{STAGES.get(stage, stage)}: {done:,} of {total:,}")

    return show


@dataclass(frozen=True)
class AnalysisView:
    area: str
    module: str
    per_prompt: bool = True
    on_demand: bool = False  # slow analyses run only when asked
    options: tuple = ()
    preferred: tuple[str, ...] = ()
    pickers: Callable[..., tuple] | None = None  # widgets that add options: (model, prompt) -> pairs
    note: str = ""  # what a long run is doing, shown while it runs

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
        options = self.options
        if self.pickers is not None:
            options += self.pickers(model, settings.prompt) if self.per_prompt else self.pickers(model)
        bar = st.empty()
        with st.spinner(self.note or f"analysing ({self.area}) ..."):
            result = state.cached_analysis(
                settings.model_id, self.module, prompt, options, on_progress=progress_bar(bar)
            )
            figures = state.cached_figures(settings.model_id, self.module, prompt, options)
        bar.empty()
        reading(read(self.area, result.findings))
        figure_picker(figures, key=f"{self.area}_figure", preferred=self.preferred)
