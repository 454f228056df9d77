"""A made-up atlas for the views' tests: hand-made entries in a MemoryAtlas, with things planted to find.

- neuron L1N5: its 20 top examples all sit on '.', which is 4% of the corpus's 10,000 positions (400 of them);
  active on 2% of the positions;
- neuron L0N3: its top examples sit on a hostile token ('<script>' ...), to check every piece escapes it;
- head L1H2: looks at the token after an earlier copy (an induction head), its examples' key on ' rocks'.
"""

from __future__ import annotations

from functools import lru_cache

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
from gpt2atlas.atlas.reader import MemoryAtlas, RunSummary
from gpt2atlas.tokenizer import ENDOFTEXT_ID, Tokenizer

TOKENIZER = Tokenizer()
CONTEXT = 64
POSITIONS = 10_000
DOT = TOKENIZER.encode(".")[0]
HOSTILE_TEXT = "<script>alert(1)</script>"
HOSTILE = TOKENIZER.encode(HOSTILE_TEXT)  # several tokens: '<', 'script', '>', ...
TAG = HOSTILE[0]  # '<'
ROCKS = TOKENIZER.encode(" rocks")[0]
PLANTED_WINDOWS = 20


def window_ids(w: int) -> np.ndarray:
    return _window_ids(w).copy()


@lru_cache(maxsize=64)
def _window_ids(w: int) -> np.ndarray:
    """Window w: <|endoftext|>, a sentence, a '.' at 40, the hostile text at 20, ' rocks' twice."""
    base = TOKENIZER.encode(f" The spiral number {w} sat on the old grey rocks and the rocks were cold")
    ids = [ENDOFTEXT_ID] + (base * 8)[: CONTEXT - 1]
    ids[40] = DOT
    ids[20 : 20 + len(HOSTILE)] = HOSTILE
    return np.asarray(ids, dtype=np.int64)


def example(w: int, position: int, activation: float, shape: float = 0.1) -> Example:
    ids = window_ids(w)
    start = max(0, position - 32)
    stop = min(CONTEXT, position + 9)
    acts = tuple(activation if i == position else shape * ((i * 7) % 5 - 1) for i in range(start, stop))
    return Example(w, position, activation, start, tuple(int(t) for t in ids[start:stop]), acts)


def neuron(layer: int, index: int, position: int, top: float, active: float) -> NeuronEntry:
    examples = tuple(example(w, position, top - 0.01 * w) for w in range(PLANTED_WINDOWS))
    stats = NeuronStats(POSITIONS, 0.05, 0.3, 4.0, 20.0, -0.17, top, active, False)
    edges = tuple(float(x) for x in np.linspace(-0.17, top, 11))
    histogram = Histogram(edges, (5000, 3000, 1000, 500, 200, 150, 100, 30, 15, 5))
    bands = (
        Band(0.0, 0.25, 900, (example(30, 12, 0.2 * top), example(31, 13, 0.1 * top))),
        Band(0.25, 0.5, 60, (example(32, 14, 0.4 * top),)),
        Band(0.5, 0.75, 25, ()),
        Band(0.75, 1.0, 15, (example(33, position, 0.8 * top),)),
    )
    means = (TokenMean(int(examples[0].tokens[examples[0].offset]), 0.9 * top, 400), TokenMean(ROCKS, 0.2, 300))
    effect = LogitEffect(
        (TokenLogit(ROCKS, 1.5), TokenLogit(TAG, 1.2)),
        (TokenLogit(DOT, -1.1), TokenLogit(HOSTILE[1], -0.9)),
    )
    return NeuronEntry(layer, index, examples, stats, histogram, bands, means, effect)


def head(layer: int, index: int) -> HeadEntry:
    examples = []
    for w in range(5):
        ids = window_ids(w)
        query = 50
        key = next(i for i in range(query - 1, 0, -1) if ids[i] == ROCKS)
        start = query - 32
        acts = tuple(
            (0.8 if i == key else 0.2 / (query - start)) if i <= query else 0.0 for i in range(start, query + 9)
        )
        examples.append(
            HeadExample(w, query, key, 0.8 - 0.01 * w, start, tuple(int(t) for t in ids[start : query + 9]), acts)
        )
    stats = HeadStats(60_000, 0.05, 0.3, 0.2, 4000, 0.45, 3000, 1.7)
    return HeadEntry(layer, index, tuple(examples), stats)


def fake_atlas(neurons_per_layer: int = 8) -> MemoryAtlas:
    """Two layers of `neurons_per_layer` neurons (256: the shape of conftest's tiny model) and 4 heads; the planted
    units as above, the others quiet."""
    neurons = {(layer, i): neuron(layer, i, 33, 0.5, 0.4) for layer in range(2) for i in range(neurons_per_layer)}
    neurons[1, 5] = neuron(1, 5, 40, 3.0, 0.02)  # on '.' at 40
    neurons[0, 3] = neuron(0, 3, 20, 2.0, 0.1)  # on '<' of the hostile text
    heads = {(layer, h): head(layer, h) for layer in range(2) for h in range(4)}
    windows = {w: window_ids(w) for w in range(40)}
    counts = {DOT: 400}
    return MemoryAtlas(
        RunSummary("fake-mini", POSITIONS, 160, PLANTED_WINDOWS),
        neurons,
        heads,
        windows,
        counts,
        2,
        neurons_per_layer,
        4,
    )
