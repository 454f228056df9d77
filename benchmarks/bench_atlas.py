"""The atlas scan's speed (issue 22, item 7) against our bare forward pass and a TransformerLens 3 loop.

GPT-2 small's shape (or mini's, `--shape mini`) with random weights, `--threads` torch threads, the same windows
(`<|endoftext|>` + `context - 1` tokens of a random stream) in batches of `BATCH_TOKENS` tokens, the same k,
one run each per round, the contenders taking turns in one process. Contenders:

  bare       our forward pass without hooks, stopped after the last block (`stop_at_layer=n_layer`: no unembedding)
  tl         TransformerLens 3.9: `run_with_cache` in `torch.inference_mode()` with `names_filter` on
             `mlp.hook_post` and `stop_at_layer=n_layers`, then `torch.topk` per neuron over each window's
             maximum (one example per window, as ours), merged batch by batch
  scan       our atlas scan (`gpt2atlas.atlas.scan`: plan, collect, merge, finish), neurons only, float32
  scan_heads the same with the heads' scores and examples
  scan_bf16  the neurons-only scan under bfloat16 autocast (its examples re-ranked in float32 by `finish`)

Each prints the seconds and CPU seconds of its pass over the windows (the scan's finish step, paid once per scan
whatever the corpus's size, shown apart), tokens/s, its ratios to `bare` and `tl`, and the share of the machine's
matmul peak (a plain fp32 and bf16 matmul measured in the same process; the model's FLOPs per token are 2 x the
blocks' weights plus causal attention's scores and mixing, 2 x 2 x n_layer x context/2 x d_model). The top-k (window, position) pairs
of tl and the scan are compared (identical sets expected), and bf16's with float32's (share of identical entries).
Where `gpt2atlas.atlas.scan` is not importable, only bare and tl run, and the bench says so.

    python benchmarks/bench_atlas.py [--shape small|mini] [--windows 16] [--context N] [--top-k 20] [--threads 2]
        [--rounds 1] [--contenders bare,tl,scan,scan_heads,scan_bf16]
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from gpt2atlas.analysis.corpus import BATCH_TOKENS
from gpt2atlas.model import GPT2, GPT2Config, save_checkpoint
from gpt2atlas.tokenizer import ENDOFTEXT_ID

SHAPES = {
    "small": GPT2Config(),  # 12 layers, 12 heads, d_model 768, context 1024
    "mini": GPT2Config(n_layer=2, n_head=4, d_model=128, n_ctx=256, d_mlp=512),
}


@dataclass(frozen=True)
class Run:
    """One contender's timed run: seconds, and its top-k as per-neuron sets of (window, position) (if it has one)."""

    seconds: float
    top: list[set[tuple[int, int]]] | None
    finish: float = 0.0  # of `seconds`, the scan's finish step (stats, bands, token means, logit effects, re-ranking)
    cpu: float = 0.0  # the process's CPU seconds over the run (steadier than wall time on a shared machine)
    finish_cpu: float = 0.0

    @property
    def pass_seconds(self) -> float:
        """The pass over the windows alone: what grows with the corpus (finish is paid once per scan)."""
        return self.seconds - self.finish

    @property
    def pass_cpu(self) -> float:
        return self.cpu - self.finish_cpu


def cpu_name() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    name = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "?")
    flags = next((line for line in out.splitlines() if line.startswith("Flags")), "")
    units = [u for u in ("avx512_bf16", "amx_bf16") if u in flags.split()]
    return f"{name} ({', '.join(units) or 'no bf16 units'})"


def matmul_peak(dtype: torch.dtype, n: int = 2048, seconds: float = 2.0) -> float:
    """TFLOP/s of a plain n x n matmul in `dtype`, the best of repeats over about `seconds`."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b  # warm-up
    best, spent = float("inf"), 0.0
    while spent < seconds:
        start = time.perf_counter()
        a @ b
        took = time.perf_counter() - start
        best, spent = min(best, took), spent + took
    return 2 * n**3 / best / 1e12


def flops_per_token(cfg: GPT2Config, context: int) -> float:
    """Forward FLOPs per token up to the last block: 2 x the blocks' weights, plus causal attention's
    scores and mixing (2 x 2 x n_layer x (context / 2) x d_model)."""
    weights = cfg.n_layer * (4 * cfg.d_model**2 + 2 * cfg.d_model * cfg.d_mlp)
    return 2 * weights + 2 * cfg.n_layer * context * cfg.d_model


def make_windows(cfg: GPT2Config, windows: int, context: int, seed: int = 0) -> np.ndarray:
    """The stream (uint16) whose windows every contender reads: window w is <|endoftext|> + stream[w(n-1):(w+1)(n-1)]."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, ENDOFTEXT_ID, size=windows * (context - 1), dtype=np.uint16)


def window_ids(stream: np.ndarray, context: int) -> np.ndarray:
    rows = len(stream) // (context - 1)
    ids = np.empty((rows, context), dtype=np.int64)
    ids[:, 0] = ENDOFTEXT_ID
    ids[:, 1:] = stream[: rows * (context - 1)].reshape(rows, context - 1)
    return ids


