"""The analysis areas, each declared once: the command line's area commands, `gpt2atlas layers`, the report's
sections, the dashboard's views and the readings contract test are all made from this list.

An area is an analysis module with `analyze(model, [prompt], **options)`; its `knobs` are the options a user may
set, with their help (defaults come from `analyze`'s own signature). Its figures come from
`viz.figures.figures_of(result)` and its reading from `viz.readings.read(area.key, findings)`. What only one
consumer needs (the report's settings, the dashboard's pickers) stays with that consumer, keyed by `Area.key`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gpt2atlas.errors import InputError


@dataclass(frozen=True)
class Knob:
    """One option of an area's analysis: `analyze`'s keyword `name`, as the command line offers it."""

    name: str
    help: str
    kind: type = int  # int, float, str or bool; a None default in `analyze` makes it optional
    flags: tuple[str, ...] = ()  # the command line's flags (default: --name-with-dashes)
    listed: bool = False  # comma-separated on the command line, a tuple for the analysis
    repeated: bool = False  # given once per value on the command line, a list for the analysis
    parse: Callable[[str], Any] | None = None  # each value from its text (raises InputError naming `name`)

    @property
    def flag(self) -> str:
        """The long flag, e.g. --sample-size (for a --x/--no-x pair, the first)."""
        return self.flags[0].split("/")[0] if self.flags else "--" + self.name.replace("_", "-")


def dim_pair(text: str) -> tuple[int, int]:
    """'87:138' as (87, 138)."""
    try:
        a, b = (int(part) for part in text.split(":"))
    except ValueError:
        raise InputError(f"dim_pairs={text!r} must look like 87:138", arguments=("dim_pairs",)) from None
    return a, b


LAYER_OF_PICTURE = "layer to show (default: chosen by score)"
INCLUDE_FIRST = Knob(
    "include_first",
    "let position 0 (massive activations) into the statistics",
    bool,
    ("--include-first/--exclude-first",),
)


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
    command: str = ""  # the command's help
    prompt: str = "required"  # the command's --prompt: "required", "optional" (then `prompt_help` says why) or "none"
    prompt_help: str = "the text to analyse"
    knobs: tuple[Knob, ...] = ()

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
        command="Token and position embeddings: offset dims, norms, PCA, periodicity, smoothness, neighbours, "
        "projections.",
        prompt="optional",
        prompt_help="text whose tokens get nearest neighbours and labels (default: a few words)",
        knobs=(
            Knob("projections", "comma-separated projections of the token sample: pca, tsne, umap", str, listed=True),
            Knob("sample_size", "tokens in the PCA and dimension-pair scatters"),
            Knob("manifold_size", "tokens embedded by t-SNE and UMAP (the sample's first)"),
            Knob(
                "dim_pairs",
                "two dims to scatter tokens and positions in, e.g. 87:138 (repeatable)",
                str,
                ("--dim-pair",),
                repeated=True,
                parse=dim_pair,
            ),
            Knob("seed", "seed of the token sample, t-SNE and UMAP"),
        ),
    ),
    Area(
        "weights",
        "Weights",
        "Weights",
        "a weight block as a heat map with its value histogram",
        "gpt2atlas.analysis.weights",
        ("heatmap", "model_summary", "architecture_3d"),
        per_prompt=False,
        command="A weight tensor (or a block of it) as a heat map with its histogram; the model summary and 3D view.",
        prompt="none",
        knobs=(
            Knob(
                "param",
                "weight to show, ours (blocks.0.attn.W_QKV) or Hugging Face's (h.0.attn.c_attn.weight); omit for "
                "only the model summary and 3D architecture",
                str,
            ),
            Knob("rows", "row range a:b (default: all)", str),
            Knob("cols", "column range a:b (default: all)", str),
        ),
    ),
    Area(
        "attention",
        "Attention and head roles",
        "Attention",
        "what each head attends to; previous-token, induction, duplicate and sink heads",
        "gpt2atlas.analysis.attention",
        ("head_scores", "head_pattern", "prompt_induction", "lines", "layer_heads", "sink_and_last_token"),
        inside_layers=True,
        command="Score every attention head (previous-token, BOS, entropy, self, induction, duplicate) and name roles.",
        knobs=(
            Knob("layer", LAYER_OF_PICTURE, flags=("--layer", "-l")),
            Knob("head", "head to show (default: top previous-token head)"),
            Knob("prepend_bos", "put <|endoftext|> before the prompt", bool, ("--prepend-bos",)),
            Knob("seed", "seed of the random sequences for the induction scores"),
        ),
    ),
    Area(
        "neurons",
        "MLP neurons",
        "Neurons",
        "how many neurons fire, which fire for each token, what they write",
        "gpt2atlas.analysis.neurons",
        ("fraction_active", "tokens_by_neurons", "neuron_key_value", "tokens_by_layers"),
        inside_layers=True,
        command="MLP neurons: share active per layer, top neurons per token, one neuron's keys and values.",
        knobs=(
            Knob("layer", LAYER_OF_PICTURE, flags=("--layer", "-l")),
            Knob("neuron", "neuron of --layer to explain", flags=("--neuron", "-n")),
            Knob(
                "extra_prompts",
                "more text to search for the neuron's top tokens (repeatable)",
                str,
                ("--extra-prompt",),
                repeated=True,
            ),
        ),
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
        command="LayerNorm geometry: centring, the sphere of radius sqrt(d), the gain and shift, for every LayerNorm.",
        knobs=(
            Knob(
                "layer",
                "block whose ln1 is drawn in 3D and whose MLP shows GELU (default: the middle one)",
                flags=("--layer", "-l"),
            ),
            INCLUDE_FIRST,
            Knob("seed", "seed of the 3D toy and the superposition toy"),
        ),
    ),
    Area(
        "residual",
        "Residual stream and outlier dims",
        "Residual",
        "norm growth, attention and MLP contributions, massive dims",
        "gpt2atlas.analysis.residual",
        ("norm_growth", "outlier_dims", "token_layer_norms"),
        inside_layers=True,
        command="Residual stream: norm growth, what attention and MLPs add, outlier (massive) dims.",
        knobs=(
            INCLUDE_FIRST,
            Knob("threshold", "outlier dim: peak |activation| at least this many x the median", float),
        ),
    ),
    Area(
        "journey",
        "The token's journey (logit lens)",
        "Journey",
        "the prediction layer by layer",
        "gpt2atlas.analysis.journey",
        ("logit_lens", "rank_kl", "cosines", "trajectory"),
        inside_layers=True,
        command="The token's journey: logit lens (top-k, rank, KL per layer), stream cosines, a token's trajectory.",
        knobs=(
            Knob("position", "token whose trajectory is drawn (default: the last; negative counts from the end)"),
            Knob("top_k", "guesses kept per layer and position"),
            INCLUDE_FIRST,
            Knob("projections", "trajectory maps: pca, umap or pca,umap", str, listed=True),
            Knob("seed", "seed of the UMAP token sample and layout"),
        ),
    ),
    Area(
        "saliency",
        "Saliency",
        "Saliency",
        "which input tokens drive the prediction",
        "gpt2atlas.analysis.saliency",
        ("tokens_coloured", "scores_bar"),
        inside_layers=True,
        command="Which prompt tokens drive the target's logit: gradient x input and integrated gradients.",
        knobs=(
            Knob(
                "target",
                "one token to explain, e.g. ' Paris' (default: the model's top next token)",
                str,
                ("--target", "-t"),
            ),
            Knob("steps", "integrated-gradients quadrature points"),
        ),
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
        command="Intrinsic dimension (TwoNN, GRIDE, PCA, participation ratio), norm and anisotropy of the hidden "
        "representations at every layer, for the last token of each text and for all tokens.",
        prompt="optional",
        prompt_help="text for the Gram-volume profile (default: the first text)",
        knobs=(
            Knob("max_texts", "at most this many texts (a seeded sample if there are more)"),
            Knob("max_tokens", "truncate each text to this many tokens"),
            Knob(
                "all_tokens_budget",
                "points in the all-tokens cloud (a uniform sample of all tokens)",
                flags=("--budget",),
            ),
            Knob(
                "substeps", "also measure inside each block (ln1, attn_out, resid_mid, mlp_out)", bool, ("--substeps",)
            ),
            Knob(
                "layer",
                "layer for the distance matrices and t-SNE, 0 to n_layer (default: the hidden layer where the "
                "last-token ID peaks)",
            ),
            Knob("include_first", "keep position 0 in the all-tokens cloud", bool, ("--include-first",)),
            Knob("seed", "seed for every random choice (sampling, bootstrap, t-SNE)"),
        ),
    ),
)
AREA_KEYS = tuple(a.key for a in AREAS)
LAYER_AREAS = tuple(a.key for a in AREAS if a.inside_layers)
_BY_KEY = {a.key: a for a in AREAS}


def area(key: str) -> Area:
    """The area named `key` (KeyError for an unknown one)."""
    return _BY_KEY[key]
