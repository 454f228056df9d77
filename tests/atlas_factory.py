"""The one factory of hand-made atlases (no model, no scan), for the store, export and view tests and for
benchmarks/bench_atlas_store.py.

Everything is cut from windows of token ids the way a scan cuts it: an example is its window's tokens from
CONTEXT_BEFORE before its position to CONTEXT_AFTER after it. Two recipes use the same pieces:
- `random_neurons` / `random_heads` / `build`: seeded entries of any `Shape`, written to a database with `Store`
  (the store and export tests at a small shape, the benchmark at GPT-2 small's); every window holds CENTRES at
  positions 1.., so a unit built with `centre=t` has all its top examples on token t;
- `fake_atlas`: a `MemoryAtlas` with things planted for the views' readings to find (see its docstring).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from gpt2atlas.atlas.entries import (
    CONTEXT_AFTER,
    CONTEXT_BEFORE,
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
from gpt2atlas.atlas.reader import MemoryAtlas, RunSummary
from gpt2atlas.atlas.store import RunInfo, Store, versions
from gpt2atlas.tokenizer import ENDOFTEXT_ID, VOCAB_SIZE, Tokenizer


# ----- the pieces ------------------------------------------------------------------------------------------------
def f32(x: float) -> float:
    """A float that a float32 column keeps exactly."""
    return float(np.float32(x))


def example(ids: np.ndarray, w: int, position: int, value: Callable[[int], float]) -> Example:
    """The example at `position` of window `w` (ids `ids`), `value(i)` the activation on its token i."""
    start, stop = max(0, position - CONTEXT_BEFORE), min(len(ids), position + CONTEXT_AFTER + 1)
    acts = tuple(value(i) for i in range(start, stop))
    return Example(w, position, acts[position - start], start, tuple(int(t) for t in ids[start:stop]), acts)


def head_example(
    ids: np.ndarray, w: int, query: int, key: int, weight: float, value: Callable[[int], float]
) -> HeadExample:
    """The query at `query` of window `w` putting `weight` on `key`; `value(i)` its attention on token i."""
    e = example(ids, w, query, value)
    return HeadExample(w, query, key, weight, e.start, e.tokens, e.activations)


@dataclass
class SeenState:
    """A scan state of one field (the store saves and loads whatever dataclass of arrays it is given)."""

    seen: np.ndarray


@dataclass(frozen=True)
class Shape:
    """How big a random atlas is: its windows, and how much each unit keeps."""

    context: int = 16
    windows: int = 8
    top_k: int = 5
    head_k: int = 3
    bands: int = 2
    band_examples: int = 2
    means: int = 2
    promoted: int = 2
    suppressed: int = 1
    bins: int = 3
    on_the: bool = True  # every neuron's second token mean is on ' the' (262); else all are drawn at random


def run_info(shape: Shape, *, complete: bool = False) -> RunInfo:
    tokens = shape.windows * (shape.context - 1)
    return RunInfo(
        model="tiny",
        model_digest="m" * 20,
        data="corpus",
        data_digest="d" * 20,
        manifest=json.dumps({"spec": "corpus", "train_tokens": tokens}),
        split="train",
        context=shape.context,
        windows=shape.windows,
        tokens=tokens,
        settings=(("context", shape.context), ("top_k", shape.top_k), ("dtype", "float32")),
        versions=versions(),
        complete=complete,
    )


def write_atlas(
    folder: Path,
    run: RunInfo,
    windows: Callable[[int], np.ndarray],
    neurons: Iterable[NeuronEntry],
    heads: Iterable[HeadEntry],
    *,
    finish: bool = True,
    commit_every: int = 500,
) -> None:
    """An atlas database in `folder`, as a scan writes it: the windows committed in steps, then the entries."""
    store = Store.create(folder, run, run.windows)
    for first in range(0, run.windows, commit_every):
        done = min(run.windows, first + commit_every)
        store.commit(SeenState(np.arange(3)), done, {w: windows(w) for w in range(first, done)})
    if finish:
        store.complete(neurons, heads)
    store.close()


def memory_atlas(
    run: RunSummary,
    windows: Mapping[int, np.ndarray],
    neurons: Iterable[NeuronEntry],
    heads: Iterable[HeadEntry],
    token_counts: Mapping[int, int],
) -> MemoryAtlas:
    """The same entries held in memory; the atlas's shape is read off them."""
    by_unit = {(n.layer, n.index): n for n in neurons}
    by_head = {(h.layer, h.index): h for h in heads}
    layers = 1 + max(layer for layer, _ in [*by_unit, *by_head])
    per_layer = 1 + max(i for _, i in by_unit)
    per_head = 1 + max((i for _, i in by_head), default=-1)
    return MemoryAtlas(run, by_unit, by_head, windows, token_counts, layers, per_layer, per_head)


# ----- random atlases (the store, export and benchmark) -------------------------------------------------------------
# every window holds these ids at positions 1.., so examples centred on them are slices of the stored windows
CENTRES = (1000, 1001, 1002, 1003, 1004, 1005, 2000, 2001)


