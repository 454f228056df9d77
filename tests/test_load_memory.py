"""Loading holds one copy of the weights, not two (peak RSS measured in a fresh process)."""

import subprocess
import sys

import pytest

from conftest import random_model
from gpt2atlas.model import GPT2Config, save_checkpoint

PROBE = """
import os, sys, torch, gpt2atlas
torch.set_num_threads(1)

def high_water_mark():  # VmHWM belongs to this process's memory map; ru_maxrss would also count the parent's
    status = open("/proc/self/status").read()
    return int(status.split("VmHWM:")[1].split()[0]) * 1024

def current():
    status = open("/proc/self/status").read()
    return int(status.split("VmRSS:")[1].split()[0]) * 1024

base = current()
model = gpt2atlas.load_model(sys.argv[1], dtype=getattr(torch, sys.argv[2]))
model(torch.arange(16)[None])  # touch every weight
print((high_water_mark() - base) / os.path.getsize(os.path.join(sys.argv[1], "model.safetensors")))
"""


@pytest.mark.slow
@pytest.mark.parametrize("dtype, budget", [("float32", 1.3), ("bfloat16", 1.6)])
def test_peak_memory_stays_close_to_the_weights(tmp_path_factory, dtype, budget):
    folder = tmp_path_factory.getbasetemp() / "mem-ck"
    if not folder.exists():  # 8 layers at GPT-2-small width: 384 MB of float32 weights
        save_checkpoint(random_model(GPT2Config(n_layer=8, n_head=12, d_model=768)), folder)
    ratio = float(
        subprocess.run(
            [sys.executable, "-c", PROBE, str(folder), dtype], capture_output=True, text=True, check=True, timeout=300
        ).stdout.strip()
    )
    # float32: the weights are used straight from the memory-mapped file (+ activations); two copies would be
    # >= 2.0. bfloat16: the mapped float32 pages that were read for conversion (page cache, reclaimable) plus
    # the half-size converted copy.
    assert ratio < budget, f"peak RSS grew by {ratio:.2f}x the weights file"
