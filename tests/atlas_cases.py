"""Synthetic atlas entries and databases for the store, Atlas and export tests (no model, no scan)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gpt2atlas.atlas.entries import (
    Band,
    Example,
    HeadEntry,
    HeadExample,
    HeadStats,
    Histogram,
    LogitEffect,
    NeuronEntry,
    NeuronStats,
    TokenLogit,
    TokenMean,
)
from gpt2atlas.atlas.store import RunInfo, Store, versions

CONTEXT = 16


def f32(x: float) -> float:
    """A float that a float32 column keeps exactly."""
    return float(np.float32(x))


# every window holds these ids at positions 1.., so examples centred on them are slices of the stored windows
CENTRES = (1000, 1001, 1002, 1003, 1004, 1005, 2000, 2001)


def window_ids(w: int) -> np.ndarray:
    rng = np.random.default_rng(w)
    ids = np.concatenate([[50256], rng.integers(0, 50000, CONTEXT - 1)]).astype(np.int64)
    ids[1 : 1 + len(CENTRES)] = CENTRES
    return ids


def example(rng: np.random.Generator, windows: int, centre: int | None = None) -> Example:
    w, p = int(rng.integers(windows)), int(rng.integers(1, CONTEXT))
    if centre is not None:
        p = 1 + CENTRES.index(centre)
    ids = window_ids(w)
    start = max(0, p - 32)
    tokens = tuple(int(t) for t in ids[start : p + 9])
    acts = tuple(f32(a) for a in rng.normal(size=len(tokens)))
    return Example(w, p, acts[p - start], start, tokens, acts)


def neuron(layer: int, index: int, *, windows: int = 8, k: int = 5, centre: int | None = None) -> NeuronEntry:
    rng = np.random.default_rng(layer * 100_003 + index)
    examples = tuple(example(rng, windows, centre) for _ in range(k))
    share = float(rng.uniform())
    stats = NeuronStats(1000, 0.1, 0.5, 1.2, 3.4, -0.17, 4.5, share, False)
    histogram = Histogram((-0.2, 0.0, 1.0, 4.5), (10, 800, 190))
    bands = tuple(
        Band(lo, hi, 30, tuple(example(rng, windows) for _ in range(2))) for lo, hi in ((0.0, 0.5), (0.5, 1.0))
    )
    means = (TokenMean(13 + index, 2.5, 40), TokenMean(262, 1.5, 500))
    effect = LogitEffect((TokenLogit(11, 0.75), TokenLogit(12, 0.5)), (TokenLogit(99, -0.25),))
    return NeuronEntry(layer, index, examples, stats, histogram, bands, means, effect)


def head(layer: int, index: int, *, windows: int = 8, centre: int | None = None) -> HeadEntry:
    rng = np.random.default_rng(7 + layer * 31 + index)
    examples = []
    for _ in range(3):
        e = example(rng, windows, centre)
        examples.append(
            HeadExample(e.window, e.position, max(1, e.position - 1), e.activation, e.start, e.tokens, e.activations)
        )
    return HeadEntry(layer, index, tuple(examples), HeadStats(900, 0.5, 0.25, 0.125, 40, 0.0625, 30, 1.5))


def run_info(windows: int = 8, *, complete: bool = False) -> RunInfo:
    return RunInfo(
        model="tiny",
        model_digest="m" * 20,
        data="corpus",
        data_digest="d" * 20,
        manifest=json.dumps({"spec": "corpus", "train_tokens": windows * (CONTEXT - 1)}),
        split="train",
        context=CONTEXT,
        windows=windows,
        tokens=windows * (CONTEXT - 1),
        settings=(("context", CONTEXT), ("top_k", 5), ("dtype", "float32")),
        versions=versions(),
        complete=complete,
    )


def build(
    folder: Path, *, layers: int = 2, neurons: int = 6, heads: int = 2, windows: int = 8, finish: bool = True
) -> tuple[list[NeuronEntry], list[HeadEntry]]:
    """An atlas in `folder` from synthetic entries (neuron L.I has token 1000+I at the centre of its examples)."""
    store = Store.create(folder, run_info(windows), windows)
    store.commit(SeenState(np.arange(3)), windows, {w: window_ids(w) for w in range(windows)})
    made = [neuron(layer, i, windows=windows, centre=1000 + i) for layer in range(layers) for i in range(neurons)]
    made_heads = [head(layer, i, windows=windows, centre=2000 + i) for layer in range(layers) for i in range(heads)]
    if finish:
        store.complete(made, made_heads)
    store.close()
    return made, made_heads


@dataclass
class SeenState:
    """A scan state of one field."""

    seen: np.ndarray
