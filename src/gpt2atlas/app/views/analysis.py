"""The views of the areas: the generic one (optional pickers, the written reading and a picker over the
figures), and an area's own view, which gets the dashboard's cache and widgets as a `Page`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import plotly.graph_objects as go
import streamlit as st

from gpt2atlas.analysis.base import AnalysisResult
from gpt2atlas.app import state
from gpt2atlas.app.widgets import chart, figure_picker, reading
from gpt2atlas.areas.spec import AreaSpec, View
from gpt2atlas.model.gpt2 import GPT2
from gpt2atlas.viz.figures import Figures

T = TypeVar("T")
STAGES = {"extracting": "reading the texts through the model", "estimating": "measuring each layer's cloud",
          "control": "measuring a random-initialised twin (the chance baseline)",
          "checkpoints": "measuring each checkpoint"}  # fmt: skip


def progress_bar(slot) -> Callable[[str, int, int], None]:
    """A callback that shows an analysis's progress in `slot` as a bar with the stage in words."""

    def show(stage: str, done: int, total: int) -> None:
        slot.progress(done / max(total, 1), text=f"{STAGES.get(stage, stage)}: {done:,} of {total:,}")

    return show


@dataclass(frozen=True)
class DashboardPage:
    """What the dashboard lends an area's view (areas.spec.Page): the model, the prompt, the shared cache."""

    model: GPT2
    model_id: str
    prompt: str

    def cached(self, key: tuple, compute: Callable[[], T], spinner: str = "") -> T:
        with st.spinner(spinner or "working ..."):
            return state.result_cache().get(("page", self.model_id, *key), compute)

    def analysis(self, spec: AreaSpec, options: tuple = ()) -> AnalysisResult:
        prompt = self.prompt if spec.per_prompt else None
        with st.spinner(f"analysing ({spec.key}) ..."):
            return state.cached_analysis(self.model_id, spec, prompt, options)

    def chart(self, fig: go.Figure, key: str, width: str = "stretch") -> None:
        chart(fig, key=key, width="content" if width == "content" else "stretch")

    def reading(self, sentences: list[str]) -> None:
        reading(sentences)

    def figure_picker(
        self, figures: Mapping[str, go.Figure], captions: Figures, key: str, preferred: tuple[str, ...] = ()
    ) -> None:
        figure_picker(figures, captions, key=key, preferred=preferred)


@dataclass(frozen=True)
class SpecView:
    """A view an area's spec declares, drawn on this dashboard's page."""

    spec: AreaSpec
    view: View

    def render(self, model: GPT2, settings: Any) -> None:
        self.view(DashboardPage(model, settings.model_id, settings.prompt))


@dataclass(frozen=True)
class AnalysisView:
    """The generic view of an area: its dashboard options and pickers, then its reading and figures."""

    spec: AreaSpec

    def render(self, model: GPT2, settings: Any) -> None:
        spec, part = self.spec, self.spec.dashboard
        prompt = settings.prompt if spec.per_prompt else None
        key = f"run_{spec.key}"
        if spec.slow and not st.session_state.get(key):
            if not st.button(f"Run the {spec.key} analysis", key=f"{key}_button"):
                st.caption("This analysis takes longer than the others: it runs when you ask.")
                return
            st.session_state[key] = True
        options = part.options
        if part.pickers is not None:
            options += part.pickers(model, settings.prompt) if spec.per_prompt else part.pickers(model)
        bar = st.empty()
        with st.spinner(part.note or f"analysing ({spec.key}) ..."):
            result = state.cached_analysis(settings.model_id, spec, prompt, options, on_progress=progress_bar(bar))
            figures = state.cached_figures(settings.model_id, spec, prompt, options)
        bar.empty()
        reading(spec.read(result.findings))
        figure_picker(figures, spec.figures, key=f"{spec.key}_figure", preferred=spec.figures.first)
