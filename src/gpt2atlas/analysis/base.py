"""What every analysis returns: plain-number findings, named figures, and a way to save both."""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch

from gpt2atlas.errors import InputError
from gpt2atlas.viz.export import save_figures


def to_jsonable(value: Any) -> Any:
    """Numbers, tensors and arrays as plain JSON values (NaN/inf become None)."""
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
        return None
    return value


def check_index(value: int | None, count: int, what: str, scope: str = "this model") -> None:
    """Raise InputError unless `value` is None or in 0..count-1 (e.g. a layer, head or neuron number)."""
    if value is not None and not 0 <= value < count:
        raise InputError(f"{what} {value} is out of range: {scope} has {count} {what}s (0..{count - 1})")


class AnalysisResult:
    """Base of every analysis's result. Subclasses set `area`, fill `findings`, and build `figures()`."""

    area: str = "analysis"

    def __init__(self, findings: dict[str, Any]) -> None:
        self.findings = findings

    def figures(self) -> dict[str, go.Figure]:
        """Named plotly figures (names become file names)."""
        return {}

    def to_json(self) -> str:
        return json.dumps(to_jsonable(self.findings), indent=2)

    def save(self, out_dir: str | Path, *, png: bool = True) -> Path:
        """Write `out_dir/<area>/findings.json` and every figure (HTML + PNG), atomically.

        Everything is written into a temporary folder first, then moved into place, so an error or Ctrl-C
        never leaves a half-written result folder.
        """
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        final = out_dir / self.area
        staging = Path(tempfile.mkdtemp(prefix=f".{self.area}-", dir=out_dir))
        try:
            (staging / "findings.json").write_text(self.to_json())
            save_figures(self.figures(), staging, png=png)
            if final.exists():
                shutil.rmtree(final)
            staging.rename(final)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return final


def vocab_strings(model) -> list[str]:
    """The string of every token id the model has (cfg.d_vocab of them): the tokenizer's 50,257, then `<id>` for
    the rows a padded vocabulary adds (nanoGPT pads to 50,304), which no text ever produces."""
    vocab = model.tokenizer.vocab
    return vocab[: model.cfg.d_vocab] + [f"<{i}>" for i in range(len(vocab), model.cfg.d_vocab)]
