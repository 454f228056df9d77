"""What the dashboard keeps between reruns: the model (loaded once, shared) and cached analyses."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import streamlit as st

from gpt2atlas.analysis.base import ProgressCallback
from gpt2atlas.analysis.kinds import Inputs
from gpt2atlas.areas.spec import AreaSpec
from gpt2atlas.model.gpt2 import GPT2

MODEL_ENV = "GPT2ATLAS_MODEL"
DEVICE_ENV = "GPT2ATLAS_DEVICE"


def _app_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    """`--model` and `--device` after `--` on the `streamlit run` line.

    `sys.argv` is read only when Streamlit runs our app file (under a test runner it holds the runner's flags).
    """
    if argv is None:
        argv = sys.argv[1:] if Path(sys.argv[0]).name == "streamlit_app.py" else []
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--model")
    parser.add_argument("--device")
    parser.add_argument("--atlas")
    known, _ = parser.parse_known_args(list(argv))
    return known


def app_argument(name: str, argv: Sequence[str] | None = None) -> str | None:
    """One of the app's own arguments (`model`, `device`, `atlas`) from the `streamlit run` line, or None."""
    value = getattr(_app_arguments(argv), name)
    return str(value) if value is not None else None


def default_model(argv: Sequence[str] | None = None) -> str:
    """The model from the command line, else $GPT2ATLAS_MODEL, else gpt2."""
    return _app_arguments(argv).model or os.environ.get(MODEL_ENV) or "gpt2"


def server_device(argv: Sequence[str] | None = None) -> str:
    """Where every model of this dashboard runs: the command line's --device, else $GPT2ATLAS_DEVICE, else cpu."""
    return _app_arguments(argv).device or os.environ.get(DEVICE_ENV) or "cpu"


@st.cache_resource(max_entries=2, show_spinner="loading the model ...")
def get_model(model_id: str) -> GPT2:
    """The model, loaded once per process (on the server's device) and shared by every session and view."""
    from gpt2atlas.model.loading import load_model

    return load_model(model_id, device=server_device())


class ResultCache:
    """A small thread-safe LRU shared by every session (Streamlit runs each session in a thread).

    Not `st.cache_resource`: a long analysis reports progress into a bar drawn outside it, which Streamlit's
    cache refuses (it would have to replay that element on a hit).
    """

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self.entries: OrderedDict[tuple, Any] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple, compute: Callable[[], Any]) -> Any:
        with self.lock:
            if key in self.entries:
                self.entries.move_to_end(key)
                return self.entries[key]
        value = compute()  # outside the lock: other sessions are not held up by a long analysis
        with self.lock:
            self.entries[key] = value
            while len(self.entries) > self.max_entries:
                self.entries.popitem(last=False)
        return value


@st.cache_resource
def result_cache() -> ResultCache:
    return ResultCache(max_entries=64)  # analyses and their figures


def cached_analysis(
    model_id: str,
    spec: AreaSpec,
    prompt: str | None,
    options: tuple = (),
    on_progress: ProgressCallback | None = None,
) -> Any:
    """The area's analysis, run its own way, computed once per model, prompt and options (in this process).

    An option the analysis does not take is an InputError naming it. `on_progress` goes to analyses that
    report their progress; it is not part of the key.
    """

    def compute() -> Any:
        return spec.run(get_model(model_id), Inputs(prompt), dict(options), on_progress=on_progress)

    return result_cache().get(("analysis", model_id, spec.key, prompt, options), compute)


def cached_figures(model_id: str, spec: AreaSpec, prompt: str | None, options: tuple = ()) -> dict:
    """The named figures of a cached analysis."""
    return result_cache().get(
        ("figures", model_id, spec.key, prompt, options),
        lambda: spec.figures(cached_analysis(model_id, spec, prompt, options)),
    )
