"""Peak memory of loading a GPT-2 checkpoint: ours against Hugging Face transformers, each in a fresh process.

Writes a random checkpoint of the requested size (default gpt2-xl: 1.56 B parameters, 6.2 GB of float32)
once, then loads it and runs one short forward pass, reporting peak RSS above the interpreter's baseline.

    python benchmarks/bench_load_memory.py [--size gpt2-xl] [--folder /tmp/gpt2atlas-bench-xl]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

PROBE = """
import os, sys, torch
torch.set_num_threads(2)
folder, which = sys.argv[1], sys.argv[2]

def status(field):  # /proc/self/status belongs to this process's memory map (ru_maxrss also counts the parent's)
    return int(open("/proc/self/status").read().split(field + ":")[1].split()[0]) * 1024

base = status("VmRSS")
if which == "gpt2atlas":
    import gpt2atlas
    model = gpt2atlas.load_model(folder)
    run = lambda tokens: model(tokens)
else:
    from transformers import GPT2LMHeadModel
    model = GPT2LMHeadModel.from_pretrained(folder).eval()
    run = lambda tokens: model(tokens).logits
with torch.inference_mode():
    run(torch.arange(16)[None])
print(status("VmHWM") - base)
"""


def write_checkpoint(size: str, folder: Path) -> None:
    import torch

    from gpt2atlas.model import GPT2, PRESETS, save_checkpoint

    print(f"writing a random {size}-shaped checkpoint to {folder} ...", flush=True)
    with torch.device("meta"):
        model = GPT2(PRESETS[size])
    model = model.to_empty(device="cpu")
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.02)
    save_checkpoint(model, folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="gpt2-xl")
    parser.add_argument("--folder", type=Path, default=None)
    parser.add_argument("--skip-hf", action="store_true", help="only measure gpt2atlas")
    args = parser.parse_args()
    folder = args.folder or Path(f"/tmp/gpt2atlas-bench-{args.size}")
    if not (folder / "model.safetensors").exists():
        write_checkpoint(args.size, folder)
    weights = os.path.getsize(folder / "model.safetensors")
    print(f"{args.size}: weights file {weights / 2**30:.2f} GiB")
    for which in ["gpt2atlas"] + ([] if args.skip_hf else ["transformers"]):
        peak = int(
            subprocess.run(
                [sys.executable, "-c", PROBE, str(folder), which], capture_output=True, text=True, check=True
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        print(f"  {which:<12} peak RSS above baseline: {peak / 2**30:.2f} GiB = {peak / weights:.2f}x the weights")


if __name__ == "__main__":
    main()