def window_ids(w: int, context: int = Shape.context) -> np.ndarray:
    """Window w of a random atlas: <|endoftext|>, CENTRES, then ids drawn with seed w."""
    return _window_ids(w, context).copy()


@lru_cache(maxsize=4096)
def _window_ids(w: int, context: int) -> np.ndarray:
    rng = np.random.default_rng(w)
    ids = np.concatenate([[ENDOFTEXT_ID], rng.integers(0, 50000, context - 1)]).astype(np.int64)
    ids[1 : 1 + len(CENTRES)] = CENTRES
    return ids


def _random_example(rng: np.random.Generator, shape: Shape, centre: int | None) -> Example:
    w, p = int(rng.integers(shape.windows)), int(rng.integers(1, shape.context))
    if centre is not None:
        p = 1 + CENTRES.index(centre)
    start = max(0, p - CONTEXT_BEFORE)
    values = rng.normal(size=min(shape.context, p + CONTEXT_AFTER + 1) - start)
    return example(_window_ids(w, shape.context), w, p, lambda i: f32(values[i - start]))


def random_neuron(layer: int, index: int, shape: Shape = Shape(), centre: int | None = None) -> NeuronEntry:
    """A seeded neuron: `shape.top_k` examples (on `centre` when given), every statistic fixed but the active
    share; token means on 13 + index, then 262 (' the'), then random tokens (all random without `on_the`)."""
    rng = np.random.default_rng(layer * 100_003 + index)
    examples = tuple(_random_example(rng, shape, centre) for _ in range(shape.top_k))
    share = float(rng.uniform())
    stats = NeuronStats(1000, 0.1, 0.5, 1.2, 3.4, -0.17, 4.5, share, False)
    counts = np.random.default_rng(index).integers(0, 1000, shape.bins)
    histogram = Histogram(tuple(np.linspace(-0.2, 4.5, shape.bins + 1).tolist()), tuple(counts.tolist()))
    edges = np.linspace(0.0, 1.0, shape.bands + 1).tolist()
    bands = tuple(
        Band(lo, hi, 30, tuple(_random_example(rng, shape, None) for _ in range(shape.band_examples)))
        for lo, hi in zip(edges, edges[1:], strict=False)
    )
    drawn = np.random.default_rng((layer, index)).integers(0, VOCAB_SIZE, shape.means).tolist()
    tokens = [13 + index, 262, *drawn][: shape.means] if shape.on_the else drawn
    means = tuple(TokenMean(t, 2.5 - j, 40 + 460 * j) for j, t in enumerate(tokens))
    effect = LogitEffect(
        tuple(TokenLogit(11 + j, 0.75 * (2 / 3) ** j) for j in range(shape.promoted)),
        tuple(TokenLogit(99 + j, -0.25 * (2 / 3) ** j) for j in range(shape.suppressed)),
    )
    return NeuronEntry(layer, index, examples, stats, histogram, bands, means, effect)


def random_head(layer: int, index: int, shape: Shape = Shape(), centre: int | None = None) -> HeadEntry:
    """A seeded head: `shape.head_k` examples (their queries on `centre` when given), each on the token before."""
    rng = np.random.default_rng(7 + layer * 31 + index)
    examples = []
    for _ in range(shape.head_k):
        e = _random_example(rng, shape, centre)
        key = max(1, e.position - 1)
        examples.append(HeadExample(e.window, e.position, key, e.activation, e.start, e.tokens, e.activations))
    return HeadEntry(layer, index, tuple(examples), HeadStats(900, 0.5, 0.25, 0.125, 40, 0.0625, 30, 1.5))


def random_neurons(shape: Shape, layers: int, per_layer: int, centred: bool = False) -> Iterator[NeuronEntry]:
    """Every neuron, one at a time (an atlas of GPT-2 small's shape is too big to hold); `centred`: neuron L.I's
    examples all on token 1000 + I."""
    for layer in range(layers):
        for i in range(per_layer):
            yield random_neuron(layer, i, shape, 1000 + i if centred else None)


def random_heads(shape: Shape, layers: int, per_layer: int, centred: bool = False) -> Iterator[HeadEntry]:
    """Every head; `centred`: head L.I's queries all on token 2000 + I."""
    for layer in range(layers):
        for i in range(per_layer):
            yield random_head(layer, i, shape, 2000 + i if centred else None)


def build(
    folder: Path, *, layers: int = 2, neurons: int = 6, heads: int = 2, windows: int = 8, finish: bool = True
) -> tuple[list[NeuronEntry], list[HeadEntry]]:
    """A small atlas in `folder` (neuron L.I has token 1000+I at the centre of its examples, head L.I 2000+I)."""
    shape = Shape(windows=windows)
    made = list(random_neurons(shape, layers, neurons, centred=True))
    made_heads = list(random_heads(shape, layers, heads, centred=True))
    write_atlas(folder, run_info(shape), window_ids, made, made_heads, finish=finish)
    return made, made_heads


