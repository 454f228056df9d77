"""Where a report's numbers come from: model, weights hash, package versions, prompts, seed, date."""

from __future__ import annotations

import hashlib
import os
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import torch

from gpt2atlas.model.gpt2 import GPT2

PACKAGES = ("gpt2atlas", "torch", "numpy", "plotly", "scikit-learn", "scikit-dimension", "umap-learn", "streamlit")


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def weights_hash(model: GPT2) -> tuple[str | None, str]:
    """(weights file, sha256) when the model was loaded from a file; otherwise a hash of the tensors."""
    path = getattr(model, "weights_path", None)
    if path and os.path.isfile(path):
        return str(path), sha256_file(path)
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return None, digest.hexdigest()


def provenance(
    model: GPT2, model_id: str, *, prompts: list[str], seed: int, texts: str | None, max_texts: int, device: str
) -> dict:
    """Everything needed to reproduce (and trust) the report's numbers."""
    path, digest = weights_hash(model)
    return {
        "model": model_id,
        "source": model.source,
        "weights_file": path,
        "weights_sha256": digest,
        "weights_hash_of": "file" if path else "in-memory tensors (model not loaded from a file)",
        "config": model.cfg.to_dict(),
        "prompts": list(prompts),
        "seed": seed,
        "texts": texts or "default corpus of the geometry analysis",
        "max_texts": max_texts,
        "device": device,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "packages": package_versions(),
    }
