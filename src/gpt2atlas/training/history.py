"""A training history: the checkpoints of a run (or of the shipped model, or of hub revisions) over time.

Three sources give the same `TrainingHistory`:
- a run folder of `gpt2atlas train` (every checkpoint, full precision);
- the shipped `mini` model's `history/` folder: the initial weights (regenerated from the recipe's seed and
  checked against a sha256), one midway checkpoint (token embedding as int8 rows with a scale per row), the
  final weights, the position-embedding table of every checkpoint and the whole metrics history;
- a hub model at several revisions (the Stanford CRFM runs publish their checkpoints as branches).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch

from gpt2atlas.errors import CheckpointError, InputError
from gpt2atlas.model.config import GPT2Config
from gpt2atlas.model.gpt2 import GPT2
from gpt2atlas.shipped import (
    HISTORY,
    INIT_FILE,
    METRICS_FILE,
    POSITIONS_FILE,
    PROBES_FILE,
    RUN_FILE,
    SHIPPED_MODELS,
    shipped_folder,
)
from gpt2atlas.training.recipe import TrainConfig, initial_model
from gpt2atlas.training.run_folder import read_lines

PROBE_TOKENS = 2000  # head-score probes are drawn from this many of the most frequent training tokens
WTE = "transformer.wte.weight"
WPE = "transformer.wpe.weight"


@dataclass(frozen=True)
class Snapshot:
    """One checkpoint whose whole model can be loaded."""

    step: int
    tokens: int | None
    label: str
    load: Callable[[], GPT2] = field(repr=False, compare=False)


@dataclass(frozen=True)
class LossPoint:
    step: int
    tokens: int
    train_loss: float | None
    val_loss: float | None


@dataclass(frozen=True)
class TrainingHistory:
    """What is known of a model over its training, oldest first."""

    name: str
    snapshots: list[Snapshot]
    positions: list[tuple[int, int | None, torch.Tensor]]  # (step, tokens, W_pos) of every checkpoint
    losses: list[LossPoint]
    probe_ids: list[int] | None  # tokens frequent in the training data (None: unknown)
    note: str = ""


# ----- the initial weights and the int8 rows ---------------------------------------------------------------------
def init_sha256(model: GPT2) -> str:
    """A hash of a model's float32 weights (names and values), to check a regenerated initialisation."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().contiguous().numpy().tobytes())
    return digest.hexdigest()


