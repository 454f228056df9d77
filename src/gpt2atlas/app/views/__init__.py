"""The dashboard's views, by the name shown in the view picker; each has `render(model, settings)`.

One view per analysis area (analysis/areas.py), in the areas' order: a custom view where the area has one, else an
AnalysisView with the dashboard's options and pickers for it. Around them: the generated text, the summary, the
head roles (beside attention) and how the shipped model learned.
"""

from collections.abc import Callable
from typing import Any, Protocol

from gpt2atlas.analysis.areas import AREAS, Area
from gpt2atlas.app.views import attention, embeddings, generation, learning, pickers, roles, summary
from gpt2atlas.app.views.analysis import AnalysisView


class View(Protocol):
    def render(self, model: Any, settings: Any) -> None: ...


CUSTOM: dict[str, View] = {"embeddings": embeddings, "attention": attention}
AFTER: dict[str, dict[str, View]] = {"attention": {"Head roles": roles}}  # views shown right after an area's
OPTIONS: dict[str, tuple] = {
    "journey": (("projections", ("pca",)),),
    "layernorm": (("superposition_steps", 30),),
    "geometry": (("max_texts", 100),),
}
PICKERS: dict[str, Callable[..., tuple]] = {
    "weights": pickers.weight,
    "journey": pickers.token,
    "saliency": pickers.target,
    "neurons": pickers.neuron,
    "layernorm": pickers.layernorm,
}
NOTES = {
    "geometry": "measuring the intrinsic dimension of every layer on 100 texts (about a minute on GPT-2 small) ...",
}


def area_view(area: Area) -> View:
    return CUSTOM.get(area.key) or AnalysisView(
        area.key,
        area.module,
        per_prompt=area.per_prompt,
        on_demand=area.slow,
        options=OPTIONS.get(area.key, ()),
        preferred=area.figures,
        pickers=PICKERS.get(area.key),
        note=NOTES.get(area.key, ""),
    )


VIEWS: dict[str, View] = {
    "Generated text": generation,
    "Summary": summary,
    **{name: view for area in AREAS for name, view in {area.label: area_view(area), **AFTER.get(area.key, {})}.items()},
    "How it learned": learning,
}
