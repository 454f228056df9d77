"""Models that ship inside the package, so that every command works offline on a trained network.

`mini` (2 layers, 4 heads, d_model 128, context 256, GPT-2's vocabulary) was trained by
`scripts/train_mini.py` on the Python documentation (English prose) and the Python standard library, and
packed by `scripts/package_mini.py`. Its folder is a Hugging Face GPT-2 folder (config.json +
model.safetensors, float16) with a `history/` folder that tells how it learned (see
`gpt2atlas.training.history`).
"""

from __future__ import annotations

from pathlib import Path

SHIPPED_MODELS: dict[str, str] = {"mini": "gpt2atlas mini: 2 layers, trained by scripts/train_mini.py"}

# the history folder's files
HISTORY = "history"
RUN_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"
POSITIONS_FILE = "positions.safetensors"
PROBES_FILE = "probe_tokens.json"
INIT_FILE = "init.json"


ATLAS_FILE = "atlas.sqlite"


def shipped_atlas(name: str) -> Path | None:
    """The corpus atlas shipped with model `name` (`<name>_atlas/atlas.sqlite`), or None if there is none."""
    if name not in SHIPPED_MODELS:
        return None
    path = Path(__file__).parent / f"{name}_atlas" / ATLAS_FILE
    return path if path.is_file() else None


def shipped_folder(name: str) -> Path | None:
    """The folder of a shipped model, or None if `name` is not one."""
    if name not in SHIPPED_MODELS:
        return None
    return Path(__file__).parent / name
