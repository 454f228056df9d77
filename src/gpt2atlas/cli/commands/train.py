"""`gpt2atlas train`: train GPT-2 from scratch (or continue a run) on one process or under torchrun."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer

from gpt2atlas.cli.common import DeviceOption, err_console
from gpt2atlas.training.recipe import TrainConfig

DEFAULT = TrainConfig()  # the help texts quote its values


def register(app: typer.Typer) -> None:
    app.command("train")(train)


def _opt(help_text: str, *names: str) -> typer.models.OptionInfo:
    return typer.Option(*names, help=help_text)


def train(
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="run folder (checkpoints, metrics, state)")] = None,
    data: Annotated[
        Optional[str],
        _opt(
            f"text file, folder, or built-in corpus (python-stdlib, python-docs); default {DEFAULT.data}; "
            "comma-separated to mix"
        ),
    ] = None,
    preset: Annotated[Optional[str], _opt("model shape: tiny, mini (default), small, medium")] = None,
    n_layer: Annotated[Optional[int], _opt("blocks")] = None,
    n_head: Annotated[Optional[int], _opt("attention heads per block")] = None,
    d_model: Annotated[Optional[int], _opt("width of the residual stream")] = None,
    n_ctx: Annotated[Optional[int], _opt("context length in tokens")] = None,
    init_from: Annotated[
        Optional[str],
        _opt("start from these weights (a model id, folder or .safetensors) instead of GPT-2's initialisation"),
    ] = None,
    max_steps: Annotated[Optional[int], _opt(f"optimizer steps in all (default {DEFAULT.max_steps})")] = None,
    batch_tokens: Annotated[
        Optional[int], _opt(f"tokens per optimizer step, over all processes (default {DEFAULT.batch_tokens})")
    ] = None,
    micro_batch: Annotated[
        Optional[int], _opt(f"sequences per forward pass and process (default {DEFAULT.micro_batch})")
    ] = None,
    lr: Annotated[Optional[float], _opt(f"peak learning rate (default {DEFAULT.lr:g})")] = None,
    warmup_steps: Annotated[Optional[int], _opt(f"linear warm-up steps (default {DEFAULT.warmup_steps})")] = None,
    weight_decay: Annotated[
        Optional[float], _opt(f"AdamW weight decay on matrices (default {DEFAULT.weight_decay:g})")
    ] = None,
    seed: Annotated[
        Optional[int], _opt(f"seed of the initialisation and the data order (default {DEFAULT.seed})")
    ] = None,
    val_fraction: Annotated[
        Optional[float], _opt(f"share of documents held out (default {DEFAULT.val_fraction:g})")
    ] = None,
    precision: Annotated[
        Optional[str], _opt("auto (bfloat16 autocast where the CPU/GPU is fast at it), float32 or bfloat16")
    ] = None,
    adamw: Annotated[Optional[str], _opt("AdamW implementation: fused (default) or foreach")] = None,
    compile_model: Annotated[
        Optional[bool], typer.Option("--compile/--no-compile", help="torch.compile the model")
    ] = None,
    device: DeviceOption = "cpu",
    eval_every: Annotated[
        Optional[int], _opt(f"steps between validation losses (default {DEFAULT.eval_every})")
    ] = None,
    eval_tokens: Annotated[
        Optional[int], _opt(f"validation tokens per evaluation (default {DEFAULT.eval_tokens})")
    ] = None,
    log_every: Annotated[
        Optional[int], _opt(f"steps between lines of metrics.jsonl (default {DEFAULT.log_every})")
    ] = None,
    save_every: Annotated[
        Optional[int], _opt(f"steps between saves of the resumable state (default {DEFAULT.save_every})")
    ] = None,
    resume: Annotated[Optional[Path], _opt("continue the run in this folder")] = None,
    overwrite: Annotated[bool, _opt("start again in a folder that holds an earlier run")] = False,
    time_limit: Annotated[Optional[float], _opt("stop cleanly (state saved) after this many minutes")] = None,
    stop_at_step: Annotated[Optional[int], _opt("stop cleanly (state saved) after this step; resume later")] = None,
    threads: Annotated[Optional[int], _opt("CPU threads per process")] = None,
    png: Annotated[bool, typer.Option("--png/--no-png", help="also write the loss curve as PNG")] = False,
) -> None:
    """Train GPT-2 from scratch with GPT-2's recipe; `torchrun --nproc_per_node N -m gpt2atlas train ...` for DDP."""
    from gpt2atlas.errors import InputError
    from gpt2atlas.training import TrainingInterrupted, config_for
    from gpt2atlas.training import train as run_training

    if (out is None) == (resume is None):
        said = (
            "neither --out nor --resume was given"
            if out is None
            else f"--out {out} and --resume {resume} were both given"
        )
        raise InputError(f"{said}: give --out DIR for a new run, or --resume DIR to continue one")
    overrides = dict(
        data=data,
        n_layer=n_layer,
        n_head=n_head,
        d_model=d_model,
        n_ctx=n_ctx,
        init_from=init_from,
        max_steps=max_steps,
        batch_tokens=batch_tokens,
        micro_batch=micro_batch,
        lr=lr,
        warmup_steps=warmup_steps,
        weight_decay=weight_decay,
        seed=seed,
        val_fraction=val_fraction,
        precision=precision,
        adamw=adamw,
        compile=compile_model,
        device=device if device != "cpu" else None,
        eval_every=eval_every,
        eval_tokens=eval_tokens,
        log_every=log_every,
        save_every=save_every,
    )
    if time_limit is not None and not time_limit >= 0:  # nan fails this too
        raise InputError(f"time_limit={time_limit} must be a number of minutes >= 0", arguments=("time_limit",))
    if resume is not None:
        with _resume_flag(True):
            config = _resume_config(resume, preset, overrides)
        folder = resume
    else:
        config = config_for(preset, **overrides)
        folder = out  # type: ignore[assignment]
    is_main = _is_main_process()
    log = (
        (lambda msg: err_console.print(msg, markup=False, highlight=False, soft_wrap=True))
        if is_main
        else (lambda msg: None)
    )
    try:
        with _resume_flag(resume is not None):
            result = run_training(
                config,
                folder,
                resume=resume is not None,
                overwrite=overwrite,
                time_limit_s=time_limit * 60 if time_limit is not None else None,
                stop_at_step=stop_at_step,
                threads=threads,
                log=log,
            )
    except TrainingInterrupted as stop:
        if is_main:
            _write_loss_curve(folder, png)
            err_console.print(str(stop), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None
    if is_main:
        figure = _write_loss_curve(folder, png)
        loss = f"validation loss {result.val_loss:.4f}" if result.val_loss is not None else "no validation split"
        err_console.print(
            f"step {result.step}: {loss}; {result.tokens:,} tokens seen. Wrote {result.run} "
            f"(checkpoints/, metrics.jsonl, {figure.name})",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


@contextmanager
def _resume_flag(resuming: bool) -> Iterator[None]:
    """A resumed run's folder is the Python API's `out`, but the command line's --resume: say that flag."""
    from gpt2atlas.errors import InputError, as_flags

    try:
        yield
    except InputError as err:
        if resuming and "out" in err.arguments:
            raise InputError(as_flags(err, {"out": "resume"})) from None
        raise


def _resume_config(folder: Path, preset: str | None, overrides: dict):
    """The saved run's config with the options given now (`train` refuses changes to the shape or recipe)."""
    from gpt2atlas.training.recipe import preset_shape
    from gpt2atlas.training.run_folder import RunFolder

    shape = preset_shape(preset) if preset is not None else {}
    given = {**overrides, **{k: v for k, v in shape.items() if overrides.get(k) is None}}
    return RunFolder(folder).read_config().with_overrides(**given)


def _is_main_process() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


def _write_loss_curve(folder: Path, png: bool) -> Path:
    from gpt2atlas.training.run_folder import RunFolder
    from gpt2atlas.viz.export import save_figures
    from gpt2atlas.viz.training import loss_curve_figure

    run = RunFolder(folder)
    figure = loss_curve_figure(run.read_metrics(), title=f"Loss during training: {run.path.name}")
    save_figures({"loss": figure}, run.path, png=png)
    return run.path / "loss.html"
