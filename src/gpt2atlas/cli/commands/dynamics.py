"""`gpt2atlas dynamics`: how a model learned, measured at every checkpoint of its training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from gpt2atlas.cli.common import OutOption, PngOption, err_console, training_history
from gpt2atlas.errors import InputError


def register(app: typer.Typer) -> None:
    app.command("dynamics")(dynamics)


def dynamics(
    out: OutOption,
    run: Annotated[Optional[Path], typer.Option("--run", help="a gpt2atlas train run folder")] = None,
    model: Annotated[
        Optional[str],
        typer.Option("--model", "-m", help="a shipped model (default: mini) or, with --revisions, a hub id"),
    ] = None,
    revisions: Annotated[
        Optional[str],
        typer.Option(
            "--revisions", help="hub revisions of --model, comma-separated (e.g. checkpoint-0,checkpoint-10000)"
        ),
    ] = None,
    png: PngOption = True,
) -> None:
    """Loss, position-embedding smoothness, head scores, logit-lens depth and intrinsic dimension over training."""
    from gpt2atlas.analysis.base import to_jsonable
    from gpt2atlas.analysis.dynamics import analyze
    from gpt2atlas.training.history import history_of_revisions
    from gpt2atlas.viz.dynamics import figures
    from gpt2atlas.viz.export import write_result_folder
    from gpt2atlas.viz.readings import read_dynamics

    if run is not None and (model is not None or revisions is not None):
        given = " and ".join(
            f"--{name} {value}" for name, value in (("model", model), ("revisions", revisions)) if value
        )
        raise InputError(
            f"--run {run} and {given} were both given: give --run, or --model (with --revisions for a hub model)"
        )
    if revisions is not None:
        history = history_of_revisions(model or "mini", [r.strip() for r in revisions.split(",") if r.strip()])
    else:
        found = training_history(model or "mini", run)
        if found is None:
            raise InputError(
                f"--model {model} has no training history here: pass --revisions for a hub model's "
                "checkpoints, --run DIR for a run of gpt2atlas train, or --model mini"
            )
        history = found
    result = analyze(history)
    sentences = read_dynamics(result)
    with err_console.status(f"writing dynamics figures{' (HTML + PNG)' if png else ''} ..."):
        findings = {**to_jsonable(result), "reading": sentences}
        final = write_result_folder(out, "dynamics", json.dumps(findings, indent=1), figures(result, history), png=png)
    console = Console(highlight=False, soft_wrap=True)
    for sentence in sentences:
        console.print(f"- {sentence}")
    console.print(f"dynamics: findings and figures written to {final}")
