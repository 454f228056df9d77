"""GPT-2 hyper-parameters: the presets of the released sizes, and how to read them from a checkpoint."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from gpt2atlas.errors import CheckpointError


@dataclass(frozen=True)
class GPT2Config:
    """Shape of a GPT-2: every size differs only in these numbers."""

    n_layer: int = 12
    n_head: int = 12
    d_model: int = 768
    n_ctx: int = 1024
    d_vocab: int = 50257
    layer_norm_eps: float = 1e-5
    d_mlp: int = 0  # 0: 4 * d_model (a checkpoint may say otherwise)
    # Two options of the Stanford CRFM (Mistral) GPT-2 runs: attention scores also divided by (layer index + 1),
    # and attention scores and softmax computed in float32 whatever the model's dtype.
    scale_attn_by_inverse_layer_idx: bool = False
    reorder_and_upcast_attn: bool = False

    def __post_init__(self) -> None:
        if not self.d_mlp:
            object.__setattr__(self, "d_mlp", 4 * self.d_model)
        if self.d_model % self.n_head:
            raise CheckpointError(f"d_model={self.d_model} is not divisible by n_head={self.n_head}")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_head

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "d_head": self.d_head}

    @classmethod
    def from_hf_dict(cls, hf: Mapping[str, Any]) -> GPT2Config:
        """Read a Hugging Face `config.json` of a GPT-2 model.

        Options that change the forward pass and that this model does not implement are refused, so a checkpoint
        never loads into silently different logits.
        """
        model_type = hf.get("model_type", "gpt2")
        if model_type != "gpt2":
            raise CheckpointError(f"config.json describes a '{model_type}' model, not GPT-2")
        for option, supported, meaning in _FORWARD_OPTIONS:
            value = hf.get(option, supported[0])
            if value not in supported:
                raise CheckpointError(
                    f"config.json sets {option}={value!r} ({meaning}); gpt2atlas's GPT-2 "
                    f"supports only {' or '.join(repr(v) for v in supported)}"
                )
        try:
            d_model = int(hf["n_embd"])
            return cls(
                n_layer=int(hf["n_layer"]),
                n_head=int(hf["n_head"]),
                d_model=d_model,
                n_ctx=int(hf.get("n_positions", hf.get("n_ctx", 1024))),
                d_vocab=int(hf.get("vocab_size", 50257)),
                layer_norm_eps=float(hf.get("layer_norm_epsilon", 1e-5)),
                d_mlp=int(hf.get("n_inner") or 4 * d_model),
                scale_attn_by_inverse_layer_idx=bool(hf.get("scale_attn_by_inverse_layer_idx", False)),
                reorder_and_upcast_attn=bool(hf.get("reorder_and_upcast_attn", False)),
            )
        except KeyError as missing:
            raise CheckpointError(f"config.json lacks the GPT-2 field {missing}") from None


# config.json options of transformers' GPT-2 that would change the logits: (name, values we implement (the first
# is transformers' default), what the option does).
_FORWARD_OPTIONS: tuple[tuple[str, tuple[Any, ...], str], ...] = (
    ("activation_function", ("gelu_new", "gelu_pytorch_tanh"), "the MLP's non-linearity"),
    ("scale_attn_weights", (True,), "whether attention scores are divided by sqrt(d_head)"),
    ("add_cross_attention", (False,), "cross-attention layers of an encoder-decoder"),
    ("tie_word_embeddings", (True,), "whether the unembedding is the token embedding"),
)


# The released OpenAI checkpoints (and DistilGPT2, distilled from gpt2).
PRESETS: dict[str, GPT2Config] = {
    "gpt2": GPT2Config(n_layer=12, n_head=12, d_model=768),
    "gpt2-medium": GPT2Config(n_layer=24, n_head=16, d_model=1024),
    "gpt2-large": GPT2Config(n_layer=36, n_head=20, d_model=1280),
    "gpt2-xl": GPT2Config(n_layer=48, n_head=25, d_model=1600),
    "distilgpt2": GPT2Config(n_layer=6, n_head=12, d_model=768),
}

# Hub repositories of the presets (the bare names are aliases kept by the hub).
HUB_REPOS: dict[str, str] = {
    "gpt2": "openai-community/gpt2",
    "gpt2-medium": "openai-community/gpt2-medium",
    "gpt2-large": "openai-community/gpt2-large",
    "gpt2-xl": "openai-community/gpt2-xl",
    "distilgpt2": "distilbert/distilgpt2",
}
