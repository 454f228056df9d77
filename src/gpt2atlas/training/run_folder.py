"""A training run on disk: its config, metrics, log-spaced checkpoints and the state to resume from.

    DIR/run.json                  the TrainConfig and the token data's manifest
    DIR/metrics.jsonl             one line per logged step
    DIR/checkpoints/step-000000/  config.json + model.safetensors (Hugging Face layout) at steps 0, 1, 2, 4, 8, ...
                                  and the last; each also has training.json (step, tokens seen, losses)
    DIR/state/                    the latest resumable state: model.safetensors (float32) + trainer.pt
                                  (optimizer, step, RNG), itself a loadable checkpoint

Every file and folder is written beside its final place and renamed into it (gpt2atlas.atomic), so an
interrupted write never leaves a half-written checkpoint or state behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import gpt2atlas.atomic as atomic
from gpt2atlas.errors import InputError, check_output
from gpt2atlas.model.gpt2 import GPT2
from gpt2atlas.model.loading import save_checkpoint
from gpt2atlas.training.recipe import TrainConfig, learning_rate

RUN_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file. A torn last line (a run killed mid-write, before each line was written
    whole) is left out; a broken line before it is an InputError naming the file and the line."""
    if not os.path.isfile(path):
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError(line)
        except ValueError:
            if number == len(lines):  # no newline after it: the write that made it never finished
                break
            raise InputError(f"{path} line {number} is not a JSON record: {line[:60]!r}") from None
        records.append(record)
    return records


def is_checkpoint_step(step: int) -> bool:
    """Steps 0, 1, 2, 4, 8, ...: log-spaced, so early training, where most structure forms, is seen closely."""
    return step == 0 or step & (step - 1) == 0


@dataclass(frozen=True)
class Metrics:
    """One line of metrics.jsonl."""

    step: int
    tokens: int
    lr: float
    train_loss: float | None
    val_loss: float | None
    grad_norm: float | None
    tokens_per_s: float | None
    elapsed_s: float

    def to_json(self) -> str:
        return json.dumps(self.__dict__)


