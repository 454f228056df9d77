"""`gpt2atlas report` (one self-contained HTML/Markdown report) and `gpt2atlas app` (the Streamlit dashboard)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from gpt2atlas.areas import AREAS
from gpt2atlas.atlas.reader import AtlasReader
from gpt2atlas.cli.common import DeviceOption, DtypeOption, ModelOption, RevisionOption, load, training_history
from gpt2atlas.errors import InputError


def register(app: typer.Typer) -> None:
    app.command("report")(report)
    app.command("app")(dashboard)


def read_texts(path: Path) -> list[str]:
    """Texts for the geometry section: one per non-empty line of a file, or one per .txt file of a folder."""
    if os.path.isdir(path):
        texts = [p.read_text(encoding="utf-8", errors="replace").strip() for p in sorted(path.glob("*.txt"))]
    elif os.path.isfile(path):
        texts = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    else:
        raise InputError(
            f"--texts {path}: no such file or folder; give a file (one text per line) or a folder of .txt files"
        )
    texts = [t for t in texts if t]
    if not texts:
        raise InputError(f"--texts {path} holds no text: give a file with at least one non-empty line")
    return texts


def report(
    model: ModelOption = "gpt2",
    revision: RevisionOption = None,
    run: Annotated[
        Optional[Path],
        typer.Option(
            "--run",
            help="a gpt2atlas train run folder: report on its last checkpoint, with a 'How it learned' section over all of them",
        ),
    ] = None,
    prompt: Annotated[
        Optional[list[str]],
        typer.Option("--prompt", "-p", help="a prompt to analyse (repeat for several); default: a built-in one"),
    ] = None,
    texts: Annotated[
        Optional[Path],
        typer.Option("--texts", help="texts for the geometry section: one per line, or a folder of .txt files"),
    ] = None,
    max_texts: Annotated[int, typer.Option(help="at most this many texts for the geometry section (speed)")] = 200,
    out: Annotated[Path, typer.Option("--out", "-o", help="the report file (.html, or .md with --format md)")] = Path(
        "report.html"
    ),
    fmt: Annotated[
        str, typer.Option("--format", help="html (one self-contained file) or md (Markdown + PNG folder)")
    ] = "html",
    seed: Annotated[int, typer.Option(help="seed for sampling and random probes")] = 0,
    max_new_tokens: Annotated[int, typer.Option(help="tokens per generated sample")] = 40,
    num_samples: Annotated[int, typer.Option(help="generated samples per prompt")] = 2,
    skip: Annotated[
        Optional[list[str]],
        typer.Option(
            "--skip",
            help=f"leave out a section (repeatable): summary, {', '.join(spec.key for spec in AREAS)}, samples, learning",
        ),
    ] = None,
    projections: Annotated[
        str,
        typer.Option(
            help="token-embedding projections, comma-separated: pca, tsne, umap (t-SNE and UMAP take minutes on gpt2)"
        ),
    ] = "pca",
    quick: Annotated[
        bool, typer.Option("--quick", help="smaller samples, PCA only, fewer probes: a rough report, fast")
    ] = False,
    atlas: Annotated[
        Optional[Path],
        typer.Option(
            "--atlas",
            help="a corpus atlas of this model (made by `gpt2atlas atlas`): the MLP section shows the prompt's "
            "strongest neurons across its corpus (default for --model mini: the shipped atlas)",
        ),
    ] = None,
    device: DeviceOption = "cpu",
    dtype: DtypeOption = "float32",
) -> None:
    """Write ONE report with everything about a GPT-2: every analysis, its figures and a reading of its numbers."""
    from gpt2atlas.report import build_report

    text_list = read_texts(texts) if texts is not None else None
    if run is not None and model != "gpt2":
        raise InputError(
            f"--model {model} and --run {run} were both given: give one of them (a run's model is its last checkpoint)"
        )
    history = training_history(model, run)
    if run is not None:
        model = str(last_checkpoint(run))
    reader = report_atlas(model, atlas)
    gpt = load(model, device, dtype, revision)
    path, result = build_report(
        gpt,
        out,
        model_id=model,
        prompts=prompt or [],
        texts=text_list,
        texts_source=str(texts) if texts else None,
        max_texts=max_texts,
        seed=seed,
        max_new_tokens=max_new_tokens,
        num_samples=num_samples,
        fmt=fmt,
        skip=skip or [],
        quick=quick,
        projections=[p.strip() for p in projections.split(",") if p.strip()],
        history=history,
        atlas=reader,
    )
    skipped = [s for s in result.sections if s.skipped]
    for s in skipped:
        print(f"skipped {s.key}: {s.skipped}", file=sys.stderr)
    figures = sum(s.figure_count for s in result.sections)
    print(f"wrote {path} ({len(result.sections) - len(skipped)} sections, {figures} figures)")
    failed = [s.key for s in result.sections if s.failed]
    if failed:
        print(
            f"error: {len(failed)} section(s) failed: {', '.join(failed)} (the rest of the report is in {path})",
            file=sys.stderr,
        )
        raise typer.Exit(SECTIONS_FAILED)


SECTIONS_FAILED = 3  # the exit status of a report written with sections that failed unexpectedly


def report_atlas(model: str, atlas: Path | None) -> AtlasReader | None:
    """The atlas the report reads: the one given, else the shipped model's own, else none."""
    from gpt2atlas.atlas.reader import open_atlas
    from gpt2atlas.shipped import shipped_atlas

    path = atlas if atlas is not None else shipped_atlas(model)
    return open_atlas(path) if path is not None else None


