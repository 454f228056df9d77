"""One training step of our GPT-2 against Hugging Face transformers' GPT2LMHeadModel, side by side in one process.

A step is what `gpt2atlas train` does per optimizer step: forward, backward, gradient clipping at 1.0 and a
fused AdamW update with weight decay on matrices, on the same batch, shape and threads. Each library runs in
float32 and under bfloat16 autocast, and is compared in its own fastest setting. Also printed: tokens/s, peak
memory (the kernel's high-water mark during one step, above what the process held before), and the share of
this machine's measured matmul peak that the step reaches (model FLOPs: 6 x parameters + attention, per token).

    python benchmarks/bench_train.py [--shape mini|small|both] [--threads 2] [--batch 16] [--seq 256] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from bench_model import best_times

SHAPES = {"mini": (2, 4, 128), "small": (12, 12, 768)}  # n_layer, n_head, d_model


def matmul_peak(dtype: torch.dtype, size: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of a square matmul in `dtype` (this machine's practical ceiling)."""
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start)


@dataclass
class Contender:
    label: str
    step: Callable[[], float]
    dtype: torch.dtype


def training_step(model: torch.nn.Module, loss_of_batch: Callable[[], torch.Tensor]) -> Callable[[], float]:
    """One optimizer step as `gpt2atlas train` takes it: backward, clip at 1.0, fused AdamW (the same recipe)."""
    from gpt2atlas.training.recipe import TrainConfig, optimizer_for

    optimizer = optimizer_for(model, TrainConfig(adamw="fused"))

    def step() -> float:
        loss = loss_of_batch()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    return step


def ours_step(
    n_layer: int, n_head: int, d_model: int, n_ctx: int, windows: torch.Tensor, dtype: torch.dtype
) -> Callable[[], float]:
    from gpt2atlas.model import GPT2, GPT2Config
    from gpt2atlas.training.trainer import LanguageModelLoss

    model = GPT2(GPT2Config(n_layer=n_layer, n_head=n_head, d_model=d_model, n_ctx=n_ctx))
    model.init_weights(seed=0, scale_residual=True).train()
    loss_fn = LanguageModelLoss(model, dtype)
    return training_step(model, lambda: loss_fn(windows))


def hf_step(
    n_layer: int, n_head: int, d_model: int, n_ctx: int, windows: torch.Tensor, dtype: torch.dtype
) -> Callable[[], float]:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(
        GPT2Config(
            n_layer=n_layer,
            n_head=n_head,
            n_embd=d_model,
            n_positions=n_ctx,
            attn_implementation="sdpa",
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
        )
    ).train()
    inputs, labels = windows[:, :-1], windows[:, 1:]

    def loss() -> torch.Tensor:
        with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
            logits = model(inputs).logits
            return torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), labels.flatten())

    return training_step(model, loss)


def step_flops(n_layer: int, d_model: int, n_ctx: int, n_tokens: int) -> float:
    """6 x parameters (unembedding included, position embedding not) + attention's 12 x L x d x T, per token."""
    d_vocab = 50257
    parameters = n_layer * 12 * d_model**2 + d_vocab * d_model
    return n_tokens * (6 * parameters + 12 * n_layer * d_model * n_ctx)


def benchmark(shape: str, batch: int, seq: int, repeats: int, peaks: dict[torch.dtype, float]) -> None:
    n_layer, n_head, d_model = SHAPES[shape]
    windows = torch.randint(0, 50257, (batch, seq + 1), generator=torch.Generator().manual_seed(0))
    n_tokens = batch * seq
    contenders = [
        Contender(f"{lib} {name}", make(n_layer, n_head, d_model, seq, windows, dtype), dtype)
        for lib, make in (("transformers", hf_step), ("gpt2atlas", ours_step))
        for name, dtype in (("float32", torch.float32), ("bf16 autocast", torch.bfloat16))
    ]
    results = best_times([c.step for c in contenders], repeats, retained=False)
    flops = step_flops(n_layer, d_model, seq, n_tokens)
    print(
        f"\n{shape} shape: {n_layer} layers, {n_head} heads, d_model {d_model}, context {seq}, batch {batch} "
        f"({n_tokens:,} tokens per step)"
    )
    print(f"  {'':<32}{'s/step':>8}{'tokens/s':>10}{'peak MB':>9}{'of peak':>9}")
    for contender, (seconds, peak) in zip(contenders, results, strict=True):
        share = flops / seconds / peaks[contender.dtype]
        peak_mb = f"{peak / 2**20:>9.0f}" if peak is not None else f"{'':>9}"
        print(f"  {contender.label:<32}{seconds:>8.2f}{n_tokens / seconds:>10,.0f}{peak_mb}{share:>8.0%}")
    hf_best = min(range(2), key=lambda i: results[i][0])
    ours_best = min(range(2, 4), key=lambda i: results[i][0])
    (t_hf, m_hf), (t_ours, m_ours) = results[hf_best], results[ours_best]
    memory = f", {m_ours / m_hf:.2f}x its peak memory" if m_hf and m_ours is not None else ""
    print(
        f"  each at its fastest: gpt2atlas ({contenders[ours_best].label.split(' ', 1)[1]}) "
        f"{t_hf / t_ours:.2f}x the tokens/s of transformers ({contenders[hf_best].label.split(' ', 1)[1]}){memory}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=["mini", "small", "both"], default="both")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    peaks = {torch.float32: matmul_peak(torch.float32), torch.bfloat16: matmul_peak(torch.bfloat16)}
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; measured matmul peak: "
        f"float32 {peaks[torch.float32] / 1e12:.2f} TFLOP/s, bfloat16 {peaks[torch.bfloat16] / 1e12:.2f} TFLOP/s; "
        f"best of {args.repeats} interleaved rounds after one warm-up step each"
    )
    for shape in ["mini", "small"] if args.shape == "both" else [args.shape]:
        benchmark(shape, args.batch, args.seq, args.repeats, peaks)


if __name__ == "__main__":
    main()