class RunFolder:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # ----- paths -----------------------------------------------------------------------------------------------
    @property
    def state_dir(self) -> Path:
        return self.path / "state"

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    def checkpoint_dir(self, step: int) -> Path:
        return self.checkpoints_dir / f"step-{step:06d}"

    def checkpoints(self) -> list[Path]:
        """The saved checkpoints, by step."""
        return sorted(self.checkpoints_dir.glob("step-*")) if os.path.isdir(self.checkpoints_dir) else []

    # ----- checks before anything is written -------------------------------------------------------------------
    def check_new(self, overwrite: bool) -> None:
        """A fresh run may use a missing or empty folder, or replace an earlier run with `overwrite`."""
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise InputError(f"out={self.path} is a file, not a folder: give a folder for the run", arguments=("out",))
        if os.path.isdir(self.path) and any(self.path.iterdir()):
            if not overwrite:
                raise InputError(
                    f"{self.path} already holds files: pass resume= to continue that run, or overwrite= to "
                    "start it again",
                    arguments=("resume", "overwrite"),
                )
            if not os.path.isfile(self.path / RUN_FILE):
                raise InputError(
                    f"overwrite= refuses to empty {self.path}: it is not a gpt2atlas training run (no {RUN_FILE})",
                    arguments=("overwrite",),
                )

    def check_writable(self) -> None:
        check_output(self.path, "out", folder=True)  # a name too long, a path under a file: one line, nothing made
        probe = self.path
        while not os.path.exists(probe):
            probe = probe.parent
        try:
            with tempfile.NamedTemporaryFile(dir=probe, prefix=".gpt2atlas-write-test-"):
                pass
        except OSError as err:
            raise InputError(
                f"out={self.path} cannot be written ({err.strerror or err}): give a folder you can write to",
                arguments=("out",),
            ) from None

    def start(self, config: TrainConfig, tokens_manifest: dict[str, Any], overwrite: bool) -> None:
        if overwrite and os.path.isdir(self.path):
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        record = {"config": config.to_dict(), "tokens": tokens_manifest}
        atomic.write_text(self.path / RUN_FILE, json.dumps(record, indent=1))

    def read_config(self) -> TrainConfig:
        path = self.path / RUN_FILE
        if not os.path.isfile(path):
            raise InputError(
                f"out={self.path}: not a gpt2atlas training run to resume (no {RUN_FILE})", arguments=("out",)
            )
        if not os.path.isfile(self.state_dir / "trainer.pt"):
            raise InputError(
                f"out={self.path}: the run has no saved state to resume from ({self.state_dir})", arguments=("out",)
            )
        return TrainConfig.from_dict(json.loads(path.read_text())["config"])

    def update_config(self, config: TrainConfig) -> None:
        path = self.path / RUN_FILE
        record = json.loads(path.read_text())
        record["config"] = config.to_dict()
        atomic.write_text(path, json.dumps(record, indent=1))

    # ----- metrics ---------------------------------------------------------------------------------------------
    def append_metrics(self, metrics: Metrics) -> None:
        """One whole line per record: a single append write, flushed to disk before training goes on."""
        line = (metrics.to_json() + "\n").encode()
        fd = os.open(self.metrics_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, line)
            while written < len(line):  # a short write (a full disk): finish it, or fail with what the OS says
                written += os.write(fd, line[written:])
            os.fsync(fd)
        finally:
            os.close(fd)

    def read_metrics(self) -> list[Metrics]:
        """The metrics so far, a torn last line (a run killed mid-write) left out; `truncate_metrics` drops it."""
        return [Metrics(**record) for record in read_lines(self.metrics_path)]

    def truncate_metrics(self, last_step: int) -> None:
        """Drop lines written after the state being resumed (the run went on past its last save)."""
        kept = [m for m in self.read_metrics() if m.step <= last_step]
        atomic.write_text(self.metrics_path, "".join(m.to_json() + "\n" for m in kept))

    # ----- weights and state -----------------------------------------------------------------------------------
    def save_checkpoint(self, model: GPT2, step: int, info: dict[str, Any]) -> Path:
        final = self.checkpoint_dir(step)
        with atomic.replacing_folder(final) as staging:
            save_checkpoint(model, staging)
            atomic.write_text(staging / "training.json", json.dumps({"step": step, **info}, indent=1))
        return final

    def save_state(self, model: GPT2, optimizer: torch.optim.Optimizer, step: int, config: TrainConfig) -> None:
        """Weights, optimizer and RNG at `step`. The schedule and the data position follow from the step (the
        learning rate and the windows seen are recorded too, for the reader)."""
        with atomic.replacing_folder(self.state_dir) as staging:
            save_checkpoint(model, staging)
            with atomic.replacing(staging / "trainer.pt") as tmp:
                torch.save(
                    {
                        "step": step,
                        "optimizer": optimizer.state_dict(),
                        "torch_rng": torch.get_rng_state(),
                        "next_lr": learning_rate(config, step),
                        "windows_seen": step * config.batch_sequences,
                    },
                    tmp,
                )

    def load_state(self, model: GPT2, optimizer: torch.optim.Optimizer) -> int:
        """Restore the weights, optimizer and RNG saved in state/; returns the step they belong to."""
        from gpt2atlas.model.loading import load_model

        saved = load_model(self.state_dir, device=model.device)
        if saved.cfg != model.cfg:
            raise InputError(f"the saved state in {self.state_dir} has another shape than {RUN_FILE} says")
        with torch.no_grad():
            for mine, theirs in zip(model.parameters(), saved.parameters(), strict=True):
                mine.copy_(theirs)
        trainer = torch.load(self.state_dir / "trainer.pt", map_location=model.device, weights_only=True)
        optimizer.load_state_dict(trainer["optimizer"])
        torch.set_rng_state(trainer["torch_rng"].cpu())
        return int(trainer["step"])
