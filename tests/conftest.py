"""Shared fixtures: small GPT-2 checkpoints built here, in the exact Hugging Face layout."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gpt2atlas.model import GPT2, GPT2Config, save_checkpoint

TINY = GPT2Config(n_layer=2, n_head=4, d_model=64, n_ctx=128)


def random_model(cfg: GPT2Config = TINY, seed: int = 0) -> GPT2:
    """A GPT-2 of shape `cfg` with GPT-2's initialisation (normal(0, 0.02)), in float32 on the CPU."""
    return GPT2(cfg).init_weights(seed=seed).eval().requires_grad_(False)


@pytest.fixture(scope="session")
def tiny_model() -> GPT2:
    """2 layers, 4 heads, d_model 64, context 128, full 50,257-token vocabulary."""
    return random_model()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_model) -> Path:
    """`tiny_model` saved as config.json + model.safetensors."""
    return save_checkpoint(tiny_model, tmp_path_factory.mktemp("tiny") / "tiny-gpt2")


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.set_num_threads(2)
    yield
