"""Build Hugging Face GPT-2 checkpoints with random weights, and TransformerLens models of them (our references)."""

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


def transformer_lens_model(hf, n_layer, n_head, d_model, *, use_attn_result=False):
    """TransformerLens 3.9's HookedTransformer with `hf`'s weights, loaded without weight processing."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig
    from transformer_lens.pretrained.weight_conversions import convert_gpt2_weights

    cfg = HookedTransformerConfig(
        n_layers=n_layer,
        d_model=d_model,
        n_ctx=hf.config.n_positions,
        d_head=d_model // n_head,
        n_heads=n_head,
        d_mlp=4 * d_model,
        d_vocab=hf.config.vocab_size,
        act_fn="gelu_new",
        normalization_type="LN",
        original_architecture="GPT2LMHeadModel",
        default_prepend_bos=False,
        use_attn_result=use_attn_result,
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
    return tl.eval()
