"""The atlas scan as a corpus job: `plan`, then `Collect` on every batch of windows, `merge`, `finish`.

One forward pass per batch, stopped after the last block (no ln_final, no unembedding), with read-only hooks on
each block's `mlp.hook_post` (and `attn.hook_pattern` when heads are scanned). Position 0 of every window is the
added `<|endoftext|>`, the same in every window: it is left out of every statistic and example, so each stream
token is counted once.

A `ScanState` is made of numpy arrays only (any store can persist it field by field) and its size depends on
the model and the settings, never on the corpus: per neuron the best `candidates` windows, the float64 mean and
central power sums, the range, the active count, a histogram on the fixed `EDGES`, one band sample per positive bin; per
tracked token and neuron a float64 sum. `merge` is associative and exact (float64 sums up to rounding).

Bands: every position (window, position) gets a pseudo-random priority (a hash of the two); per neuron and
positive histogram bin the state keeps the position of smallest priority (bottom-1 sampling, which merges
exactly). `finish` groups the bins into `bands` bands by the neuron's maximum (a bin joins the band its lower
edge falls in, so a band's bounds are bin edges and its count is exact) and shows each band's samples of
smallest priority: a reproducible random draw, one per bin, of the band's positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np

from gpt2atlas.analysis.corpus import BATCH_TOKENS, CorpusJob
from gpt2atlas.atlas.collect import Collect
from gpt2atlas.atlas.finish import AtlasContents, FinishedScan, finish
from gpt2atlas.atlas.state import (
    BINS,
    DTYPES,
    EDGES,
    FIRST_POSITIVE,
    HEAD_SCORES,
    POSITIVE_BINS,
    ScanPlan,
    ScanSettings,
    ScanState,
    merge,
    plan,
    priority,
)
from gpt2atlas.atlas.windows import Windows
from gpt2atlas.model.gpt2 import GPT2
from gpt2atlas.tokenizer import ENDOFTEXT_ID

__all__ = [
    "BINS", "DTYPES", "EDGES", "FIRST_POSITIVE", "HEAD_SCORES", "POSITIVE_BINS", "AtlasContents", "Collect",
    "FinishedScan", "ScanPlan", "ScanSettings", "ScanState", "finish", "job", "merge", "plan", "priority",
]  # fmt: skip


def job(
    model: GPT2,
    windows: Windows,
    settings: ScanSettings,
    indices: Sequence[int] | np.ndarray | None = None,
    *,
    batch_tokens: int = BATCH_TOKENS,
    progress: bool = False,
) -> CorpusJob[ScanState, AtlasContents]:
    """The scan of `windows` (all, or `indices` in order) as a job for the shared corpus runner: `run_corpus`
    gives the finished contents, `stream` (with any engine, e.g. Ray's) the merged state."""
    scan = plan(model, windows, settings)
    order = np.arange(len(windows)) if indices is None else np.asarray(indices, dtype=np.int64)
    return CorpusJob(
        tokens=cast(Sequence[Sequence[int]], windows),
        order=order,
        collect=Collect(scan),
        merge=merge,
        finish=lambda state: finish(state, model, windows, scan),
        pad_id=ENDOFTEXT_ID,  # never used: every window is full
        batch_tokens=batch_tokens,
        progress=progress,
    )
