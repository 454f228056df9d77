"""Thread settings, in one place: BLAS for numpy's small decompositions, torch's intra-op pool.

On 2 cores, a small LAPACK call right after torch's parallel matmuls fights torch's spinning OpenMP threads for
the cores (measured: 3 s instead of 0.1 s), so decompositions run on one BLAS thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from threadpoolctl import threadpool_limits


def single_thread_lapack() -> threadpool_limits:
    """A context in which numpy's BLAS/LAPACK runs on one thread."""
    return threadpool_limits(1, user_api="blas")


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """A context in which torch's intra-op pool has `n` threads (the previous count restored after)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def set_torch_threads(n: int) -> None:
    """Set torch's intra-op pool for the rest of the process (training chooses it once)."""
    torch.set_num_threads(n)
