"""Saliency: which input tokens drive the logit of a target next token.

f(e) = logit of the target at the last position, as a function of the token embeddings e (the output of
`hook_embed`; position embeddings stay fixed). Baseline: e' = 0.
    gradient x input      s_i = sum_d e_id * df/de_id (e)
    integrated gradients  s_i = sum_d e_id * integral_0^1 df/de_id (alpha e) d alpha
The integral is taken by Gauss-Legendre quadrature, every node of it in a few batched forward/backward passes.
Completeness: sum_i IG_i = f(e) - f(0) up to the quadrature error, which the findings report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from gpt2atlas.analysis.base import AnalysisResult, vocab_strings
from gpt2atlas.errors import InputError
from gpt2atlas.model.gpt2 import GPT2
from gpt2atlas.model.names import act_name

# Rows of one batched forward/backward pass are capped so that the activations kept for the backward pass
# (about this many bytes per position, layer and model dimension) stay within ACTIVATION_BUDGET.
BYTES_PER_ACTIVATION = 80
ACTIVATION_BUDGET = 1 << 30


# ----- findings ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SaliencyTarget:
    """The token whose logit is explained, and how the model rates it after the prompt."""

    token: str
    token_id: int
    chosen_by: str
    position: int  # the last position, where the target's logit is read
    logit: float
    probability: float
    rank: int  # 0 = the model's top next token


@dataclass(frozen=True)
class Integration:
    """The quadrature of the integrated gradients."""

    steps: int
    rule: str


@dataclass(frozen=True)
class Completeness:
    """sum_i IG_i against f(input) - f(baseline), and the gap between them."""

    sum_integrated_gradients: float
    f_input: float
    f_baseline: float
    f_difference: float
    abs_error: float
    relative_error: float


@dataclass(frozen=True)
class SalientToken:
    """A prompt token among those with the largest |integrated gradients|."""

    position: int
    token: str
    integrated_gradients: float


@dataclass(frozen=True)
class SaliencyFindings:
    tokens: list[str]
    token_ids: list[int]
    target: SaliencyTarget
    objective: str
    attributed_to: str
    baseline: str
    gradient_x_input: list[float]  # per prompt position
    integrated_gradients: list[float]  # per prompt position
    integration: Integration
    completeness: Completeness
    most_salient: list[SalientToken]  # largest |integrated gradients| first, at most 5


def resolve_target(model: GPT2, target: str | int | None) -> int | None:
    """A user's target as one token id (None stays None: the model's top next token, found later)."""
    if target is None:
        return None
    if isinstance(target, str):
        ids = model.tokenizer.encode(target)
        if len(ids) != 1:
            pieces = model.tokenizer.to_str_tokens(ids)
            raise InputError(
                f"target={target!r} is {len(ids)} tokens {pieces}, not one; "
                "pick a single token (mind the leading space: ' Paris')",
                arguments=("target",),
            )
        return ids[0]
    if not 0 <= target < model.cfg.d_vocab:
        raise InputError(
            f"target={target} is not a token id: the vocabulary is 0..{model.cfg.d_vocab - 1}", arguments=("target",)
        )
    return int(target)


def last_logits(model: GPT2, tokens: torch.Tensor, token_embeds: torch.Tensor) -> torch.Tensor:
    """Logits at the last position (rows, d_vocab), with `hook_embed` replaced by `token_embeds` (rows, pos, d)."""

    def replace(_activation: torch.Tensor, _hook: Any) -> torch.Tensor:
        return token_embeds

    with model.hooks.attached([(act_name("embed"), replace)]):
        return model(tokens.expand(token_embeds.shape[0], -1), last_position_only=True)[:, -1]


def target_gradients(
    model: GPT2, tokens: torch.Tensor, token_embeds: torch.Tensor, target: int | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Last-position logits (rows, d_vocab), the target's logit (rows,), its gradient with respect to each row's
    token embeddings (rows, pos, d), and the target (when None: the top token of the first row)."""
    with torch.inference_mode(False), torch.enable_grad():
        embeds = token_embeds.detach().clone().requires_grad_(True)
        logits = last_logits(model, tokens, embeds)
        if target is None:
            target = int(logits[0].argmax())
        values = logits[:, target]
        (grads,) = torch.autograd.grad(values.sum(), embeds)
    return logits.detach(), values.detach(), grads, target