def batches(ids: np.ndarray) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """(window indices, ids) in batches of BATCH_TOKENS tokens, as the scan's `Windows.batches` makes them."""
    size = max(1, BATCH_TOKENS // ids.shape[1])
    for start in range(0, len(ids), size):
        yield np.arange(start, min(start + size, len(ids))), torch.from_numpy(ids[start : start + size])


def bare(model: GPT2, ids: np.ndarray, k: int) -> Run:
    start = time.perf_counter()
    with torch.inference_mode():
        for _, batch in batches(ids):
            model(batch, stop_at_layer=model.cfg.n_layer)
    return Run(time.perf_counter() - start, None)


def transformer_lens_model(model: GPT2, folder: Path):
    """TransformerLens 3.9's HookedTransformer with `model`'s weights, through transformers, unprocessed."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig
    from transformer_lens.pretrained.weight_conversions import convert_gpt2_weights
    from transformers import GPT2LMHeadModel

    save_checkpoint(model, folder)
    hf = GPT2LMHeadModel.from_pretrained(folder).eval()
    c = model.cfg
    cfg = HookedTransformerConfig(
        n_layers=c.n_layer,
        d_model=c.d_model,
        n_ctx=c.n_ctx,
        d_head=c.d_head,
        n_heads=c.n_head,
        d_mlp=c.d_mlp,
        d_vocab=c.d_vocab,
        act_fn="gelu_new",
        normalization_type="LN",
        original_architecture="GPT2LMHeadModel",
        default_prepend_bos=False,
    )
    tl = HookedTransformer(cfg)
    tl.load_and_process_state_dict(
        convert_gpt2_weights(hf, cfg),
        fold_ln=False,
        center_writing_weights=False,
        center_unembed=False,
        refactor_factored_attn_matrices=False,
        fold_value_biases=False,
    )
    return tl.eval().requires_grad_(False)


def tl_loop(tl, ids: np.ndarray, k: int) -> Run:
    """The loop a TransformerLens user writes: cache mlp.hook_post, each window's maximum per neuron (positions
    1..n-1, past the separator), torch.topk over the kept and the new windows, batch by batch."""
    n_layers = tl.cfg.n_layers
    values = [torch.full((0, tl.cfg.d_mlp), -torch.inf) for _ in range(n_layers)]
    where = [torch.zeros((0, tl.cfg.d_mlp, 2), dtype=torch.long) for _ in range(n_layers)]
    start = time.perf_counter()
    with torch.inference_mode():
        for rows, batch in batches(ids):
            _, cache = tl.run_with_cache(
                batch, names_filter=lambda name: name.endswith("mlp.hook_post"), stop_at_layer=n_layers
            )
            windows = torch.from_numpy(rows)
            for layer in range(n_layers):
                post = cache[f"blocks.{layer}.mlp.hook_post"][:, 1:]  # (rows, n - 1, d_mlp)
                best, position = post.max(dim=1)  # one example per window, at its maximum
                found = torch.stack([windows[:, None].expand_as(position), position + 1], dim=-1)
                both = torch.cat([values[layer], best])
                top = torch.topk(both, min(k, len(both)), dim=0)
                values[layer] = top.values
                where[layer] = torch.cat([where[layer], found]).gather(0, top.indices[..., None].expand(-1, -1, 2))
    seconds = time.perf_counter() - start
    top_sets = [
        {(int(w), int(p)) for w, p in where[layer][:, unit].tolist()}
        for layer in range(n_layers)
        for unit in range(tl.cfg.d_mlp)
    ]
    return Run(seconds, top_sets)


def scan_run(model: GPT2, stream: np.ndarray, context: int, k: int, *, heads: bool, dtype: str) -> Run:
    """Our scan: plan, collect batch by batch merged into one state, finish (re-ranking bf16's in float32)."""
    from gpt2atlas.atlas import scan
    from gpt2atlas.atlas.windows import Windows

    windows = Windows(stream, context)
    start = time.perf_counter()
    plan = scan.plan(model, windows, scan.ScanSettings(context=context, top_k=k, heads=heads, dtype=dtype))
    collect = scan.Collect(plan)
    state = scan.ScanState.for_plan(plan)
    for batch in windows.batches(np.arange(len(windows))):
        state = scan.merge([state, collect(model, batch)])
    finishing, finishing_cpu = time.perf_counter(), time.process_time()
    contents = scan.finish(state, model, windows, plan)
    seconds = time.perf_counter() - start
    top = [{(e.window, e.position) for e in n.examples} for n in contents.neurons]
    return Run(seconds, top, time.perf_counter() - finishing, finish_cpu=time.process_time() - finishing_cpu)


def agreement(one: list[set[tuple[int, int]]], other: list[set[tuple[int, int]]]) -> float:
    """Share of top-k entries (window, position) that both lists hold, over all neurons."""
    return sum(len(a & b) for a, b in zip(one, other)) / max(1, sum(len(a) for a in one))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="small")
    parser.add_argument("--windows", type=int, default=16)
    parser.add_argument("--context", type=int, default=0, help="window length (default: the model's context)")
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--contenders", default="bare,tl,scan,scan_heads,scan_bf16")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = SHAPES[args.shape]
    context = args.context or cfg.n_ctx
    contenders = args.contenders.split(",")
    try:
        import gpt2atlas.atlas.scan  # noqa: F401
    except ImportError as error:
        dropped = [c for c in contenders if c.startswith("scan")]
        contenders = [c for c in contenders if not c.startswith("scan")]
        print(f"gpt2atlas.atlas.scan is not importable ({error}): {', '.join(dropped) or 'nothing'} left out")

    model = GPT2(cfg).init_weights(seed=0).eval().requires_grad_(False)
    stream = make_windows(cfg, args.windows, context)
    ids = window_ids(stream, context)
    tokens = ids.size
    with tempfile.TemporaryDirectory() as tmp:
        tl = transformer_lens_model(model, Path(tmp) / "random") if "tl" in contenders else None
    runs: dict[str, Callable[[], Run]] = {
        "bare": lambda: bare(model, ids, args.top_k),
        "tl": lambda: tl_loop(tl, ids, args.top_k),
        "scan": lambda: scan_run(model, stream, context, args.top_k, heads=False, dtype="float32"),
        "scan_heads": lambda: scan_run(model, stream, context, args.top_k, heads=True, dtype="float32"),
        "scan_bf16": lambda: scan_run(model, stream, context, args.top_k, heads=False, dtype="bfloat16"),
    }
    peak32, peak16 = matmul_peak(torch.float32), matmul_peak(torch.bfloat16)
    load = os.getloadavg()
    print(
        f"torch {torch.__version__}, {args.threads} threads, CPU {cpu_name()}, load average {load[0]:.1f}\n"
        f"{args.shape} shape (random weights), {len(ids)} windows of {context} tokens = {tokens} tokens, "
        f"k={args.top_k}, batches of {BATCH_TOKENS} tokens, {args.rounds} round(s)\n"
        f"matmul peak (2048^3, same process): fp32 {peak32:.3f} TFLOP/s, bf16 {peak16:.3f} TFLOP/s; "
        f"model {flops_per_token(cfg, context) / 1e9:.3f} GFLOP/token up to the last block"
    )
    results: dict[str, list[Run]] = {c: [] for c in contenders}
    for round_ in range(args.rounds):
        for contender in contenders if round_ % 2 == 0 else contenders[::-1]:  # taking turns
            gc.collect()
            cpu = time.process_time()
            run = runs[contender]()
            results[contender].append(replace(run, cpu=time.process_time() - cpu))
            last = results[contender][-1]
            print(f"  round {round_ + 1} {contender}: {last.seconds:.2f} s wall, {last.cpu:.2f} s CPU", flush=True)
    best = {c: min(rs, key=lambda r: r.pass_seconds) for c, rs in results.items()}
    passes = {c: r.pass_seconds for c, r in best.items()}
    cpu = {c: min(r.pass_cpu for r in rs) for c, rs in results.items()}
    per_token = flops_per_token(cfg, context)
    print(
        "\nThe pass over the windows (the scan's finish step apart: paid once per scan, not per token), best of "
        f"{args.rounds} round(s):\n{'contender':<11} {'pass s':>8} {'tokens/s':>9} {'vs bare':>8} {'vs tl':>6} "
        f"{'of peak':>8} {'CPU s':>7} {'CPU vs bare':>11} {'CPU vs tl':>9} {'finish s':>9}"
    )
    for contender, seconds in passes.items():
        rate = tokens / seconds
        peak = peak16 if contender.endswith("bf16") else peak32
        share = rate * per_token / (peak * 1e12)
        ratios = [
            f"{reference[c] / reference[contender]:.2f}x" if c in reference else "-"
            for reference in (passes, cpu)
            for c in ("bare", "tl")
        ]
        print(
            f"{contender:<11} {seconds:8.2f} {rate:9.0f} {ratios[0]:>8} {ratios[1]:>6} {share:8.1%}"
            f" {cpu[contender]:7.2f} {ratios[2]:>11} {ratios[3]:>9} {best[contender].finish:9.2f}"
        )
    if "scan_bf16" in passes and "scan" in passes:
        print(
            f"scan_bf16 vs scan (float32), the pass: {passes['scan'] / passes['scan_bf16']:.2f}x wall, "
            f"{cpu['scan'] / cpu['scan_bf16']:.2f}x CPU; with finish: "
            f"{best['scan'].seconds / best['scan_bf16'].seconds:.2f}x wall"
        )
    tops = {c: rs[-1].top for c, rs in results.items() if rs[-1].top is not None}
    if "tl" in tops and "scan" in tops:
        print(f"top-k (window, position) shared by tl and scan: {agreement(tops['scan'], tops['tl']):.4%}")
    if "scan_bf16" in tops and "scan" in tops:
        print(
            f"top-k (window, position) shared by scan_bf16 and scan: {agreement(tops['scan'], tops['scan_bf16']):.4%}"
        )


if __name__ == "__main__":
    main()
