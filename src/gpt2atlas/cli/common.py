"""Options and helpers shared by the CLI commands."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import torch
import typer
from rich.console import Console

from gpt2atlas.errors import InputError
from gpt2atlas.model.gpt2 import GPT2

if TYPE_CHECKING:
    from gpt2atlas.training.history import TrainingHistory

err_console = Console(stderr=True)

ModelOption = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="gpt2, gpt2-medium, gpt2-large, gpt2-xl, distilgpt2, a hub id, or a local folder / .safetensors file",
    ),
]
RevisionOption = Annotated[
    Optional[str],
    typer.Option(
        "--revision", help="branch, tag or commit of a hub model (training runs publish checkpoints as branches)"
    ),
]
DeviceOption = Annotated[str, typer.Option("--device", help="cpu, cuda or cuda:N")]
DtypeOption = Annotated[str, typer.Option("--dtype", help="float32, float16 or bfloat16")]
PromptOption = Annotated[str, typer.Option("--prompt", "-p", help="the text to analyse")]
OutOption = Annotated[Path, typer.Option("--out", "-o", help="output folder")]
PngOption = Annotated[bool, typer.Option("--png/--no-png", help="also write static PNG figures (needs Chromium)")]

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def parse_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise InputError(f"dtype={name!r} is unknown: use one of {', '.join(DTYPES)}", arguments=("dtype",))
    return DTYPES[name]


def load(model: str, device: str = "cpu", dtype: str = "float32", revision: str | None = None) -> GPT2:
    """Load a model with a spinner on stderr."""
    from gpt2atlas.model.loading import load_model

    with err_console.status(f"loading {model}{f' at {revision}' if revision else ''} ..."):
        return load_model(model, device=device, dtype=parse_dtype(dtype), revision=revision)


def check_prompt(prompt: str) -> str:
    if not prompt or not prompt.strip():
        raise InputError("the prompt is empty: give at least one character of text")
    return prompt


def training_history(model: str, run: Path | None) -> TrainingHistory | None:
    """The training history a command can read: a run folder's (when `run` is given), else a shipped model's;
    None for any other model."""
    from gpt2atlas.shipped import SHIPPED_MODELS
    from gpt2atlas.training.history import history_of_run, history_of_shipped

    if run is not None:
        return history_of_run(run)
    return history_of_shipped(model) if model in SHIPPED_MODELS else None
