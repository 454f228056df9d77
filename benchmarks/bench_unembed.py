"""The unembedding's two forms on GPT-2 small's shape: F.linear(x, W_E) against (W_E @ x^T)^T, by number of rows.

    python benchmarks/bench_unembed.py [--rows 1,2,5,8,32,128,256] [--threads 2] [--reps 30]

`Unembed.FEW_ROWS` (model/gpt2.py) picks the second form on the CPU up to that many rows (a generation step, the
last position's logits). Both forms run here on the same float32 W_E (50,257 x 768) and the same rows,
interleaved call by call so that a busy machine slows both alike; the median of `reps` calls is kept.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

D_VOCAB, D_MODEL = 50257, 768


def linear(x: torch.Tensor, W_E: torch.Tensor) -> torch.Tensor:
    return F.linear(x, W_E)


def transposed(x: torch.Tensor, W_E: torch.Tensor) -> torch.Tensor:
    return (W_E @ x.T).T.contiguous()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1,2,5,8,32,128,256")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    W_E = torch.randn(D_VOCAB, D_MODEL, generator=gen) * 0.02
    print(f"torch {torch.__version__}, {args.threads} threads, median of {args.reps} interleaved calls")
    print(f"{'rows':>5s} {'F.linear ms':>12s} {'W_E @ x^T ms':>13s} {'linear / transposed':>20s}")
    with torch.inference_mode():
        for rows in (int(r) for r in args.rows.split(",")):
            x = torch.randn(rows, D_MODEL, generator=gen)
            assert torch.allclose(linear(x, W_E), transposed(x, W_E), atol=1e-5)
            times: dict[str, list[float]] = {"linear": [], "transposed": []}
            for _ in range(3):  # warm-up
                linear(x, W_E), transposed(x, W_E)
            for _ in range(args.reps):
                for name, form in (("linear", linear), ("transposed", transposed)):
                    start = time.perf_counter()
                    form(x, W_E)
                    times[name].append(time.perf_counter() - start)
            a, b = (1e3 * statistics.median(times[k]) for k in ("linear", "transposed"))
            print(f"{rows:5d} {a:12.2f} {b:13.2f} {a / b:19.2f}x")


if __name__ == "__main__":
    main()
