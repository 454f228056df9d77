"""The dashboard's views, by the name shown in the view picker; each has `render(model, settings)`."""

from typing import Any, Protocol

from gpt2atlas.app.views import attention, embeddings, generation, roles
from gpt2atlas.app.views.analysis import AnalysisView


class View(Protocol):
    def render(self, model: Any, settings: Any) -> None: ...


VIEWS: dict[str, View] = {
    "Generated text": generation,
    "Attention": attention,
    "Head roles": roles,
    "Embeddings": embeddings,
    "Journey": AnalysisView(
        "journey",
        "gpt2atlas.analysis.journey",
        options=(("projections", ("pca",)),),
        preferred=("logit_lens", "rank_kl", "cosines", "trajectory"),
    ),
    "Neurons": AnalysisView(
        "neurons",
        "gpt2atlas.analysis.neurons",
        preferred=("tokens_by_neurons", "tokens_by_layers", "neuron_key_value", "fraction_active"),
    ),
    "LayerNorm": AnalysisView(
        "layernorm",
        "gpt2atlas.analysis.layernorm",
        options=(("superposition_steps", 30),),
        preferred=("steps_3d", "toy_3d", "gamma_per_dim", "gamma_vs_position", "gelu", "superposition"),
    ),
    "Geometry": AnalysisView(
        "geometry", "gpt2atlas.geometry.analysis", per_prompt=False, on_demand=True, options=(("max_texts", 100),)
    ),
}
