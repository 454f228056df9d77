"""The dashboard's views, by the name shown in the view picker; each has `render(model, settings)`."""

from typing import Any, Protocol

from gpt2atlas.app.views import attention, embeddings, generation, learning, pickers, roles, summary
from gpt2atlas.app.views.analysis import AnalysisView


class View(Protocol):
    def render(self, model: Any, settings: Any) -> None: ...


VIEWS: dict[str, View] = {
    "Generated text": generation,
    "Summary": summary,
    "Attention": attention,
    "Head roles": roles,
    "Embeddings": embeddings,
    "Weights": AnalysisView(
        "weights",
        "gpt2atlas.analysis.weights",
        per_prompt=False,
        pickers=pickers.weight,
        preferred=("heatmap", "model_summary", "architecture_3d"),
    ),
    "Residual": AnalysisView(
        "residual",
        "gpt2atlas.analysis.residual",
        preferred=("norm_growth", "outlier_dims", "token_layer_norms"),
    ),
    "Journey": AnalysisView(
        "journey",
        "gpt2atlas.analysis.journey",
        options=(("projections", ("pca",)),),
        pickers=pickers.token,
        preferred=("logit_lens", "rank_kl", "cosines", "trajectory"),
    ),
    "Saliency": AnalysisView(
        "saliency",
        "gpt2atlas.analysis.saliency",
        pickers=pickers.target,
        preferred=("tokens_coloured", "scores_bar"),
    ),
    "Neurons": AnalysisView(
        "neurons",
        "gpt2atlas.analysis.neurons",
        pickers=pickers.neuron,
        preferred=("neuron_key_value", "tokens_by_neurons", "tokens_by_layers", "fraction_active"),
    ),
    "LayerNorm": AnalysisView(
        "layernorm",
        "gpt2atlas.analysis.layernorm",
        options=(("superposition_steps", 30),),
        pickers=pickers.layernorm,
        preferred=("steps_3d", "toy_3d", "gamma_per_dim", "gamma_vs_position", "gelu", "superposition"),
    ),
    "Geometry": AnalysisView(
        "geometry",
        "gpt2atlas.geometry.analysis",
        per_prompt=False,
        on_demand=True,
        options=(("max_texts", 100),),
        note="measuring the intrinsic dimension of every layer on 100 texts (about a minute on GPT-2 small) ...",
    ),
    "How it learned": learning,
}
