"""Text generation with a key/value cache: greedy, temperature, top-k and top-p sampling, several samples at once."""

from __future__ import annotations

import math
import random
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from gpt2atlas.errors import AtlasError, InputError, check_seed

if TYPE_CHECKING:
    from gpt2atlas.model.gpt2 import GPT2, ModelInput


class KVCache:
    """Keys and values of every layer for the tokens seen so far, preallocated to `max_len` positions.

    The prompt may be run once with batch 1: its keys and values are broadcast to all `batch` rows.
    """

    def __init__(self, model: GPT2, batch: int, max_len: int) -> None:
        cfg = model.cfg
        shape = (cfg.n_layer, batch, cfg.n_head, max_len, cfg.d_head)
        self.keys = torch.empty(shape, device=model.device, dtype=model.dtype)
        self.values = torch.empty(shape, device=model.device, dtype=model.dtype)
        self.length = 0

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the new keys/values of `layer`; return all keys/values the new queries may attend to."""
        end = self.length + k.shape[-2]
        self.keys[layer, :, :, self.length : end] = k
        self.values[layer, :, :, self.length : end] = v
        if self.length == 0:  # the prompt attends to itself only: no need to read the cache back
            return k, v
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]

    def advance(self, n_tokens: int) -> None:
        self.length += n_tokens


@dataclass
class GenerationResult:
    """Prompt, samples and the probability the model gave each chosen token."""

    prompt_tokens: list[int]
    new_tokens: list[list[int]]  # per sample, up to and excluding <|endoftext|>
    token_probs: list[list[float]]  # per sample, softmax(logits) of each chosen token (temperature 1)
    texts: list[str]  # per sample: the decoded new tokens
    seed: int | None
    stopped_at_context: bool = False
    settings: dict = field(default_factory=dict)
    # with `alternatives=k`: per sample, per step, the k most likely tokens and their probabilities (temperature
    # 1, before top-k/top-p): the distribution each token was drawn from
    top_tokens: list[list[list[int]]] = field(default_factory=list)
    top_probs: list[list[list[float]]] = field(default_factory=list)


# The nucleus (top-p) set is found among this many most likely tokens when they already hold top_p of the
# mass, which is the usual case: a top-k takes 1 ms where sorting 5 x 50,257 logits takes 12 ms (2 cores).
NUCLEUS_CANDIDATES = 1024


def _filter_logits(logits: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """Mask (with -inf) the tokens outside the top-k and outside the smallest set holding top_p of the mass."""
    vocab = logits.shape[-1]
    if top_k is not None and top_k > 0 and top_k < vocab:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        probs = logits.softmax(dim=-1)
        sorted_probs, order = probs.topk(min(NUCLEUS_CANDIDATES, vocab), dim=-1)
        if sorted_probs.shape[-1] < vocab and not bool((sorted_probs.sum(-1) >= top_p).all()):
            sorted_probs, order = probs.sort(dim=-1, descending=True)
        mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
        keep_sorted = mass_before < top_p  # the most likely token is always kept
        keep = torch.zeros_like(probs, dtype=torch.bool).scatter_(-1, order, keep_sorted)
        logits = logits.masked_fill(~keep, float("-inf"))
    return logits


def _sample(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One token per row, drawn with that row's probabilities, by inverting the cumulative distribution.

    torch.multinomial draws an exponential variate for every vocabulary entry (7 ms for 5 x 50,257 on 2 cores);
    one uniform per row and a binary search take 0.3 ms. The running sums are float64, so that summing 50,257
    float32 probabilities does not shift any token's share. A token of probability 0 is never drawn: its
    cumulative sum equals its predecessor's, and the search returns the first index whose sum exceeds u.
    """
    cdf = probs.double().cumsum_(dim=-1)
    u = torch.rand(probs.shape[0], 1, generator=generator, device=probs.device, dtype=torch.float64)
    index = torch.searchsorted(cdf, u * cdf[:, -1:], right=True)
    return index.clamp_(max=probs.shape[-1] - 1)[:, 0]


def _check_settings(max_new_tokens: int, temperature: float, top_k: int | None, top_p: float | None, n: int) -> None:
    """One line per setting that does not fit, naming it, its value and what it may be."""
    if max_new_tokens < 1:
        raise InputError(f"max_new_tokens={max_new_tokens} must be at least 1", arguments=("max_new_tokens",))
    if not (math.isfinite(temperature) and temperature >= 0):
        raise InputError(
            f"temperature={temperature} must be a finite number >= 0 (0 means greedy)", arguments=("temperature",)
        )
    if top_k is not None and top_k < 0:
        raise InputError(f"top_k={top_k} must be >= 0 (0 or None: no limit)", arguments=("top_k",))
    if top_p is not None and not 0 < top_p <= 1:
        raise InputError(f"top_p={top_p} must be in (0, 1]", arguments=("top_p",))
    if n < 1:
        raise InputError(f"num_samples={n} must be at least 1", arguments=("num_samples",))


