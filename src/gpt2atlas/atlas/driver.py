"""The resumable scan: windows in order, in shards committed to the database, and the entries at the end.

The driver knows nothing of what is measured: a `ScanSteps` gives it the corpus runner's three steps
(`collect(model, batch) -> state`, an exact, associative `merge`, and `finish(state) -> contents`) and the type
of the state (a dataclass of numpy arrays, which the store saves field by field). Batches hold whole windows and
start at multiples of the batch size or of `save_every`, whatever the point a scan was resumed from, so a resumed
scan folds exactly the same partial states in the same order as an uninterrupted one and ends with the same
database.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import numpy as np
from tqdm.auto import tqdm

from gpt2atlas.analysis.corpus import BATCH_TOKENS, Batch, Engine, local
from gpt2atlas.atlas.entries import HeadEntry, NeuronEntry
from gpt2atlas.atlas.store import Store
from gpt2atlas.model.gpt2 import GPT2

S = TypeVar("S")
# a test hook: with this set to a file name, the scan says `committed <windows done>` on stderr after each commit
# and waits (at most 2 minutes, or until it is asked to stop) for that file to exist, so a test can kill it there
PAUSE_ENV = "GPT2ATLAS_TEST_PAUSE_AFTER_COMMIT"


class Contents(Protocol):
    """What `finish` makes (the scan's AtlasContents)."""

    @property
    def neurons(self) -> Sequence[NeuronEntry]: ...

    @property
    def heads(self) -> Sequence[HeadEntry]: ...


@dataclass(frozen=True)
class ScanSteps(Generic[S]):
    """A scan as the driver runs it: the state's type, and the three steps of the corpus runner."""

    state_type: type[S]
    collect: Callable[[GPT2, Batch], S]
    merge: Callable[[Sequence[S]], S]
    finish: Callable[[S], Contents]


class ScanInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped the scan after committing what it had done; the message says how to resume."""


def batch_windows(context: int, batch_tokens: int = BATCH_TOKENS) -> int:
    """Whole windows per forward pass."""
    return max(1, batch_tokens // context)


def spans(start: int, stop: int, every: int, size: int) -> Iterator[tuple[int, int]]:
    """[first, end) of each batch from window `start` to `stop`: cut at every multiple of `size` and of `every`
    (the commits), so the batches after any commit point are the same as in a scan that never stopped."""
    first = start
    while first < stop:
        end = min(stop, (first // size + 1) * size, (first // every + 1) * every)
        yield first, end
        first = end


def run_scan(
    store: Store,
    model: GPT2,
    windows: Sequence[np.ndarray],
    steps: ScanSteps[S],
    *,
    save_every: int,
    batch_tokens: int = BATCH_TOKENS,
    engine: Engine = local,
    progress: bool = True,
    resume_with: str = "",
) -> None:
    """Scan `windows[done:]` (done: what the store has committed), committing every `save_every` windows, then
    finish and write the entries. The first Ctrl-C / SIGTERM stops after the batch in hand, committed
    (`ScanInterrupted`); a second one stops at once (the last commit stands)."""
    total, context = len(windows), len(windows[0])
    done = store.windows_done()
    state: S | None = store.load_state(steps.state_type) if done else None
    size = batch_windows(context, batch_tokens)
    resume = resume_with or f"gpt2atlas atlas --resume {store.folder}"
    pause = os.environ.get(PAUSE_ENV)
    bar = tqdm(
        total=total * context,
        initial=done * context,
        unit="tok",
        unit_scale=True,
        desc="scanning",
        disable=not progress,
        smoothing=0.1,
    )
    with _stop_on_signals() as stop_requested, _closing(bar):
        while done < total:
            shard_end = min(total, (done // save_every + 1) * save_every)
            shard = list(spans(done, shard_end, save_every, size))
            reached = done
            for (first, end), partial in zip(
                shard, engine(steps.collect, model, _batches(windows, shard)), strict=True
            ):
                state = partial if state is None else steps.merge([state, partial])
                reached = end
                bar.update((end - first) * context)
                if stop_requested():
                    break
            store.commit(state, reached, {w: windows[w] for w in range(done, reached)})
            done = reached
            if pause:
                _pause(Path(pause), done, stop_requested)
            if stop_requested() and done < total:
                raise ScanInterrupted(
                    f"stopped: committed {done:,} of {total:,} windows to {store.folder}; resume with {resume}"
                )
    assert state is not None
    contents = steps.finish(state)
    store.complete(contents.neurons, contents.heads)


def _batches(windows: Sequence[np.ndarray], shard: Sequence[tuple[int, int]]) -> Iterator[Batch]:
    for first, end in shard:
        ids = np.stack([np.asarray(windows[w], dtype=np.int64) for w in range(first, end)])
        yield Batch(ids, np.arange(first, end), np.full(end - first, ids.shape[1]))


def _pause(go_on: Path, done: int, stop_requested: Callable[[], bool]) -> None:
    print(f"committed {done}", file=sys.stderr, flush=True)
    deadline = time.monotonic() + 120
    while not go_on.exists() and not stop_requested() and time.monotonic() < deadline:
        time.sleep(0.02)


@contextmanager
def _stop_on_signals() -> Iterator[Callable[[], bool]]:
    """The first Ctrl-C / SIGTERM asks the scan to stop after the batch in hand; a second one interrupts."""
    requested: list[int] = []

    def handler(signum, frame) -> None:
        if requested:
            raise KeyboardInterrupt
        requested.append(signum)

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)} if in_main_thread else {}
    try:
        yield lambda: bool(requested)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def _closing(bar: Any) -> Iterator[None]:
    try:
        yield
    finally:
        bar.close()


def model_digest(model: GPT2) -> str:
    """A fingerprint of the weights: the shape, every tensor's name and shape, and its first 4,096 values
    (enough to tell two checkpoints apart, and quick on GPT-2 XL)."""
    digest = hashlib.sha256(repr(model.cfg).encode())
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().flatten()[:4096].float().cpu().numpy().tobytes())
    return digest.hexdigest()[:20]
