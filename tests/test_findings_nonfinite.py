"""A NaN or an infinity in findings is written as a mark a reader can see ("NaN", "Infinity", "-Infinity"), not
as null, and findings.json stays strict JSON."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import torch

from conftest import random_model
from gpt2atlas.analysis.base import optional, to_jsonable
from gpt2atlas.cli.main import main
from gpt2atlas.model import save_checkpoint


@dataclass(frozen=True)
class Planted:
    nan: float
    inf: float
    minus_inf: float
    fine: float
    absent: float | None
    row: list[float]
    left_out: float | None = optional()


def test_a_planted_nan_is_marked_not_nulled():
    found = Planted(math.nan, math.inf, -math.inf, 1.5, None, [0.0, math.nan])
    text = json.dumps(to_jsonable(found), allow_nan=False)  # strict JSON: no bare NaN/Infinity tokens
    assert json.loads(text) == {
        "nan": "NaN",
        "inf": "Infinity",
        "minus_inf": "-Infinity",
        "fine": 1.5,
        "absent": None,  # null keeps meaning "not defined here"
        "row": [0.0, "NaN"],
    }


def test_numpy_and_torch_non_finite_values_get_the_same_marks():
    import numpy as np

    assert to_jsonable(np.array([np.nan, np.inf, -np.inf])) == ["NaN", "Infinity", "-Infinity"]
    assert to_jsonable(torch.tensor([float("nan"), 2.0])) == ["NaN", 2.0]
    assert to_jsonable(np.float32("nan")) == "NaN"


def test_a_model_with_a_planted_nan_writes_the_mark_to_findings_json(tmp_path):
    model = random_model()  # 2 layers, 4 heads of 16 dims
    with torch.no_grad():
        model.blocks[1].attn.W_QKV[:, 3 * 16] = float("nan")  # one query column of layer 1, head 3
    folder = save_checkpoint(model, tmp_path / "planted")
    prompt = "The cat sat on the mat. The cat sat on the mat."
    out = tmp_path / "out"
    assert main(["attention", "--model", str(folder), "--prompt", prompt, "--out", str(out), "--no-png"]) == 0
    heads = json.loads((out / "attention" / "findings.json").read_text())["heads"]
    by_head = {(h["layer"], h["head"]): h for h in heads}
    assert by_head[(1, 3)]["entropy"] == "NaN" and by_head[(1, 3)]["induction"] == "NaN"
    assert all(isinstance(h["entropy"], float) for key, h in by_head.items() if key != (1, 3))
