"""What every analysis returns: typed findings (frozen dataclasses), the arrays its figures need, and one way to
turn any findings into JSON."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

import numpy as np
import torch

from gpt2atlas.errors import InputError

OMIT_WHEN_NONE = "gpt2atlas.omit_when_none"
FLATTEN = "gpt2atlas.flatten"
FLATTENED = {FLATTEN: True}  # `x: Part = field(metadata=FLATTENED)`: Part's fields are written in x's place
# (none of them while x is None)


def optional(default: Any = None) -> Any:
    """A findings field that is left out of the JSON while it is None (a key only some runs write)."""
    return dataclasses.field(default=default, metadata={OMIT_WHEN_NONE: True})


def _fields_jsonable(value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(value):
        item = getattr(value, f.name)
        if f.metadata.get(FLATTEN):
            out.update({} if item is None else _fields_jsonable(item))
        elif not (f.metadata.get(OMIT_WHEN_NONE) and item is None):
            out[f.name] = to_jsonable(item)
    return out


# how a non-finite float is written in findings.json (JSON has no NaN or inf; null is a field with no number)
NON_FINITE_MARKS = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def non_finite_mark(value: float) -> str:
    """The string that stands for a NaN or an infinity in findings.json: "NaN", "Infinity" or "-Infinity"."""
    return NON_FINITE_MARKS["nan" if math.isnan(value) else "inf" if value > 0 else "-inf"]


def to_jsonable(value: Any) -> Any:
    """Findings as plain JSON values: a dataclass becomes an object of its fields (an `optional()` field that is
    None is left out, a FLATTENED one gives its own fields), tensors and arrays become lists, and a NaN or an
    infinity becomes its mark, the string "NaN", "Infinity" or "-Infinity" (never null)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _fields_jsonable(value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return to_jsonable(value.detach().cpu().tolist())
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return non_finite_mark(value)
    return value


def check_index(value: int | None, count: int, what: str, scope: str = "this model") -> None:
    """Raise InputError unless `value` is None or in 0..count-1 (e.g. a layer, head or neuron number)."""
    if value is not None and not 0 <= value < count:
        raise InputError(
            f"{what}={value} is out of range: {scope} has {count} {what}s (0..{count - 1})", arguments=(what,)
        )


F = TypeVar("F")


class AnalysisResult(Generic[F]):
    """Base of every analysis's result: its typed `findings` plus the arrays the figures need; viz draws them."""

    area: str = "analysis"

    def __init__(self, findings: F) -> None:
        self.findings = findings

    def to_json(self) -> str:
        return json.dumps(to_jsonable(self.findings), indent=2)


def vocab_strings(model) -> list[str]:
    """The string of every token id the model has (cfg.d_vocab of them): the tokenizer's 50,257, then `<id>` for
    the rows a padded vocabulary adds (nanoGPT pads to 50,304), which no text ever produces."""
    vocab = model.tokenizer.vocab
    return vocab[: model.cfg.d_vocab] + [f"<{i}>" for i in range(len(vocab), model.cfg.d_vocab)]


DEFAULT_PROMPT = (
    "The old lighthouse keeper climbed the spiral stairs every evening to light the lamp. One stormy night in "
    "November, when the waves were higher than the rocks, he saw a small boat drifting towards the cliffs, and he"
)


class AreaUnavailable(Exception):
    """What a section needs is not at hand (an optional extra, a training history, a corrupted prompt)."""


ProgressCallback = Callable[[str, int, int], None]  # (stage, done, total): long analyses report as they go
