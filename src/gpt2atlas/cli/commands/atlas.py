"""`gpt2atlas atlas`: scan a corpus into an atlas of every neuron and head; `gpt2atlas atlas-export`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from gpt2atlas.cli.common import err_console

if TYPE_CHECKING:
    from gpt2atlas.analysis.corpus import Engine
    from gpt2atlas.atlas.job import ScanRecipe


def register(app: typer.Typer) -> None:
    app.command("atlas")(atlas)
    app.command("atlas-export")(atlas_export)


def _say(message: str) -> None:
    err_console.print(message, markup=False, highlight=False, soft_wrap=True)


def real_recipe() -> ScanRecipe[Any]:
    """The atlas scan (gpt2atlas.atlas.scan) as the driver runs it."""
    from gpt2atlas.atlas import scan
    from gpt2atlas.atlas.driver import ScanSteps
    from gpt2atlas.atlas.job import ScanOptions, ScanRecipe
    from gpt2atlas.atlas.windows import Windows

    def settings(options: ScanOptions) -> Any:
        return scan.ScanSettings(context=options.context, top_k=options.top_k, dtype=options.dtype)

    def steps(model, windows, settings) -> ScanSteps[Any]:
        plan = scan.plan(model, windows, settings)
        return ScanSteps(
            scan.ScanState,
            scan.Collect(plan),
            scan.merge,
            lambda state: scan.finish(state, model, windows, plan),
        )

    return ScanRecipe(windows=Windows, settings=settings, steps=steps)


RECIPE: Callable[[], ScanRecipe[Any]] = real_recipe  # tests put a toy scan here


def _engine(name: str, address: str | None, workers: int | None, device: str) -> Engine:
    from gpt2atlas.errors import InputError

    if name == "local":
        if address is not None or workers is not None:
            raise InputError("--address and --workers go with --engine ray")
        from gpt2atlas.analysis.corpus import local

        return local
    if name != "ray":
        raise InputError(f"engine={name!r} is unknown: use local or ray", arguments=("engine",))
    try:
        import ray  # noqa: F401
    except ImportError:
        raise InputError("--engine ray needs Ray, which is not installed: pip install 'gpt2atlas[ray]'") from None
    from gpt2atlas.analysis.corpus_ray import ray_engine

    return ray_engine(address=address, workers=workers or 2, device=device)


def atlas(
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="the GPT-2 to scan (as for report)")] = None,
    data: Annotated[
        Optional[str], typer.Option(help="what `train --data` takes: a file, folder, built-in corpus or token folder")
    ] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="the atlas folder to write")] = None,
    tokens: Annotated[Optional[int], typer.Option(help="scan at most this many tokens (default: all)")] = None,
    top_k: Annotated[Optional[int], typer.Option(help="top examples kept per neuron and head (default 20)")] = None,
    context: Annotated[Optional[int], typer.Option(help="window length (default: the model's context)")] = None,
    split: Annotated[Optional[str], typer.Option(help="train (default) or val: which part of the data")] = None,
    save_every: Annotated[int, typer.Option(help="windows between commits of the resumable state")] = 1024,
    device: Annotated[str, typer.Option(help="cpu, cuda or cuda:N")] = "cpu",
    dtype: Annotated[
        Optional[str],
        typer.Option(help="the scan's arithmetic: float32 (default) or bfloat16 (examples recomputed in float32)"),
    ] = None,
    engine: Annotated[str, typer.Option(help="local or ray")] = "local",
    address: Annotated[Optional[str], typer.Option(help="a Ray cluster's address (--engine ray)")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Ray workers (--engine ray)")] = None,
    resume: Annotated[Optional[Path], typer.Option(help="finish the interrupted scan in this folder")] = None,
    overwrite: Annotated[
        bool, typer.Option(help="replace the atlas in --out (kept until the new one is done)")
    ] = False,
) -> None:
    """Scan a corpus: every MLP neuron's and head's top examples, statistics and more, into DIR/atlas.sqlite."""
    from gpt2atlas.atlas.driver import ScanInterrupted
    from gpt2atlas.atlas.job import AtlasRequest, run_atlas
    from gpt2atlas.errors import InputError, as_flags

    if (out is None) == (resume is None):
        raise InputError("pass --out DIR for a new atlas, or --resume DIR to finish one")
    folder = resume if resume is not None else out
    assert folder is not None
    request = AtlasRequest(
        out=folder,
        model=model,
        data=data,
        tokens=tokens,
        top_k=top_k,
        context=context,
        split=split,
        save_every=save_every,
        device=device,
        dtype=dtype,
        resume=resume is not None,
        overwrite=overwrite,
    )
    chosen = _engine(engine, address, workers, device)
    try:
        written = run_atlas(request, RECIPE(), engine=chosen)
    except InputError as err:
        if resume is not None and "out" in err.arguments:  # the folder is the API's `out`, but here --resume
            raise InputError(as_flags(err, {"out": "resume"})) from None
        raise
    except ScanInterrupted as stop:
        _say(f"\n{stop}")
        raise typer.Exit(130) from None
    except KeyboardInterrupt:  # a second Ctrl-C: the last commit stands
        if not (folder / "atlas.sqlite").is_file():
            raise
        _say(f"\nstopped: the last commit in {folder} stands; resume with gpt2atlas atlas --resume {folder}")
        raise typer.Exit(130) from None
    finally:
        close = getattr(chosen, "close", None)  # a Ray engine stops its actors (and the Ray it started)
        if close is not None:
            close()
    _say(f"wrote {written}/atlas.sqlite and run.json; read it with gpt2atlas.atlas.Atlas.open({str(written)!r})")


def atlas_export(
    folder: Annotated[Path, typer.Argument(help="an atlas folder (or its atlas.sqlite)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="the folder to write the records to")],
    fmt: Annotated[str, typer.Option("--format", help="neuron-explainer (OpenAI's NeuronRecord JSON)")] = (
        "neuron-explainer"
    ),
    overwrite: Annotated[bool, typer.Option(help="replace --out if it exists")] = False,
) -> None:
    """Export an atlas: one JSON file per neuron, OUT/<layer>/<neuron>.json, as OpenAI's neuron records."""
    from gpt2atlas.atlas.export import export

    count = export(folder, out, fmt, overwrite=overwrite)
    _say(f"wrote {count:,} neuron records under {out}")