def quantize_rows(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """int8 rows and a float16 scale per row (row = scale * int8), rounding to the nearest step."""
    scale = (matrix.float().abs().amax(dim=1) / 127).clamp_min(1e-12).half()
    rows = torch.round(matrix.float() / scale.float()[:, None]).clamp(-127, 127).to(torch.int8)
    return rows, scale


def dequantize_rows(rows: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return rows.float() * scale.float()[:, None]


# ----- sources ---------------------------------------------------------------------------------------------------
def history_of_run(run: str | Path) -> TrainingHistory:
    """Every checkpoint of a `gpt2atlas train` run folder."""
    from gpt2atlas.model.loading import load_model, read_position_embedding

    folder = Path(run)
    if not os.path.isfile(folder / RUN_FILE):
        raise InputError(
            f"run={folder} is not a gpt2atlas training run: give the folder of a `gpt2atlas train` run "
            f"(it holds {RUN_FILE})",
            arguments=("run",),
        )
    record = json.loads((folder / RUN_FILE).read_text())
    checkpoints = sorted((folder / "checkpoints").glob("step-*")) if os.path.isdir(folder / "checkpoints") else []
    if not checkpoints:
        raise InputError(
            f"run={folder} has no checkpoints yet: give a run that has saved at least step 0", arguments=("run",)
        )
    snapshots: list[Snapshot] = []
    positions: list[tuple[int, int | None, torch.Tensor]] = []
    for path in checkpoints:
        step = int(path.name.split("-")[1])
        info = json.loads((path / "training.json").read_text()) if os.path.isfile(path / "training.json") else {}
        tokens = info.get("tokens")
        snapshots.append(Snapshot(step, tokens, f"step {step:,}", partial(load_model, path)))
        positions.append((step, tokens, read_position_embedding(path)))
    return TrainingHistory(str(folder), snapshots, positions, _losses(folder / METRICS_FILE), _probe_ids_of_run(record))


def history_of_shipped(name: str) -> TrainingHistory:
    """The shipped model's history (see the module docstring for what it holds)."""
    from safetensors.torch import load_file

    from gpt2atlas.model.loading import load_model

    root = shipped_folder(name)
    if root is None:
        raise InputError(
            f"model={name!r} is not a shipped model: the shipped ones are {', '.join(SHIPPED_MODELS)}",
            arguments=("model",),
        )
    history = root / HISTORY
    run = json.loads((history / RUN_FILE).read_text())
    phases = run["phases"]
    config = TrainConfig.from_dict(phases[0]["config"])
    batch = config.batch_tokens
    last_step = sum(phase["steps"] for phase in phases)
    init = json.loads((history / INIT_FILE).read_text())
    midway = int(run["midway_step"])

    def load_initial() -> GPT2:
        model = initial_model(config)
        if init_sha256(model) != init["sha256"]:
            raise CheckpointError(
                "the initial weights regenerated from the recipe's seed do not match the recorded "
                "hash (another PyTorch random-number generator?)"
            )
        model.source = f"{name} at initialisation (seed {config.seed})"
        return model.eval().requires_grad_(False)

    def load_midway() -> GPT2:
        tensors = load_file(str(history / f"step-{midway:06d}.safetensors"))
        tensors[WTE] = dequantize_rows(tensors.pop(f"{WTE}.int8"), tensors.pop(f"{WTE}.scale"))
        model = _model_from_hf_tensors(tensors, config.model_config)
        model.source = f"{name} at step {midway:,} (token embedding stored as int8 rows)"
        return model

    snapshots = [
        Snapshot(0, 0, "initialisation", load_initial),
        Snapshot(midway, midway * batch, f"step {midway:,}", load_midway),
        Snapshot(last_step, last_step * batch, f"step {last_step:,} (final)", lambda: load_model(name)),
    ]
    positions: list[tuple[int, int | None, torch.Tensor]] = [
        (int(key.split("-")[1]), int(key.split("-")[1]) * batch, table.float())
        for key, table in sorted(load_file(str(history / POSITIONS_FILE)).items())
    ]
    probes = json.loads((history / PROBES_FILE).read_text())["ids"]
    note = (
        f"the shipped model '{name}' keeps its initial, midway and final weights (and the position "
        f"embeddings of all {len(positions)} checkpoints), so its head scores are measured at those three; "
        "a run folder of gpt2atlas train has every checkpoint"
    )
    return TrainingHistory(name, snapshots, positions, _losses(history / METRICS_FILE), probes, note)


def history_of_revisions(model: str, revisions: list[str]) -> TrainingHistory:
    """A hub model at each of `revisions` (steps read from names such as checkpoint-10000)."""
    from gpt2atlas.model.loading import load_model, read_position_embedding

    if not revisions:
        raise InputError(
            "revisions=[] names no checkpoint: give one or more, e.g. revisions=checkpoint-0,checkpoint-10000",
            arguments=("revisions",),
        )
    snapshots: list[Snapshot] = []
    positions: list[tuple[int, int | None, torch.Tensor]] = []
    for index, revision in enumerate(revisions):
        digits = re.findall(r"\d+", revision)
        step = int(digits[-1]) if digits else index
        snapshot = Snapshot(step, None, revision, partial(load_model, model, revision=revision))
        snapshots.append(snapshot)
    snapshots.sort(key=lambda s: s.step)
    for snapshot in snapshots:  # a revision's label is its name
        positions.append((snapshot.step, None, read_position_embedding(model, revision=snapshot.label)))
    return TrainingHistory(model, snapshots, positions, [], None, "hub revisions: no loss history")


# ----- helpers ---------------------------------------------------------------------------------------------------
def _losses(path: Path) -> list[LossPoint]:
    if not os.path.isfile(path):
        return []
    rows = read_lines(path)  # a run killed mid-line leaves a torn last line: left out
    return [LossPoint(r["step"], r["tokens"], r.get("train_loss"), r.get("val_loss")) for r in rows]


def _probe_ids_of_run(run: dict) -> list[int] | None:
    """The tokens most frequent in a run's training split, if its tokens are still cached."""
    from gpt2atlas.training.data import frequent_tokens, prepare_tokens

    config = TrainConfig.from_dict(run["config"])
    try:
        tokens = prepare_tokens(config.data, val_fraction=config.val_fraction, progress=False)
    except InputError:
        return None
    return frequent_tokens(tokens.train, PROBE_TOKENS)[0]


def _model_from_hf_tensors(tensors: dict[str, torch.Tensor], cfg: GPT2Config) -> GPT2:
    """A model of shape `cfg` holding Hugging Face-named `tensors`."""
    from gpt2atlas.model.loading import our_name

    model = GPT2(cfg)
    state = {our_name(name): tensor.float() for name, tensor in tensors.items()}
    model.load_state_dict(state, strict=True)  # type: ignore[arg-type]
    return model.eval().requires_grad_(False)