# ----- a planted atlas (the views) -------------------------------------------------------------------------------
TOKENIZER = Tokenizer()
FAKE_CONTEXT = 64
POSITIONS = 10_000
DOT = TOKENIZER.encode(".")[0]
HOSTILE_TEXT = "<script>alert(1)</script>"
HOSTILE = TOKENIZER.encode(HOSTILE_TEXT)  # several tokens: '<', 'script', '>', ...
TAG = HOSTILE[0]  # '<'
ROCKS = TOKENIZER.encode(" rocks")[0]
PLANTED_WINDOWS = 20


def fake_window(w: int) -> np.ndarray:
    return _fake_window(w).copy()


@lru_cache(maxsize=64)
def _fake_window(w: int) -> np.ndarray:
    """Window w: <|endoftext|>, a sentence, a '.' at 40, the hostile text at 20, ' rocks' twice."""
    base = TOKENIZER.encode(f" The spiral number {w} sat on the old grey rocks and the rocks were cold")
    ids = [ENDOFTEXT_ID] + (base * 8)[: FAKE_CONTEXT - 1]
    ids[40] = DOT
    ids[20 : 20 + len(HOSTILE)] = HOSTILE
    return np.asarray(ids, dtype=np.int64)


def _planted_example(w: int, position: int, activation: float, shape: float = 0.1) -> Example:
    return example(_fake_window(w), w, position, lambda i: activation if i == position else shape * ((i * 7) % 5 - 1))


def _planted_neuron(layer: int, index: int, position: int, top: float, active: float) -> NeuronEntry:
    examples = tuple(_planted_example(w, position, top - 0.01 * w) for w in range(PLANTED_WINDOWS))
    stats = NeuronStats(POSITIONS, 0.05, 0.3, 4.0, 20.0, -0.17, top, active, False)
    edges = tuple(float(x) for x in np.linspace(-0.17, top, 11))
    histogram = Histogram(edges, (5000, 3000, 1000, 500, 200, 150, 100, 30, 15, 5))
    bands = (
        Band(0.0, 0.25, 900, (_planted_example(30, 12, 0.2 * top), _planted_example(31, 13, 0.1 * top))),
        Band(0.25, 0.5, 60, (_planted_example(32, 14, 0.4 * top),)),
        Band(0.5, 0.75, 25, ()),
        Band(0.75, 1.0, 15, (_planted_example(33, position, 0.8 * top),)),
    )
    means = (TokenMean(int(examples[0].tokens[examples[0].offset]), 0.9 * top, 400), TokenMean(ROCKS, 0.2, 300))
    effect = LogitEffect(
        (TokenLogit(ROCKS, 1.5), TokenLogit(TAG, 1.2)),
        (TokenLogit(DOT, -1.1), TokenLogit(HOSTILE[1], -0.9)),
    )
    return NeuronEntry(layer, index, examples, stats, histogram, bands, means, effect)


def _looking_at(key: int, query: int) -> Callable[[int], float]:
    """A query's attention: 0.8 on `key`, 0.2 / CONTEXT_BEFORE on every other token up to the query, 0 after."""
    return lambda i: (0.8 if i == key else 0.2 / CONTEXT_BEFORE) if i <= query else 0.0


def _planted_head(layer: int, index: int) -> HeadEntry:
    """Every query at 50 looks at the latest ' rocks' before it (0.8), the rest spread evenly over the window."""
    examples = []
    for w in range(5):
        ids = _fake_window(w)
        query = 50
        key = next(i for i in range(query - 1, 0, -1) if ids[i] == ROCKS)
        examples.append(head_example(ids, w, query, key, 0.8 - 0.01 * w, _looking_at(key, query)))
    return HeadEntry(layer, index, tuple(examples), HeadStats(60_000, 0.05, 0.3, 0.2, 4000, 0.45, 3000, 1.7))


def fake_atlas(neurons_per_layer: int = 8) -> MemoryAtlas:
    """Two layers of `neurons_per_layer` neurons (256: the shape of conftest's tiny model) and 4 heads, with
    - neuron L1N5: its 20 top examples all sit on '.', which is 4% of the corpus's 10,000 positions (400 of them);
      active on 2% of the positions;
    - neuron L0N3: its top examples sit on a hostile token ('<script>' ...), to check every piece escapes it;
    - every head (L1H2 among them): looks at the token after an earlier copy (an induction head), its examples'
      key on ' rocks';
    the other neurons quiet."""
    neurons = {
        (layer, i): _planted_neuron(layer, i, 33, 0.5, 0.4) for layer in range(2) for i in range(neurons_per_layer)
    }
    neurons[1, 5] = _planted_neuron(1, 5, 40, 3.0, 0.02)  # on '.' at 40
    neurons[0, 3] = _planted_neuron(0, 3, 20, 2.0, 0.1)  # on '<' of the hostile text
    heads = [_planted_head(layer, h) for layer in range(2) for h in range(4)]
    windows = {w: fake_window(w) for w in range(40)}
    summary = RunSummary("fake-mini", POSITIONS, 160, PLANTED_WINDOWS)
    return memory_atlas(summary, windows, neurons.values(), heads, {DOT: 400})
