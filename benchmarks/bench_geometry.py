"""Our TwoNN against scikit-dimension's, side by side in one process, on the same data.

The data: a 10-dimensional Gaussian rotated into 768 dimensions with a little isotropic noise (true ID 10).
Also times the exact nearest-neighbour search alone against scikit-learn's brute-force NearestNeighbors.
DADApy, the other reference implementation, cannot be installed next to our stack (it pins numpy < 2), so
scikit-dimension is the one we compare against.

    python benchmarks/bench_geometry.py [--sizes 2000 5000 20000] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch


def known_cloud(n: int, d: int = 10, ambient: int = 768, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((ambient, d)))
    return (rng.standard_normal((n, d)) @ basis.T + 1e-4 * rng.standard_normal((n, ambient))).astype(np.float32)


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 5000, 20000])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import skdim
    from sklearn.neighbors import NearestNeighbors
    from threadpoolctl import threadpool_limits

    from gpt2atlas.geometry import nearest_neighbours, twonn

    print(
        "DADApy: not installable alongside numpy 2 (it pins numpy<2); comparing against scikit-dimension "
        f"{getattr(skdim, '__version__', '?')} instead."
    )
    print(f"threads: {args.threads}; data: 10-dim Gaussian in 768 dims (true ID 10)\n")
    header = (
        f"{'points':>7} | {'ours: TwoNN':>11} {'skdim: TwoNN':>12} {'speed-up':>8} | {'ours ID':>7} "
        f"{'skdim ID':>8} | {'our kNN':>8} {'sklearn kNN':>11} {'speed-up':>8}"
    )
    print(header)
    print("-" * len(header))
    nearest_neighbours(known_cloud(200), 2)  # warm up torch
    with threadpool_limits(args.threads):
        for n in args.sizes:
            X = known_cloud(n)
            ours, t_ours = timed(lambda X=X: twonn(X, n_bootstrap=0))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                theirs, t_theirs = timed(lambda X=X: skdim.id.TwoNN(discard_fraction=0.1).fit(X).dimension_)
            _, t_knn = timed(lambda X=X: nearest_neighbours(X, 2))
            _, t_sk = timed(lambda X=X: NearestNeighbors(n_neighbors=3, algorithm="brute").fit(X).kneighbors(X))
            print(
                f"{n:>7} | {t_ours:>10.2f}s {t_theirs:>11.2f}s {t_theirs / t_ours:>7.1f}x | {ours.id:>7.3f} "
                f"{theirs:>8.3f} | {t_knn:>7.2f}s {t_sk:>10.2f}s {t_sk / t_knn:>7.1f}x",
                flush=True,
            )


if __name__ == "__main__":
    main()