def last_checkpoint(run: Path) -> Path:
    return sorted((run / "checkpoints").glob("step-*"))[-1]  # history_of_run checked there is one


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def app_command(
    app_file: Path, model: str, port: int, host: str = "127.0.0.1", device: str = "cpu", atlas: Path | None = None
) -> list[str]:
    """The `streamlit run` command line for the dashboard: local only, headless, no usage statistics."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_file),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--global.developmentMode",
        "false",
        "--client.showErrorDetails",
        "none",
        "--server.fileWatcherType",
        "none",
        "--",
        "--model",
        model,
        "--device",
        device,
        *(["--atlas", str(atlas)] if atlas is not None else []),
    ]


def dashboard(
    model: ModelOption = "gpt2",
    port: Annotated[int, typer.Option(help="port on 127.0.0.1 (0: any free port)")] = 8501,
    device: DeviceOption = "cpu",
    atlas: Annotated[
        Optional[Path],
        typer.Option("--atlas", help="the corpus atlas the 'Neuron atlas' view opens (made by `gpt2atlas atlas`)"),
    ] = None,
) -> None:
    """Start the interactive dashboard (Streamlit) on 127.0.0.1."""
    import gpt2atlas.app
    from gpt2atlas.model.loading import check_device

    if not 0 <= port <= 65535:
        raise InputError(f"port={port} is out of range: use 0 (any free port) to 65535", arguments=("port",))
    device = str(check_device(device))
    port = port or free_port()
    env = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false", "STREAMLIT_SERVER_HEADLESS": "true"}
    print(f"gpt2atlas dashboard for {model}: http://127.0.0.1:{port}  (Ctrl-C stops it)")
    app_file = Path(gpt2atlas.app.__file__).with_name("streamlit_app.py")
    code, stopped = run_forwarding_signals(app_command(app_file, model, port, device=device, atlas=atlas), env)
    if not stopped and code != 0:  # asked to stop, the server's own exit code says only how it was interrupted
        raise typer.Exit(code)


def run_forwarding_signals(command: list[str], env: dict[str, str]) -> tuple[int, bool]:
    """Run `command` as a child that receives this process's SIGINT and SIGTERM, and wait for it to end.

    Returns the child's exit code and whether a signal asked it to stop. Without this, a SIGTERM to `gpt2atlas app`
    (a service manager, `kill`) ended it and left the Streamlit server running on its port. Ctrl-C in a terminal
    reaches both already; forwarding it again is harmless. A SIGINT that lands while Streamlit is still setting up
    its own handlers ends it with Python's KeyboardInterrupt (exit 1): still the stop that was asked for.
    """
    child = subprocess.Popen(command, env=env)
    stopped = False

    def forward(signum, frame) -> None:
        nonlocal stopped
        stopped = True
        if child.poll() is None:
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return child.wait(), stopped
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
