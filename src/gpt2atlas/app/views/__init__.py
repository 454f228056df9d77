"""The dashboard's views, by the name shown in the view picker; each has `render(model, settings)`.

One view per area (gpt2atlas.areas), in the areas' order: the area's own view where its spec declares one, else
an AnalysisView with the spec's dashboard options and pickers; then any views the spec shows after it. Around
them: the generated text, the summary, the neuron atlas (what units do across a corpus) and how the shipped model
learned.
"""

from typing import Any, Protocol

from gpt2atlas.app.views import atlas, generation, learning, summary
from gpt2atlas.app.views.analysis import AnalysisView, SpecView
from gpt2atlas.areas import AREAS
from gpt2atlas.areas.spec import AreaSpec


class View(Protocol):
    def render(self, model: Any, settings: Any) -> None: ...


def area_views(spec: AreaSpec) -> dict[str, View]:
    """The view of an area and the views its spec shows after it."""
    own = spec.dashboard.view
    first: View = SpecView(spec, own) if own is not None else AnalysisView(spec)
    return {spec.label: first, **{name: SpecView(spec, view) for name, view in spec.dashboard.after}}


VIEWS: dict[str, View] = {
    "Generated text": generation,
    "Summary": summary,
    **{name: view for spec in AREAS for name, view in area_views(spec).items()},
    "Neuron atlas": atlas,
    "How it learned": learning,
}
