"""One `gpt2atlas atlas` run: the inputs checked, the folder made (or reopened), the scan driven to the end.

Nothing is created before every input is checked. A new atlas is scanned in its folder; with `overwrite`, an
existing atlas is kept until the new one is complete: the new one is scanned beside it in `.NAME.next` and
swapped in at the end, and `--resume NAME` resumes that one when it is there.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from gpt2atlas.analysis.corpus import BATCH_TOKENS, Engine, local
from gpt2atlas.atlas.driver import ScanSteps, model_digest, run_scan
from gpt2atlas.atlas.state import MAX_TOP_K
from gpt2atlas.atlas.store import DATABASE, RunInfo, Store, settings_of, versions
from gpt2atlas.atomic import swap_folder
from gpt2atlas.errors import InputError, check_output
from gpt2atlas.model.gpt2 import GPT2

S = TypeVar("S")


@dataclass(frozen=True)
class ScanOptions:
    """What the command line says about the measurement itself (the recipe turns it into its settings)."""

    context: int
    top_k: int
    dtype: str


@dataclass(frozen=True)
class ScanRecipe(Generic[S]):
    """The scan plugged into the driver: how the stream is cut into windows, the settings for given options (a
    frozen dataclass of plain values, recorded in run.json), and the steps for a model, windows and settings."""

    windows: Callable[[np.ndarray, int], Sequence[np.ndarray]]
    settings: Callable[[ScanOptions], Any]
    steps: Callable[[GPT2, Sequence[np.ndarray], Any], ScanSteps[S]]


@dataclass(frozen=True)
class AtlasRequest:
    """A `gpt2atlas atlas` call. With `resume`, `out` is the folder to resume and model/data may be None (taken
    from its run.json); any that is given must be the one it was scanned with."""

    out: Path
    model: str | None
    data: str | None
    tokens: int | None = None
    top_k: int | None = None  # None: 20, or what a resumed scan used (so are dtype, context, split and tokens)
    context: int | None = None
    split: str | None = None
    save_every: int = 1024
    device: str = "cpu"
    dtype: str | None = None
    resume: bool = False
    overwrite: bool = False
    batch_tokens: int = BATCH_TOKENS
    progress: bool = True


def pending_folder(out: Path) -> Path:
    """Where `overwrite` scans the new atlas until it replaces `out`."""
    return out.parent / f".{out.name}.next"


DTYPES = ("float32", "bfloat16")  # the scan's arithmetic; the model is loaded, and examples recomputed, in float32


def _check_request(request: AtlasRequest) -> None:
    if request.top_k is not None and not 1 <= request.top_k <= MAX_TOP_K:
        raise InputError(f"top_k={request.top_k} must be between 1 and {MAX_TOP_K}", arguments=("top_k",))
    if request.save_every < 1:
        raise InputError(f"save_every={request.save_every} must be at least 1 window", arguments=("save_every",))
    if request.tokens is not None and request.tokens < 1:
        raise InputError(f"tokens={request.tokens} must be at least 1", arguments=("tokens",))
    if request.split not in (None, "train", "val"):
        raise InputError(f"split={request.split!r} must be train or val", arguments=("split",))
    if request.dtype not in (None, *DTYPES):
        raise InputError(f"dtype={request.dtype!r} is unknown: use one of {', '.join(DTYPES)}", arguments=("dtype",))
    if request.resume and request.overwrite:
        raise InputError("give --resume or --overwrite, not both")


def _with_defaults(request: AtlasRequest, recorded: RunInfo | None) -> AtlasRequest:
    """The options not given: a resumed scan's own, else the defaults."""
    settings = dict(recorded.settings) if recorded else {}
    top_k, dtype = settings.get("top_k", 20), settings.get("dtype", "float32")
    return replace(
        request,
        top_k=request.top_k if request.top_k is not None else int(top_k) if isinstance(top_k, int) else 20,
        dtype=request.dtype or (dtype if isinstance(dtype, str) else "float32"),
        split=request.split or (recorded.split if recorded else "train"),
        context=request.context or (recorded.context if recorded else None),
        tokens=request.tokens or (recorded.tokens if recorded else None),
        model=request.model or (recorded.model if recorded else None),
        data=request.data or (recorded.data if recorded else None),
    )


