"""GPT-2 hyper-parameters: the presets of the released sizes, and how to read them from a checkpoint."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from gpt2atlas.errors import CheckpointError, InputError


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
        """Refuse a shape that cannot be built, before anything is allocated: one line naming the field."""
        for field in fields(self):
            value = getattr(self, field.name)
            problem = field_problem(field.name, value)
            if problem:
                raise InputError(f"{field.name}={value!r} {problem}", arguments=(field.name,))
        if not self.d_mlp:
            object.__setattr__(self, "d_mlp", 4 * self.d_model)
        if self.d_model % self.n_head:
            raise InputError(
                f"d_model={self.d_model} is not divisible by n_head={self.n_head}: d_model must be a multiple of "
                "n_head (each head gets d_model / n_head dimensions)",
                arguments=("d_model", "n_head"),
            )

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_head

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "d_head": self.d_head}

    @classmethod
    def from_hf_dict(cls, hf: Mapping[str, Any], source: str = "config.json") -> GPT2Config:
        """Read a Hugging Face `config.json` of a GPT-2 model (`source`: where it was read, for the messages).

        Options that change the forward pass and that this model does not implement are refused, so a checkpoint
        never loads into silently different logits; a value that cannot shape a GPT-2 is refused naming its key.
        """
        if not isinstance(hf, Mapping):
            raise CheckpointError(f"{source} holds a {type(hf).__name__}, not a JSON object of GPT-2 settings")
        model_type = hf.get("model_type", "gpt2")
        if model_type != "gpt2":
            raise CheckpointError(f"{source} describes a '{model_type}' model, not GPT-2")
        for option, supported, meaning in _FORWARD_OPTIONS:
            value = hf.get(option, supported[0])
            if value not in supported:
                raise CheckpointError(
                    f"{source} sets {option}={value!r} ({meaning}); gpt2atlas's GPT-2 "
                    f"supports only {' or '.join(repr(v) for v in supported)}"
                )
        missing = [key for key in ("n_layer", "n_head", "n_embd") if key not in hf]
        if missing:
            raise CheckpointError(f"{source} lacks the GPT-2 field '{missing[0]}'")
        values = {ours: hf.get(key, default) for ours, (key, default) in _HF_KEYS.items()}
        values["n_ctx"] = hf.get("n_positions", hf.get("n_ctx", 1024))
        values["d_mlp"] = values["d_mlp"] or 0  # null or 0: 4 x d_model
        for ours, value in values.items():
            problem = field_problem(ours, value)
            if problem:
                key = _HF_KEYS[ours][0] if ours != "n_ctx" else "n_positions" if "n_positions" in hf else "n_ctx"
                raise CheckpointError(f"{source} sets {key}={value!r}: GPT-2's {ours} {problem}")
        try:
            return cls(**values)
        except InputError as err:  # d_model not divisible by n_head
            raise CheckpointError(f"{source}: {err} (n_embd is d_model)") from None


_WHOLE = ("n_layer", "n_head", "d_model", "n_ctx", "d_vocab")


def field_problem(name: str, value: Any) -> str | None:
    """What is wrong with `value` for the config field `name` ("must be ..."), or None if it fits."""
    if name in _WHOLE or name == "d_mlp":
        least = 0 if name == "d_mlp" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            return f"must be a whole number >= {least}" + (" (0: 4 x d_model)" if name == "d_mlp" else "")
    elif name == "layer_norm_eps":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
            return "must be a finite number > 0"
    elif not isinstance(value, bool):
        return "must be true or false"
    return None


# config.json keys of our fields, with transformers' defaults
_HF_KEYS: dict[str, tuple[str, Any]] = {
    "n_layer": ("n_layer", None),
    "n_head": ("n_head", None),
    "d_model": ("n_embd", None),
    "n_ctx": ("n_positions", 1024),
    "d_vocab": ("vocab_size", 50257),
    "layer_norm_eps": ("layer_norm_epsilon", 1e-5),
    "d_mlp": ("n_inner", None),
    "scale_attn_by_inverse_layer_idx": ("scale_attn_by_inverse_layer_idx", False),
    "reorder_and_upcast_attn": ("reorder_and_upcast_attn", False),
}


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
