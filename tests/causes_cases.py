"""Known answers for the causal analyses: TransformerLens on the same weights, and a GPT-2 with a circuit
planted by hand (a previous-token head in layer 0 that an induction head in layer 1 reads)."""

from __future__ import annotations

import torch

from gpt2atlas.model import GPT2, GPT2Config
from hf_utils import transformer_lens_model


def transformer_lens_twin(hf):
    """TransformerLens 3's HookedTransformer on a Hugging Face GPT-2's weights, without weight processing."""
    c = hf.config
    return transformer_lens_model(hf, c.n_layer, c.n_head, c.n_embd)


# ----- the planted circuit ------------------------------------------------------------------------------------
# Residual stream of 128 dimensions: 0..31 the token (one slot per token of PLANTED_TOKENS), 32..63 the position,
# 64..95 the previous token (written by L0H0), 96..127 unused. Every other weight keeps GPT-2's random
# initialisation, so the other heads and the MLPs write small noise that the analyses must not single out.
PLANTED_CFG = GPT2Config(n_layer=2, n_head=4, d_model=128, n_ctx=32)
TOKEN, POS, PREV = 0, 32, 64
PREVIOUS_TOKEN_HEAD = (0, 0)
INDUCTION_HEAD = (1, 0)
PLANTED_TOKENS = list(range(1000, 1032))  # 32 ordinary token ids, one slot each


def planted_model(seed: int = 0) -> GPT2:
    """A 2-layer GPT-2 whose L0H0 copies the previous token and whose L1H0 does induction.

    L0H0: query position p matches key position p - 1 (W_Q reads p, W_K reads p' and writes it at p' + 1); it
    copies the key's token into the PREV slots. L1H0: its query (the current token) matches keys whose PREV
    slots hold the same token, i.e. positions right after an earlier copy; it copies that token into the TOKEN
    slots, which the tied unembedding reads as that token's logit.
    """
    model = GPT2(PLANTED_CFG).init_weights(seed=seed, scale_residual=True).eval().requires_grad_(False)
    eye = torch.eye(32)
    with torch.no_grad():
        W_E = model.embed.W_E
        W_E[PLANTED_TOKENS] = 0.0
        W_E[PLANTED_TOKENS, TOKEN : TOKEN + 32] = eye  # tied: also each token's unembedding
        model.pos_embed.W_pos.zero_()
        model.pos_embed.W_pos[:, POS : POS + 32] = eye
        _plant_head(
            model,
            *PREVIOUS_TOKEN_HEAD,
            q=(POS, eye),
            k=(POS, torch.diag(torch.ones(31), 1)),
            v=(TOKEN, eye),
            o=(PREV, eye / 8),
        )
        _plant_head(
            model, *INDUCTION_HEAD, q=(TOKEN, 1.5 * eye), k=(PREV, 1.5 * eye), v=(TOKEN, eye), o=(TOKEN, eye / 2)
        )
    return model


def _plant_head(model: GPT2, layer: int, head: int, *, q, k, v, o) -> None:
    """Set one head's W_Q, W_K, W_V (each reading 32 residual dimensions from an offset) and W_O (writing 32)."""
    attn = model.blocks[layer].attn
    d_model, d_head = PLANTED_CFG.d_model, PLANTED_CFG.d_head
    for which, (offset, matrix) in enumerate((q, k, v)):
        columns = slice(which * d_model + head * d_head, which * d_model + (head + 1) * d_head)
        attn.W_QKV[:, columns] = 0.0
        attn.W_QKV[offset : offset + 32, columns] = matrix
        attn.b_QKV[columns] = 0.0
    offset, matrix = o
    rows = slice(head * d_head, (head + 1) * d_head)
    attn.W_O[rows] = 0.0
    attn.W_O[rows, offset : offset + 32] = matrix


def planted_pair(length: int = 8) -> tuple[list[int], list[int], int]:
    """(clean, corrupted, answer): [r_1..r_T, r_1..r_T-1] predicts r_T; the corrupted prompt changes the first
    copy of r_T-1, so no earlier position is preceded by the last token."""
    r = PLANTED_TOKENS[:length]
    clean = r + r[:-1]
    corrupted = list(clean)
    corrupted[length - 2] = PLANTED_TOKENS[length]
    return clean, corrupted, r[-1]
