"""How fast `Atlas` answers on a GPT-2-small-sized atlas: 12 layers x 3,072 neurons x 20 top examples (plus 4
bands of 2 examples, 10 token means and 10 + 10 logit tokens each) and 12 x 12 heads x 20 examples, made from
synthetic entries (tests/atlas_factory.py, the tests' factory at this shape) through `Store.complete`, as a scan
writes them.

    python benchmarks/bench_atlas_store.py [--out /tmp/atlas-bench] [--repeat 200]

Prints the build time, the file's size, and the median and worst time of each question over `--repeat` random
neurons (a fresh `Atlas.open` first, so the first answers read from disk).

Measured on the 2-core machine shared with other jobs, torch 2.13, Python 3.11, SQLite from the standard
library: built in 131 s, 157 MiB; median / worst over 200 questions: open 4.3 / 12 ms, neuron 0.36 / 4.5 ms,
head 0.18 / 6.7 ms, window 0.01 / 0.07 ms, search by token 0.08 / 0.73 ms, by a 6-token text 0.25 / 4.4 ms, by
density 0.09 / 0.67 ms. The factory loads the BPE tables before the clock starts, so the first search by text no
longer pays for them (about 0.3 s once per process). The synthetic atlas of the benchmark before the factory, on
the same machine and code, the same hour: built in 80 s, 146 MiB (the 527 MiB written here before was an older
schema's), medians open 4.5, neuron 0.39, head 0.19, window 0.01, by token 0.08, by text 0.23, by density 0.09 ms.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from gpt2atlas.atlas.atlas import Atlas

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the one factory of hand-made atlases
from atlas_factory import Shape, random_heads, random_neurons, run_info, window_ids, write_atlas  # noqa: E402

LAYERS, NEURONS, HEADS = 12, 3072, 12
SHAPE = Shape(
    context=1024, windows=2000, top_k=20, head_k=20, bands=4, band_examples=2, means=10, promoted=10, suppressed=10,
    bins=64, on_the=False,
)  # fmt: skip


def build(out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    write_atlas(
        out,
        run_info(SHAPE),
        lambda w: window_ids(w, SHAPE.context),
        random_neurons(SHAPE, LAYERS, NEURONS),
        random_heads(SHAPE, LAYERS, HEADS),
    )
    return time.perf_counter() - started


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
        "window": lambda a, l, i: a.window(i % SHAPE.windows),
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
