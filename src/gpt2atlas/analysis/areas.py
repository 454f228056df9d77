"""The analysis areas, each declared once: the report's sections, the dashboard's views, `gpt2atlas layers` and the
readings contract test are all made from this list.

An area is an analysis module with `analyze(model, [prompt], **options)`; its figures come from
`viz.figures.figures_of(result)` and its reading from `viz.readings.read(area.key, findings)`. What differs per
consumer (the report's options, the dashboard's pickers, the command line's flags) stays with the consumer, keyed
by `Area.key`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Area:
    """One analysis area."""

    key: str  # the findings' area name, the report section's id and the command's name
    title: str  # the report section's title
    label: str  # the dashboard view's name
    about: str  # what it shows, in a line
    module: str  # the analysis module
    figures: tuple[str, ...]  # the figures shown first, in this order
    shown: int | None = None  # how many figures the report keeps (default: as many as `figures` names)
    per_prompt: bool = True  # analysed per prompt (else once per model)
    inside_layers: bool = False  # one of the inside-the-layers areas that `gpt2atlas layers` runs together
    slow: bool = False  # the dashboard runs it only when asked

    @property
    def report_figures(self) -> int:
        return self.shown if self.shown is not None else len(self.figures)


AREAS: tuple[Area, ...] = (
    Area(
        "embeddings",
        "Token and position embeddings",
        "Embeddings",
        "offset dims, position curves, projections, nearest neighbours",
        "gpt2atlas.analysis.embeddings",
        (
            "dim_stats",
            "token_dim_means",
            "position_curves",
            "position_pca_3d",
            "pca_global_local",
            "tokens_umap_2d",
            "tokens_tsne_2d",
            "tokens_pca_2d",
            "joint_pca_3d",
        ),
        shown=7,  # of the token maps, only those asked for exist
    ),
    Area(
        "weights",
        "Weights",
        "Weights",
        "a weight block as a heat map with its value histogram",
        "gpt2atlas.analysis.weights",
        ("heatmap", "model_summary", "architecture_3d"),
        per_prompt=False,
    ),
    Area(
        "attention",
        "Attention and head roles",
        "Attention",
        "what each head attends to; previous-token, induction, duplicate and sink heads",
        "gpt2atlas.analysis.attention",
        ("head_scores", "head_pattern", "prompt_induction", "lines", "layer_heads", "sink_and_last_token"),
        inside_layers=True,
    ),
    Area(
        "neurons",
        "MLP neurons",
        "Neurons",
        "how many neurons fire, which fire for each token, what they write",
        "gpt2atlas.analysis.neurons",
        ("fraction_active", "tokens_by_neurons", "neuron_key_value", "tokens_by_layers"),
        inside_layers=True,
    ),
    Area(
        "layernorm",
        "LayerNorm geometry",
        "LayerNorm",
        "centring, scaling onto the sphere, the gain and the shift",
        "gpt2atlas.analysis.layernorm",
        ("steps_3d", "toy_3d", "gamma_per_dim", "gamma_vs_position", "superposition", "gelu"),
        shown=5,
        inside_layers=True,
    ),
    Area(
        "residual",
        "Residual stream and outlier dims",
        "Residual",
        "norm growth, attention and MLP contributions, massive dims",
        "gpt2atlas.analysis.residual",
        ("norm_growth", "outlier_dims", "token_layer_norms"),
        inside_layers=True,
    ),
    Area(
        "journey",
        "The token's journey (logit lens)",
        "Journey",
        "the prediction layer by layer",
        "gpt2atlas.analysis.journey",
        ("logit_lens", "rank_kl", "cosines", "trajectory"),
        inside_layers=True,
    ),
    Area(
        "saliency",
        "Saliency",
        "Saliency",
        "which input tokens drive the prediction",
        "gpt2atlas.analysis.saliency",
        ("tokens_coloured", "scores_bar"),
        inside_layers=True,
    ),
    Area(
        "geometry",
        "Geometry and intrinsic dimension",
        "Geometry",
        "intrinsic dimension layer by layer",
        "gpt2atlas.geometry.analysis",
        ("id_vs_layer", "id_vs_scale", "pca_components", "norm_anisotropy", "gram_log_volume"),
        per_prompt=False,
        slow=True,
    ),
)
AREA_KEYS = tuple(a.key for a in AREAS)
LAYER_AREAS = tuple(a.key for a in AREAS if a.inside_layers)
_BY_KEY = {a.key: a for a in AREAS}


def area(key: str) -> Area:
    """The area named `key` (KeyError for an unknown one)."""
    return _BY_KEY[key]
