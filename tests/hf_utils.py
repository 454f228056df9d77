"""Build Hugging Face GPT-2 checkpoints with random weights (the reference our model must match)."""

from __future__ import annotations

from pathlib import Path

import torch


def hf_random_checkpoint(
    folder: Path, *, n_layer=2, n_head=4, n_embd=64, n_positions=128, n_inner=None, seed=0, attn_implementation="eager"
):
    """A random GPT2LMHeadModel saved with save_pretrained; returns (model, folder)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(n_layer=n_layer, n_head=n_head, n_embd=n_embd, n_positions=n_positions, n_inner=n_inner)
    config._attn_implementation = attn_implementation
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # HF initialises LayerNorm to (1, 0) and biases to 0: perturb them so they are tested
        for name, p in model.named_parameters():
            if "ln_" in name or name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(folder)
    return model, Path(folder)
