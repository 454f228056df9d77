"""The shared corpus runner: texts streamed through the model in padded batches, each batch mapped to a partial
result, the partials merged, the merged whole finished into findings.

An analysis over a corpus hands the runner a `CorpusJob`: the texts' token ids, which texts to read, and its
three steps. `collect(model, batch) -> partial` is the map step: picklable (a module-level dataclass or function)
and given the model it runs on, so an engine such as Ray can run it in workers that hold their own copy of the
model. `merge(partials) -> partial` is associative, so partials may be merged in any grouping. `finish(merged)`
makes the result. Texts go through longest first, right-padded with the end-of-text token: attention is causal,
so padding after a text cannot change any of its positions.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
from tqdm.auto import tqdm

from gpt2atlas.analysis.base import ProgressCallback
from gpt2atlas.model.gpt2 import GPT2

P = TypeVar("P")
R = TypeVar("R")
BATCH_TOKENS = 4096  # padded tokens per forward pass (rows x the longest row)


@dataclass(frozen=True)
class Batch:
    """One padded forward pass: `ids` (rows, width), and for each row its text's index in the corpus and length."""

    ids: np.ndarray
    texts: np.ndarray
    lengths: np.ndarray

    @property
    def width(self) -> int:
        return int(self.ids.shape[1])


@dataclass
class CorpusJob(Generic[P, R]):
    """What an analysis over a corpus asks of the runner (see the module's docstring for the three steps)."""

    tokens: Sequence[Sequence[int]]  # every text's token ids (an empty row for a text that is not read)
    order: np.ndarray  # the texts to read, longest first
    collect: Callable[[GPT2, Batch], P]
    merge: Callable[[Sequence[P]], P]
    finish: Callable[[P], R]
    pad_id: int = 0
    batch_tokens: int = BATCH_TOKENS
    progress: bool = False  # a progress bar on the terminal
    on_progress: ProgressCallback | None = None  # ("extracting", texts done, texts) after each batch


def batches(
    tokens: Sequence[Sequence[int]], order: np.ndarray, pad_id: int, batch_tokens: int = BATCH_TOKENS
) -> Iterator[Batch]:
    """Consecutive groups of `order` (sorted longest first) whose padded size stays within `batch_tokens`."""
    lengths = np.array([len(t) for t in tokens])
    start = 0
    while start < len(order):
        width = int(lengths[order[start]])  # the longest, since `order` is sorted by decreasing length
        size = max(1, batch_tokens // width)
        rows = order[start : start + size]
        ids = np.full((len(rows), width), pad_id, dtype=np.int64)
        for row, text in enumerate(rows):
            ids[row, : lengths[text]] = tokens[text]
        yield Batch(ids, rows, lengths[rows])
        start += size


Engine = Callable[[Callable[[GPT2, Batch], Any], GPT2, Iterable[Batch]], Iterable[Any]]


def local(collect: Callable[[GPT2, Batch], P], model: GPT2, work: Iterable[Batch]) -> Iterator[P]:
    """The default engine: every batch collected here, in order, on `model`."""
    return (collect(model, batch) for batch in work)


def stream(
    model: GPT2,
    job: CorpusJob[P, Any],
    *,
    engine: Engine = local,
) -> P:
    """Collect every batch of `job` through `engine` (which returns the partials in the batches' order; one that
    runs elsewhere, such as Ray, gets the picklable `collect` and uses its workers' models) and merge them."""
    pending: deque[int] = deque()

    def work() -> Iterator[Batch]:
        for batch in batches(job.tokens, job.order, job.pad_id, job.batch_tokens):
            pending.append(len(batch.texts))
            yield batch

    partials = []
    done = 0
    with tqdm(total=len(job.order), desc="extracting", unit="text", disable=not job.progress, leave=False) as bar:
        for partial in engine(job.collect, model, work()):
            partials.append(partial)
            rows = pending.popleft()
            bar.update(rows)
            done += rows
            if job.on_progress is not None:
                job.on_progress("extracting", done, len(job.order))
    return job.merge(partials)


def run_corpus(model: GPT2, job: CorpusJob[Any, R], *, engine: Engine = local) -> R:
    """The whole corpus pass: every batch collected, merged, and finished into the result."""
    return job.finish(stream(model, job, engine=engine))
