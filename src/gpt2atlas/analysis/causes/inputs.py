"""What every causal analysis checks first: the prompts, the answer tokens, the position, the site.

Each mistake is an InputError naming the argument at fault, so the command line can say its flag.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gpt2atlas.errors import InputError
from gpt2atlas.model.gpt2 import GPT2, Block, ModelInput

# site -> the axes of its result, in TransformerLens's order (patching.get_act_patch_*)
SITE_AXES: dict[str, tuple[str, ...]] = {
    "resid_pre": ("layer", "pos"),
    "attn_out": ("layer", "pos"),
    "mlp_out": ("layer", "pos"),
    "head_out": ("layer", "head"),
    "head_out_by_pos": ("layer", "pos", "head"),
    "head_pattern": ("layer", "head"),
}
SITES = tuple(SITE_AXES)

Token = str | int


def check_site(site: str) -> str:
    """`site` itself, or InputError listing the sites there are."""
    if site not in SITE_AXES:
        raise InputError(f"site={site} is not a patching site: choose one of {', '.join(SITES)}", arguments=("site",))
    return site


def tokens_of(model: GPT2, prompt: ModelInput, argument: str = "prompt") -> torch.Tensor:
    """One prompt as a (1, pos) tensor of token ids (a string, token ids or a (1, pos) tensor)."""
    try:
        tokens = model.to_tokens(prompt)
    except InputError as err:
        raise InputError(f"{argument}=: {err}", arguments=(argument,)) from None
    if tokens.shape[0] != 1:
        raise InputError(f"{argument} must be one prompt, got a batch of {tokens.shape[0]}", arguments=(argument,))
    return tokens


def token_id(model: GPT2, token: Token, argument: str) -> int:
    """The id of a single token given as a string (" Mary") or an id; InputError says how a string tokenizes."""
    if isinstance(token, bool):
        raise InputError(f"{argument}={token} is not a token", arguments=(argument,))
    if isinstance(token, int):
        if not 0 <= token < model.cfg.d_vocab:
            raise InputError(
                f"{argument}={token} is not a token id: the vocabulary is 0..{model.cfg.d_vocab - 1}",
                arguments=(argument,),
            )
        return token
    ids = model.tokenizer.encode(token)
    if len(ids) != 1:
        pieces = model.tokenizer.to_str_tokens(ids)
        raise InputError(
            f"{argument}={token!r} is not a single token: it tokenizes as {pieces} ({len(ids)} tokens)",
            arguments=(argument,),
        )
    return ids[0]


def check_position(position: int, n_pos: int) -> int:
    """`position` as an index 0..n_pos-1 (negative counts from the end)."""
    if not -n_pos <= position < n_pos:
        raise InputError(
            f"position={position} is out of range: the prompt has {n_pos} tokens ({-n_pos}..{n_pos - 1})",
            arguments=("position",),
        )
    return position % n_pos


def prompt_pair(model: GPT2, clean: ModelInput, corrupted: ModelInput) -> tuple[torch.Tensor, torch.Tensor]:
    """The clean and corrupted prompts as (1, pos) token tensors of the same length, not identical."""
    clean_tokens = tokens_of(model, clean, "clean")
    corrupted_tokens = tokens_of(model, corrupted, "corrupted")
    n_clean, n_corrupted = clean_tokens.shape[1], corrupted_tokens.shape[1]
    if n_clean != n_corrupted:
        raise InputError(
            f"clean and corrupted must have the same number of tokens: clean has {n_clean}, "
            f"corrupted has {n_corrupted}",
            arguments=("clean", "corrupted"),
        )
    if torch.equal(clean_tokens, corrupted_tokens):
        raise InputError(
            "clean and corrupted are the same tokens: patching one into the other changes nothing, and the "
            "normalised metric (0 = corrupted, 1 = clean) is undefined",
            arguments=("clean", "corrupted"),
        )
    return clean_tokens, corrupted_tokens


@dataclass(frozen=True)
class AnswerPair:
    """The answer token and the token it is measured against (None: the answer's logit alone)."""

    answer: int
    other: int | None

    def direction(self, model: GPT2) -> torch.Tensor:
        """The unembedding direction (d_model,) whose dot product with ln_final's output is the metric."""
        W_U = model.W_U
        column = W_U[:, self.answer]
        return column - W_U[:, self.other] if self.other is not None else column

    def of_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """The logit (difference) at the last position, one per run: logits (batch, pos, d_vocab) -> (batch,)."""
        last = logits[:, -1]
        value = last[:, self.answer]
        return value - last[:, self.other] if self.other is not None else value


def block_of(model: GPT2, layer: int) -> Block:
    """Block `layer` of the model, typed."""
    block = model.blocks[layer]
    assert isinstance(block, Block)
    return block
