"""Peak memory of an atlas scan of the shipped `mini` model on N tokens (issue 22, item 6: memory is bounded by
neurons x k, not by the corpus).

For each N, a token stream of N tokens (Zipf-distributed ids, so that the token-means table fills as on text) is
written as a uint16 file and scanned in a fresh process that reads it through a memmap, as the driver reads a
token folder: plan, collect batch by batch merged into one state, finish. The process reports its resident-set
high-water mark (`resource.getrusage(RUSAGE_SELF).ru_maxrss`) after loading the model and at the end, so the
scan's own growth is the difference. Where `gpt2atlas.atlas.scan` is not importable, the child runs the bare
forward pass over the same windows instead and says so (the script itself is then what is tested).

    python benchmarks/atlas_memory.py [--tokens 1000000,10000000] [--threads 2] [--top-k 20] [--heads]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def write_stream(path: Path, tokens: int, seed: int = 0, chunk: int = 1 << 22) -> None:
    """N Zipf-distributed token ids below 50256 (rank r has id r - 1), written chunk by chunk as uint16."""
    rng = np.random.default_rng(seed)
    with path.open("wb") as out:
        for start in range(0, tokens, chunk):
            ids = rng.zipf(1.2, size=min(chunk, tokens - start)) - 1
            out.write(np.minimum(ids, 50255).astype(np.uint16).tobytes())


def child(stream_path: Path, threads: int, top_k: int, heads: bool) -> dict:
    """Scan the stream in this process; its memory and times as a record."""
    import torch

    from gpt2atlas import load_model

    torch.set_num_threads(threads)
    model = load_model("mini").requires_grad_(False)
    stream = np.memmap(stream_path, dtype=np.uint16, mode="r")
    loaded = peak_mb()
    start = time.perf_counter()
    try:
        from gpt2atlas.atlas import scan
        from gpt2atlas.atlas.windows import Windows
    except ImportError as error:
        what = f"bare forward pass (gpt2atlas.atlas.scan not importable: {error})"
        context = model.cfg.n_ctx
        windows = len(stream) // (context - 1)
        with torch.inference_mode():
            for first in range(0, windows, 16):
                rows = np.arange(first, min(first + 16, windows))
                ids = np.full((len(rows), context), 50256, dtype=np.int64)
                ids[:, 1:] = [stream[w * (context - 1) : (w + 1) * (context - 1)] for w in rows]
                model(torch.from_numpy(ids), stop_at_layer=model.cfg.n_layer)
    else:
        what = f"atlas scan (k={top_k}, heads={heads})"
        context = model.cfg.n_ctx
        windows = Windows(stream, context)
        plan = scan.plan(model, windows, scan.ScanSettings(context=context, top_k=top_k, heads=heads))
        collect = scan.Collect(plan)
        state = scan.ScanState.for_plan(plan)
        for batch in windows.batches(np.arange(len(windows))):
            state = scan.merge([state, collect(model, batch)])
        scan.finish(state, model, windows, plan)
    return {
        "what": what,
        "tokens": len(stream),
        "loaded_mb": loaded,
        "peak_mb": peak_mb(),
        "seconds": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", default="1000000,10000000", help="comma-separated token counts")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--heads", action="store_true", help="scan the heads too")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.threads, args.top_k, args.heads)))
        return
    print(f"mini model, {args.threads} threads; peak RSS (ru_maxrss) of a fresh process per N")
    print(f"{'tokens':>11} {'after load':>11} {'peak':>9} {'scan adds':>10} {'seconds':>8}  what")
    with tempfile.TemporaryDirectory() as tmp:
        for tokens in (int(t) for t in args.tokens.split(",")):
            path = Path(tmp) / f"stream-{tokens}.bin"
            write_stream(path, tokens)
            flags = ["--threads", str(args.threads), "--top-k", str(args.top_k)] + (["--heads"] if args.heads else [])
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(path), *flags], capture_output=True, text=True, check=True
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"{r['tokens']:>11,} {r['loaded_mb']:>8.0f} MB {r['peak_mb']:>6.0f} MB "
                f"{r['peak_mb'] - r['loaded_mb']:>7.0f} MB {r['seconds']:>8.1f}  {r['what']}"
            )
            path.unlink()


if __name__ == "__main__":
    main()