def _resumed_run(request: AtlasRequest) -> tuple[Path, RunInfo]:
    """The folder to resume (the pending one of an interrupted --overwrite first) and its recorded run."""
    out = request.out
    folder = pending_folder(out) if os.path.isfile(pending_folder(out) / DATABASE) else out
    if not os.path.isfile(folder / DATABASE):
        raise InputError(f"out={out} holds no atlas to resume (no {DATABASE})", arguments=("out",))
    store = Store.reopen(folder)
    store.close()
    if store.run.complete:
        raise InputError(f"out={out} holds a complete atlas: nothing to resume", arguments=("out",))
    return folder, store.run


def run_atlas(
    request: AtlasRequest,
    recipe: ScanRecipe[Any],
    *,
    engine: Engine = local,
    load: Callable[[str, str], GPT2] | None = None,
) -> Path:
    """Check the request, scan (or resume) to the end, and return the atlas's folder."""
    from gpt2atlas.training.data import prepare_tokens

    _check_request(request)
    out = request.out
    folder, recorded = _resumed_run(request) if request.resume else (out, None)
    request = _with_defaults(request, recorded)
    assert request.top_k is not None and request.dtype is not None and request.split is not None
    if not request.resume:
        check_output(out, "out", folder=True)
        if os.path.exists(out) and any(out.iterdir()) and not request.overwrite:
            raise InputError(
                f"out={out} already exists: pass --resume to finish its scan or --overwrite to replace it",
                arguments=("out",),
            )
    model_name, data_spec = request.model, request.data
    if model_name is None or data_spec is None:
        raise InputError("give --model and --data (or --resume DIR to continue a scan)")
    model = (load or _load)(model_name, request.device)
    context = request.context or model.cfg.n_ctx
    if not 2 <= context <= model.cfg.n_ctx:
        raise InputError(
            f"context={context} must be from 2 to the model's context of {model.cfg.n_ctx}", arguments=("context",)
        )
    data = prepare_tokens(data_spec, progress=request.progress)
    in_split = int(data.manifest.get(f"{request.split}_tokens", 0))
    count = min(in_split, request.tokens or in_split) // (context - 1)
    if count == 0:
        given = f"{min(in_split, request.tokens or in_split):,} tokens"
        raise InputError(
            f"data={data_spec} gives {given} in its {request.split} split: fewer than one window of "
            f"{context - 1} tokens (context {context})",
            arguments=("data",),
        )
    stream = data.train if request.split == "train" else data.val
    windows = recipe.windows(stream[: count * (context - 1)], context)  # exactly the windows to scan
    settings = recipe.settings(ScanOptions(context, request.top_k, request.dtype))
    manifest = json.dumps(data.manifest, sort_keys=True)
    run = RunInfo(
        model=model_name,
        model_digest=model_digest(model),
        data=data_spec,
        data_digest=_digest(manifest),
        manifest=manifest,
        split=request.split,
        context=context,
        windows=count,
        tokens=count * (context - 1),
        settings=settings_of(settings),
        versions=versions(),
    )
    if recorded is not None:
        differences = recorded.differences(run)
        if differences:
            raise InputError(f"out={out} was scanned with another {', '.join(differences)}", arguments=("out",))
        store = Store.reopen(folder)
    else:
        # an earlier, unfinished --overwrite of this folder is given up: a new scan starts afresh
        shutil.rmtree(pending_folder(out), ignore_errors=True)
        if request.overwrite and os.path.exists(out):
            folder = pending_folder(out)
        store = Store.create(folder, run, count)
    try:
        run_scan(
            store,
            model,
            windows,
            recipe.steps(model, windows, settings),
            save_every=request.save_every,
            batch_tokens=request.batch_tokens,
            engine=engine,
            progress=request.progress,
            resume_with=f"gpt2atlas atlas --resume {out}",
        )
    finally:
        store.close()
    if folder != out:
        swap_folder(folder, out)
    return out


def _load(name: str, device: str) -> GPT2:
    from gpt2atlas.model.loading import load_model

    return load_model(name, device=device)


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:20]
