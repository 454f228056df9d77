"""Text generation with a key/value cache: greedy, temperature, top-k and top-p sampling, several samples at once."""

from __future__ import annotations

import hashlib
import math
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

import gpt2atlas.resources as resources
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


def _sample(probs: torch.Tensor, generator: torch.Generator | Sequence[torch.Generator]) -> torch.Tensor:
    """One token per row, drawn with that row's probabilities, by inverting the cumulative distribution.

    `generator` is one generator for all rows, or one per row (each sample its own random stream, so that a
    sample does not depend on which others are drawn in the same batch).

    torch.multinomial draws an exponential variate for every vocabulary entry (7 ms for 5 x 50,257 on 2 cores);
    one uniform per row and a binary search take 0.3 ms. The running sums are float64, so that summing 50,257
    float32 probabilities does not shift any token's share. A token of probability 0 is never drawn: its
    cumulative sum equals its predecessor's, and the search returns the first index whose sum exceeds u.
    """
    cdf = probs.double().cumsum_(dim=-1)
    if isinstance(generator, torch.Generator):
        u = torch.rand(probs.shape[0], 1, generator=generator, device=probs.device, dtype=torch.float64)
    else:
        u = torch.cat([torch.rand(1, 1, generator=g, device=probs.device, dtype=torch.float64) for g in generator])
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

    The same seed gives the same samples: sample i draws from its own random stream (sample 0 from `seed`
    itself), so when the batch would not fit in memory the samples are drawn in smaller batches with the same
    result; a request whose samples alone do not fit is refused (InputError) before anything is allocated.
    Generation stops at `<|endoftext|>` (if `stop_at_eos`) or at the model's context length, whichever comes
    first; the latter is reported through `warn`.
    """
    _check_settings(max_new_tokens, temperature, top_k, top_p, num_samples)
    check_seed(seed)
    if alternatives < 0:
        raise InputError(f"alternatives={alternatives} must be 0 or more", arguments=("alternatives",))
    prompt_tokens = model.to_tokens(prompt)
    if prompt_tokens.shape[0] != 1:
        raise InputError(
            f"prompt= is a batch of {prompt_tokens.shape[0]} prompts: generate takes one; use num_samples= for "
            "several continuations",
            arguments=("prompt", "num_samples"),
        )
    n_prompt = prompt_tokens.shape[1]
    room = model.cfg.n_ctx - n_prompt
    if room <= 0:
        raise InputError(
            f"prompt= is {n_prompt} tokens and already fills the model's context of {model.cfg.n_ctx}: give at most "
            f"{model.cfg.n_ctx - 1} tokens, to leave room for new ones",
            arguments=("prompt",),
        )
    stopped_at_context = max_new_tokens > room
    batch = batch_size(model, num_samples, n_prompt, min(max_new_tokens, room), alternatives)
    if stopped_at_context:
        warn(f"stopping after {room} new tokens: the model's context is {model.cfg.n_ctx} tokens")
        max_new_tokens = room
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)

    draw = _Draw(max_new_tokens, temperature, top_k, top_p, stop_at_eos, alternatives)
    eos = model.tokenizer.eot_token_id
    new_tokens, token_probs, top_tokens, top_probs = [], [], [], []
    for first in range(0, num_samples, batch):
        samples = range(first, min(first + batch, num_samples))
        generators = [torch.Generator(device=model.device).manual_seed(sample_seed(seed, i)) for i in samples]
        tokens, probs, top_ids, top_p_values = _generate_batch(model, prompt_tokens, generators, draw)
        for i, (row, row_probs) in enumerate(zip(tokens, probs)):
            end = row.index(eos) if stop_at_eos and eos in row else len(row)
            new_tokens.append(row[:end])
            token_probs.append(row_probs[:end])
            if alternatives:
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


def sample_seed(seed: int, sample: int) -> int:
    """The seed of sample `sample`'s random stream: `seed` for the first, a hash of both for the others (so that
    seed 42's second sample is not seed 43's first)."""
    if sample == 0:
        return seed
    digest = hashlib.blake2b(f"{seed}/{sample}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


@dataclass(frozen=True)
class _Draw:
    """How each token is chosen (the settings of one `generate` call)."""

    max_new_tokens: int
    temperature: float
    top_k: int | None
    top_p: float | None
    stop_at_eos: bool
    alternatives: int


def _generate_batch(
    model: GPT2, prompt_tokens: torch.Tensor, generators: list[torch.Generator], draw: _Draw
) -> tuple[list[list[int]], list[list[float]], list, list]:
    """One batch of samples, one per generator: per sample its tokens and their probabilities, and the top
    `alternatives` (ids, probabilities) at each step (empty lists without alternatives)."""
    n = len(generators)
    eos = model.tokenizer.eot_token_id
    cache = KVCache(model, n, prompt_tokens.shape[1] + draw.max_new_tokens)
    logits = model(prompt_tokens, kv_cache=cache, last_position_only=True)[:, -1].expand(n, -1)
    n_text_tokens = model.tokenizer.vocab_size  # a padded vocabulary's extra rows (nanoGPT: 50,304) are no text

    chosen: list[torch.Tensor] = []
    chosen_probs: list[torch.Tensor] = []
    top: list[tuple[torch.Tensor, torch.Tensor]] = []
    finished = torch.zeros(n, dtype=torch.bool, device=model.device)
    for step in range(draw.max_new_tokens):
        logits = logits[:, :n_text_tokens].float()
        log_z = logits.logsumexp(dim=-1)
        if not bool(torch.isfinite(log_z).all()):
            raise AtlasError(
                f"the model's logits for new token {step + 1} are not finite (NaN or inf): in float16 "
                "GPT-2's activations can overflow; load the model in float32 or bfloat16"
            )
        if draw.temperature == 0:
            next_token = logits.argmax(dim=-1)
        else:
            scaled = logits if draw.temperature == 1 else logits / draw.temperature
            next_token = _sample(_filter_logits(scaled, draw.top_k, draw.top_p).softmax(dim=-1), generators)
        if draw.stop_at_eos:
            next_token = next_token.masked_fill(finished, eos)
        chosen.append(next_token)
        log_prob = logits.gather(-1, next_token[:, None])[:, 0] - log_z
        chosen_probs.append(log_prob.exp())
        if draw.alternatives:
            values, ids = logits.topk(min(draw.alternatives, n_text_tokens), dim=-1)
            top.append((ids, (values - log_z[:, None]).exp()))
        if draw.stop_at_eos:
            finished |= next_token == eos
            if bool(finished.all()):
                break
        if step + 1 < draw.max_new_tokens:
            logits = model(next_token[:, None], kv_cache=cache)[:, -1]

    tokens = torch.stack(chosen, dim=1).tolist()
    probs = torch.stack(chosen_probs, dim=1).tolist()
    top_ids = torch.stack([ids for ids, _ in top], dim=1).tolist() if top else []  # (sample, step, k)
    top_p_values = torch.stack([p for _, p in top], dim=1).tolist() if top else []
    return tokens, probs, top_ids, top_p_values


# Bytes per sample, besides the key/value cache, while a step runs: the vocabulary-wide rows of one step (the
# model's logits, their float32 copy, the scaled, filtered and softmaxed rows, the float64 running sums) ...
STEP_BYTES_PER_VOCAB_ENTRY = 40
# ... and per generated token kept for the result (tensors, then Python lists of ints and floats), per
# alternative as much again
RESULT_BYTES_PER_TOKEN = 128


def batch_size(model: GPT2, num_samples: int, n_prompt: int, max_new_tokens: int, alternatives: int = 0) -> int:
    """How many samples to draw at once: all of them when they fit in memory, fewer when not.

    InputError, before anything is allocated, when the results alone (num_samples x max_new_tokens) or a
    single sample's key/value cache do not fit.
    """
    cfg = model.cfg
    positions = n_prompt + max_new_tokens
    cache = 2 * cfg.n_layer * positions * cfg.d_model * model.dtype.itemsize
    activations = 4 * (8 * cfg.d_model + 2 * cfg.d_mlp + 2 * cfg.n_head * positions)
    working = cache + activations + STEP_BYTES_PER_VOCAB_ENTRY * cfg.d_vocab  # one sample, while generating
    kept = num_samples * max_new_tokens * RESULT_BYTES_PER_TOKEN * (1 + alternatives)
    on_cpu = model.device.type == "cpu"
    resources.require(  # the results, in the machine's memory, and (on the CPU) at least one sample at work
        kept + (working if on_cpu else 0),
        f"num_samples={num_samples} x max_new_tokens={max_new_tokens}",
        "num_samples= or max_new_tokens=",
        arguments=("num_samples", "max_new_tokens"),
    )
    if not on_cpu:
        resources.require(
            working,
            f"one sample of max_new_tokens={max_new_tokens} after a prompt of {n_prompt} tokens",
            "max_new_tokens=",
            arguments=("max_new_tokens",),
            device=model.device,
        )
    budget = resources.budget_bytes(model.device) - (kept if on_cpu else 0)
    return int(max(1, min(num_samples, budget // working)))
