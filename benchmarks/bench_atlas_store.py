"""How fast `Atlas` answers on a GPT-2-small-sized atlas: 12 layers x 3,072 neurons x 20 top examples (plus 4
bands of 2 examples, 10 token means and 10 + 10 logit tokens each) and 12 x 12 heads x 20 examples, made from
synthetic entries through `Store.complete`, as a scan writes them.

    python benchmarks/bench_atlas_store.py [--out /tmp/atlas-bench] [--repeat 200]

Prints the build time, the file's size, and the median and worst time of each question over `--repeat` random
neurons (a fresh `Atlas.open` first, so the first answers read from disk).

Measured on the 2-core machine shared with other jobs, torch 2.13, Python 3.11, SQLite from the standard
library: built in 109 s, 527 MiB; median / worst over 200 questions: open 8.6 / 19 ms, neuron 0.29 / 8.4 ms,
head 0.11 / 8.3 ms, window 0.01 / 0.26 ms, search by token 0.12 / 4.3 ms, by a 7-token text 0.25 / 298 ms (the
worst is the first call, which loads the BPE tables once), by density 0.09 / 8.3 ms.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gpt2atlas.atlas.atlas import Atlas
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

LAYERS, NEURONS, HEADS, K, CONTEXT, WINDOWS = 12, 3072, 12, 20, 1024, 2000


def _example(rng: np.random.Generator) -> Example:
    w, p = int(rng.integers(WINDOWS)), int(rng.integers(1, CONTEXT))
    start = max(0, p - 32)
    n = min(CONTEXT, p + 9) - start
    tokens = tuple(rng.integers(0, 50257, n).tolist())
    acts = tuple(rng.normal(size=n).astype(np.float32).tolist())
    return Example(w, p, acts[p - start], start, tokens, acts)


def neurons(seed: int = 0):
    rng = np.random.default_rng(seed)
    for layer in range(LAYERS):
        for index in range(NEURONS):
            examples = tuple(_example(rng) for _ in range(K))
            stats = NeuronStats(2_000_000, 0.1, 0.5, 1.0, 3.0, -0.17, 5.0, float(rng.uniform()), False)
            histogram = Histogram(tuple(np.linspace(-0.2, 5, 65).tolist()), tuple(rng.integers(0, 1000, 64).tolist()))
            bands = tuple(Band(b / 4, (b + 1) / 4, 100, (_example(rng), _example(rng))) for b in range(4))
            means = tuple(TokenMean(int(t), 1.0, 50) for t in rng.integers(0, 50257, 10))
            effect = LogitEffect(
                tuple(TokenLogit(int(t), 1.0) for t in rng.integers(0, 50257, 10)),
                tuple(TokenLogit(int(t), -1.0) for t in rng.integers(0, 50257, 10)),
            )
            yield NeuronEntry(layer, index, examples, stats, histogram, bands, means, effect)


def heads(seed: int = 1):
    rng = np.random.default_rng(seed)
    for layer in range(LAYERS):
        for index in range(HEADS):
            examples = []
            for _ in range(K):
                e = _example(rng)
                examples.append(HeadExample(e.window, e.position, 1, e.activation, e.start, e.tokens, e.activations))
            yield HeadEntry(layer, index, tuple(examples), HeadStats(10**6, 0.1, 0.5, 0.1, 10, 0.1, 10, 2.0))


def build(out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    run = RunInfo(
        "synthetic",
        "-",
        "synthetic",
        "-",
        "{}",
        "train",
        CONTEXT,
        WINDOWS,
        WINDOWS * (CONTEXT - 1),
        (("top_k", K),),
        versions(),
    )
    store = Store.create(out, run, WINDOWS)
    rng = np.random.default_rng(2)
    for first in range(0, WINDOWS, 500):
        ids = {w: rng.integers(0, 50257, CONTEXT) for w in range(first, first + 500)}
        store.commit(_Empty(), first + 500, ids)
    store.complete(neurons(), heads())
    store.close()
    return time.perf_counter() - started


@dataclass
class _Empty:
    """A scan state with no fields (the benchmark times reading, not the scan)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/atlas-bench"))
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--reuse", action="store_true", help="keep an atlas already built in --out")
    args = parser.parse_args()
    if not (args.reuse and (args.out / "atlas.sqlite").is_file()):
        print(f"built in {build(args.out):.0f} s")
    print(f"atlas.sqlite: {(args.out / 'atlas.sqlite').stat().st_size / 2**20:.0f} MiB")
    rng = np.random.default_rng(3)
    questions = {
        "open": lambda a, l, i: Atlas.open(args.out).close(),
        "neuron": lambda a, l, i: a.neuron(l, i),
        "head": lambda a, l, i: a.head(l, i % HEADS),
        "window": lambda a, l, i: a.window(i % WINDOWS),
        "search token": lambda a, l, i: a.search(token=int(rng.integers(50257))),
        "search text": lambda a, l, i: a.search(text=" the cat sat on the mat"),
        "search density": lambda a, l, i: a.search(min_density=0.01, max_density=0.02),
    }
    with Atlas.open(args.out) as atlas:
        for name, ask in questions.items():
            times = []
            for _ in range(args.repeat):
                layer, index = int(rng.integers(LAYERS)), int(rng.integers(NEURONS))
                started = time.perf_counter()
                ask(atlas, layer, index)
                times.append(time.perf_counter() - started)
            print(f"{name:16s} median {statistics.median(times) * 1e3:7.2f} ms   worst {max(times) * 1e3:7.2f} ms")


if __name__ == "__main__":
    main()