def gauss_legendre(steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes and weights of `steps`-point Gauss-Legendre quadrature on [0, 1]."""
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    return torch.tensor((nodes + 1) / 2), torch.tensor(weights / 2)


def _rows_per_pass(model: GPT2, n_pos: int) -> int:
    per_row = n_pos * model.cfg.n_layer * model.cfg.d_model * BYTES_PER_ACTIVATION
    return max(1, ACTIVATION_BUDGET // per_row)


@dataclass(frozen=True)
class Attributions:
    """Per-token scores for one target, with the objective at the input and at the baseline."""

    target: int
    input_logits: torch.Tensor  # (vocab,) at the last position, on the input
    gradient_x_input: torch.Tensor  # (pos,)
    integrated_gradients: torch.Tensor  # (pos,)
    f_input: float
    f_baseline: float


def attributions(model: GPT2, tokens: torch.Tensor, target: int | None, steps: int) -> Attributions:
    """Gradient x input and integrated gradients per token, f(input) and f(baseline), in as few passes as fit.

    Rows of the batch: alpha = 1 (the input: gradient x input, and the default target), alpha = 0 (the
    baseline), then the quadrature nodes.
    """
    embeds = model.W_E[tokens[0]].detach()  # (pos, d)
    nodes, weights = gauss_legendre(steps)
    alphas = torch.cat([torch.tensor([1.0, 0.0], dtype=nodes.dtype), nodes])
    chunks = list(torch.split(alphas, _rows_per_pass(model, tokens.shape[1])))
    values, grads, input_logits = [], [], None
    with tqdm(chunks, desc="integrated gradients", unit="pass", leave=False, disable=len(chunks) < 3) as bar:
        for chunk in bar:  # the bar is closed (its line cleared) when a pass fails, before the error is printed
            scaled = chunk.to(device=embeds.device, dtype=embeds.dtype)[:, None, None] * embeds
            logits, v, g, target = target_gradients(model, tokens, scaled, target)
            input_logits = logits[0].float() if input_logits is None else input_logits
            values.append(v.float())
            grads.append(g.float())
    value, grad = torch.cat(values), torch.cat(grads)  # (steps + 2,), (steps + 2, pos, d)
    per_token = (grad * embeds.float()).sum(-1)  # (steps + 2, pos): e_i . grad_i at each alpha
    integrated = (weights.to(per_token)[:, None] * per_token[2:]).sum(0)
    assert input_logits is not None and target is not None  # there is always the alpha = 1 row
    return Attributions(target, input_logits, per_token[0], integrated, float(value[0]), float(value[1]))


def _completeness(scores: Attributions) -> Completeness:
    total = float(scores.integrated_gradients.sum())
    difference = scores.f_input - scores.f_baseline
    error = abs(total - difference)
    return Completeness(
        sum_integrated_gradients=total,
        f_input=scores.f_input,
        f_baseline=scores.f_baseline,
        f_difference=difference,
        abs_error=error,
        relative_error=error / max(abs(difference), 1e-12),
    )


class SaliencyResult(AnalysisResult[SaliencyFindings]):
    area = "saliency"


# Integrated gradients converge within a few dozen quadrature points; the nodes of n points need an n x n
# eigenproblem, so a larger count only costs memory and time.
MAX_STEPS = 1000


def analyze(model: GPT2, prompt: str, *, target: str | int | None = None, steps: int = 16) -> SaliencyResult:
    """Attribute the target's logit at the last position to every input token (gradient x input and IG)."""
    if not 1 <= steps <= MAX_STEPS:
        raise InputError(f"steps={steps} must be between 1 and {MAX_STEPS}", arguments=("steps",))
    target_id = resolve_target(model, target)
    tokens = model.to_tokens(prompt)
    token_ids = tokens[0].tolist()
    str_tokens = model.tokenizer.to_str_tokens(token_ids)
    scores = attributions(model, tokens, target_id, steps)
    target_id, logits = scores.target, scores.input_logits
    probs = logits.softmax(-1)
    integrated = scores.integrated_gradients
    order = integrated.abs().argsort(descending=True).tolist()
    findings = SaliencyFindings(
        tokens=str_tokens,
        token_ids=token_ids,
        target=SaliencyTarget(
            token=vocab_strings(model)[target_id],
            token_id=target_id,
            chosen_by="the model's top next token" if target is None else "user",
            position=len(token_ids) - 1,
            logit=float(logits[target_id]),
            probability=float(probs[target_id]),
            rank=int((logits > logits[target_id]).sum()),
        ),
        objective="logit of the target token at the last position",
        attributed_to="token embeddings (output of hook_embed); position embeddings held fixed",
        baseline="all-zero token embeddings",
        gradient_x_input=scores.gradient_x_input.tolist(),
        integrated_gradients=integrated.tolist(),
        integration=Integration(steps=steps, rule="Gauss-Legendre quadrature over alpha in [0, 1]"),
        completeness=_completeness(scores),
        most_salient=[
            SalientToken(position=p, token=str_tokens[p], integrated_gradients=float(integrated[p])) for p in order[:5]
        ],
    )
    return SaliencyResult(findings)