@torch.inference_mode()
def generate(
    model: GPT2,
    prompt: ModelInput,
    max_new_tokens: int = 30,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    num_samples: int = 1,
    stop_at_eos: bool = True,
    alternatives: int = 0,
    warn=lambda msg: print(msg, file=sys.stderr),
) -> GenerationResult:
    """Sample `num_samples` continuations of `prompt` as one batch (temperature 0: greedy).

    `alternatives=k` also keeps, at every step, the k most likely next tokens with their probabilities.

    The same seed gives the same samples. Generation stops at `<|endoftext|>` (if `stop_at_eos`) or at the
    model's context length, whichever comes first; the latter is reported through `warn`.
    """
    _check_settings(max_new_tokens, temperature, top_k, top_p, num_samples)
    check_seed(seed)
    if alternatives < 0:
        raise InputError(f"alternatives={alternatives} must be 0 or more", arguments=("alternatives",))
    prompt_tokens = model.to_tokens(prompt)
    if prompt_tokens.shape[0] != 1:
        raise InputError("generate takes one prompt; use num_samples for several continuations")
    n_prompt = prompt_tokens.shape[1]
    room = model.cfg.n_ctx - n_prompt
    if room <= 0:
        raise InputError(f"the prompt already fills the model's context of {model.cfg.n_ctx} tokens")
    stopped_at_context = max_new_tokens > room
    if stopped_at_context:
        warn(f"stopping after {room} new tokens: the model's context is {model.cfg.n_ctx} tokens")
        max_new_tokens = room

    generator = torch.Generator(device=model.device)
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    generator.manual_seed(seed)
    eos = model.tokenizer.eot_token_id
    cache = KVCache(model, num_samples, n_prompt + max_new_tokens)
    logits = model(prompt_tokens, kv_cache=cache, last_position_only=True)[:, -1].expand(num_samples, -1)

    n_text_tokens = model.tokenizer.vocab_size  # a padded vocabulary's extra rows (nanoGPT: 50,304) are no text

    chosen: list[torch.Tensor] = []
    chosen_probs: list[torch.Tensor] = []
    top: list[tuple[torch.Tensor, torch.Tensor]] = []
    finished = torch.zeros(num_samples, dtype=torch.bool, device=model.device)
    for step in range(max_new_tokens):
        logits = logits[:, :n_text_tokens].float()
        log_z = logits.logsumexp(dim=-1)
        if not bool(torch.isfinite(log_z).all()):
            raise AtlasError(
                f"the model's logits for new token {step + 1} are not finite (NaN or inf): in float16 "
                "GPT-2's activations can overflow; load the model in float32 or bfloat16"
            )
        if temperature == 0:
            next_token = logits.argmax(dim=-1)
        else:
            scaled = logits if temperature == 1 else logits / temperature
            next_token = _sample(_filter_logits(scaled, top_k, top_p).softmax(dim=-1), generator)
        if stop_at_eos:
            next_token = next_token.masked_fill(finished, eos)
        chosen.append(next_token)
        log_prob = logits.gather(-1, next_token[:, None])[:, 0] - log_z
        chosen_probs.append(log_prob.exp())
        if alternatives:
            values, ids = logits.topk(min(alternatives, n_text_tokens), dim=-1)
            top.append((ids, (values - log_z[:, None]).exp()))
        if stop_at_eos:
            finished |= next_token == eos
            if bool(finished.all()):
                break
        if step + 1 < max_new_tokens:
            logits = model(next_token[:, None], kv_cache=cache)[:, -1]

    tokens = torch.stack(chosen, dim=1).tolist()
    probs = torch.stack(chosen_probs, dim=1).tolist()
    top_ids = torch.stack([ids for ids, _ in top], dim=1).tolist() if top else []  # (sample, step, k)
    top_p_values = torch.stack([p for _, p in top], dim=1).tolist() if top else []
    new_tokens, token_probs, top_tokens, top_probs = [], [], [], []
    for i, (row, row_probs) in enumerate(zip(tokens, probs)):
        end = row.index(eos) if stop_at_eos and eos in row else len(row)
        new_tokens.append(row[:end])
        token_probs.append(row_probs[:end])
        if top:
            top_tokens.append(top_ids[i][:end])
            top_probs.append(top_p_values[i][:end])
    return GenerationResult(
        prompt_tokens=prompt_tokens[0].tolist(),
        new_tokens=new_tokens,
        token_probs=token_probs,
        texts=[model.tokenizer.decode(row) for row in new_tokens],
        seed=seed,
        stopped_at_context=stopped_at_context,
        settings=dict(
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            num_samples=num_samples,
            stop_at_eos=stop_at_eos,
        ),
        top_tokens=top_tokens,
        top_probs=top_probs,
    )
