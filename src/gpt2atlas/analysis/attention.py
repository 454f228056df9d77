"""Attention heads: what every head attends to on a prompt, and which role it plays.

Per head, on the prompt (query positions q >= 1, the ones with a choice to make):
    prev_token = mean_q pattern[q, q-1]      bos  = mean_q pattern[q, 0]
    self       = mean_q pattern[q, q]        entropy = mean_q -sum_k p log p   (nats)
On a batch of random sequences repeated twice, [<|endoftext|>, r_1..r_T, r_1..r_T], over the second half
(q = T+1 .. 2T, where token q repeats token q-T):
    induction  = mean pattern[q, q-T+1]   (the token that followed the earlier copy)
    duplicate  = mean pattern[q, q-T]     (the earlier copy itself)
A head gets a role when its score clears a fixed threshold and is at least twice what a head attending
uniformly to every visible position would score on the same sequences (so short prompts name no one by chance).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from gpt2atlas.analysis.base import AnalysisResult, check_index, optional
from gpt2atlas.errors import check_seed
from gpt2atlas.model.gpt2 import GPT2
from gpt2atlas.model.names import act_name

_PATTERN_SUFFIX = act_name("pattern", 0).removeprefix("blocks.0.")

PROMPT_SCORES = ("prev_token", "bos", "entropy", "self")
REPEAT_SCORES = ("induction", "duplicate")
SCORES = PROMPT_SCORES + REPEAT_SCORES

# role -> (score it is read from, threshold). A role also needs score >= 2 x the uniform-attention baseline.
ROLE_RULES: dict[str, tuple[str, float]] = {
    "previous_token": ("prev_token", 0.5),
    "induction": ("induction", 0.3),
    "duplicate_token": ("duplicate", 0.3),
    "bos_sink": ("bos", 0.6),
}
BASELINE_FACTOR = 2.0
KEEP_ALL_PATTERNS = 1 << 24  # keep every layer's prompt patterns in one pass when they total this many floats

DEFINITIONS = {
    "prev_token": "mean over query positions q>=1 of pattern[q, q-1]",
    "bos": "mean over query positions q>=1 of pattern[q, 0] (attention to the first position)",
    "entropy": "mean over query positions q>=1 of -sum_k pattern[q,k] log pattern[q,k], in nats",
    "self": "mean over query positions q>=1 of pattern[q, q]",
    "induction": "on [eot, r_1..r_T, r_1..r_T]: mean over q=T+1..2T of pattern[q, q-T+1]",
    "duplicate": "on [eot, r_1..r_T, r_1..r_T]: mean over q=T+1..2T of pattern[q, q-T]",
}


# ----- findings ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HeadScores:
    """One head's scores (see the module's docstring; NaN where the prompt is too short to say)."""

    layer: int
    head: int
    prev_token: float
    bos: float
    entropy: float
    self: float
    induction: float
    duplicate: float

    def score(self, name: str) -> float:
        """The score called `name` (one of SCORES)."""
        if name not in SCORES:
            raise KeyError(f"unknown head score '{name}': the scores are {', '.join(SCORES)}")
        return float(getattr(self, name))


@dataclass(frozen=True)
class ScoredHead:
    """A head and one of its scores (a named role's member, or the best head on the prompt)."""

    layer: int
    head: int
    score: float


@dataclass(frozen=True)
class RoleRule:
    score: str
    threshold: float
    and_at_least: str


@dataclass(frozen=True)
class SelectedHead:
    """The head whose pattern is drawn, and why it was picked."""

    layer: int
    head: int
    chosen_by: str


@dataclass(frozen=True)
class AttentionSink:
    by_layer: list[float]
    definition: str


@dataclass(frozen=True)
class AttendedKey:
    position: int
    token: str
    weight: float


@dataclass(frozen=True)
class LastTokenAttention:
    """Where the last position looks in each layer (averaged over heads), and its top keys per layer."""

    position: int
    token: str
    by_layer: list[list[float]]
    top_keys_by_layer: list[list[AttendedKey]]
    definition: str


@dataclass(frozen=True)
class InductionTarget:
    query: int  # a position whose token appeared before
    keys: list[int]  # the positions right after its earlier copies


@dataclass(frozen=True)
class PromptInduction:
    """Induction on the prompt itself; `best`, `uniform_baseline` and `targets` only when some token repeats."""

    repeated_queries: int
    definition: str
    best: ScoredHead | None = optional()
    uniform_baseline: float | None = optional()
    targets: list[InductionTarget] | None = optional()


@dataclass(frozen=True)
class InductionSetup:
    half_length: int
    batch: int
    seed: int
    id_range: list[int]
    layout: str


@dataclass(frozen=True)
class AttentionFindings:
    tokens: list[str]
    token_ids: list[int]
    heads: list[HeadScores]  # layer-major: heads[layer * n_head + head]
    roles: dict[str, list[ScoredHead]]  # role -> its heads, strongest first
    role_rules: dict[str, RoleRule]
    uniform_baseline: dict[str, float]  # score -> what a uniformly attending head scores
    definitions: Mapping[str, str]
    selected_head: SelectedHead
    attention_sink: AttentionSink
    last_token_attention: LastTokenAttention
    prompt_induction: PromptInduction
    induction_setup: InductionSetup
    induction_token_ids: list[list[int]]


# ----- scores on patterns (pure functions of a (..., query, key) tensor) --------------------------------------
def _queries(n_pos: int) -> torch.Tensor:
    """Query positions that have a choice (q >= 1), or just 0 for a one-token prompt."""
    return torch.arange(1, n_pos) if n_pos > 1 else torch.arange(1)


def prompt_scores(patterns: torch.Tensor) -> dict[str, torch.Tensor]:
    """prev_token, bos, entropy and self of every pattern in a (..., query, key) tensor; each of shape (...)."""
    n_pos = patterns.shape[-1]
    q = _queries(n_pos)
    rows = patterns[..., q, :]
    previous = patterns[..., q, q - 1].mean(-1) if n_pos > 1 else torch.full(patterns.shape[:-2], float("nan"))
    return {
        "prev_token": previous,
        "bos": rows[..., 0].mean(-1),
        "entropy": torch.special.entr(rows).sum(-1).mean(-1),
        "self": patterns[..., q, q].mean(-1),
    }


def repeat_scores(patterns: torch.Tensor, half: int) -> dict[str, torch.Tensor]:
    """induction and duplicate scores on patterns of [bos, r_1..r_T, r_1..r_T] sequences (T = `half`)."""
    if patterns.shape[-1] != 2 * half + 1:
        raise ValueError(f"patterns cover {patterns.shape[-1]} positions, expected 2*{half}+1")
    q = torch.arange(half + 1, 2 * half + 1)
    return {
        "induction": patterns[..., q, q - half + 1].mean(-1),
        "duplicate": patterns[..., q, q - half].mean(-1),
    }


def induction_targets(token_ids: list[int]) -> list[tuple[int, list[int]]]:
    """Query positions whose token appeared earlier, each with the positions right after its earlier copies.

    Those are where an induction head looks ("... A B ... A" -> attend to B). A copy right before the query
    (A A) gives no target: the position after it is the query itself.
    """
    seen: dict[int, list[int]] = {}
    found = []
    for q, token in enumerate(token_ids):
        targets = [p + 1 for p in seen.get(token, []) if p + 1 < q]
        if targets:
            found.append((q, targets))
        seen.setdefault(token, []).append(q)
    return found


def target_mask(targets: list[tuple[int, list[int]]], n_pos: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, mask): the repeating query positions, and a (len(rows), n_pos) 0/1 mask of their targets."""
    rows = torch.tensor([q for q, _ in targets], dtype=torch.long)
    mask = torch.zeros(len(targets), n_pos)
    for i, (_, keys) in enumerate(targets):
        mask[i, keys] = 1.0
    return rows, mask


def prompt_induction_scores(patterns: torch.Tensor, rows: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per head of a (head, q, k) pattern: the attention its repeating queries put on their induction targets."""
    if len(rows) == 0:
        return torch.zeros(patterns.shape[0])
    picked = patterns[:, rows.to(patterns.device), :]
    return (picked * mask.to(picked)).sum(-1).mean(-1)


def uniform_pattern(n_pos: int) -> torch.Tensor:
    """The causal pattern of a head that spreads its attention evenly over every visible position."""
    visible = torch.ones(n_pos, n_pos).tril()
    return visible / visible.sum(-1, keepdim=True)


def uniform_baselines(n_prompt: int, half: int) -> dict[str, float]:
    """What a uniformly attending head scores on the prompt and on the repeated random sequences."""
    scores = {**prompt_scores(uniform_pattern(n_prompt)), **repeat_scores(uniform_pattern(2 * half + 1), half)}
    return {name: float(value) for name, value in scores.items()}


def name_roles(heads: list[HeadScores], baselines: Mapping[str, float]) -> dict[str, list[ScoredHead]]:
    """Heads that clearly play each role, strongest first."""
    roles: dict[str, list[ScoredHead]] = {}
    for role, (score, threshold) in ROLE_RULES.items():
        bar = max(threshold, BASELINE_FACTOR * baselines[score])
        named = [ScoredHead(row.layer, row.head, row.score(score)) for row in heads if row.score(score) >= bar]
        roles[role] = sorted(named, key=lambda r: -r.score)
    return roles


# ----- running the model ---------------------------------------------------------------------------------------
def _is_pattern(name: str) -> bool:
    return name.endswith(_PATTERN_SUFFIX)


def reduce_patterns(model: GPT2, tokens: torch.Tensor, reduce: Callable[[torch.Tensor], Any]) -> list[Any]:
    """One forward pass (no unembedding) calling `reduce(pattern)` on each layer's (batch, head, q, k) pattern.

    Only what `reduce` returns is kept, so a long prompt on a large model need not hold every layer's patterns.
    """
    reduced: list[Any] = []

    def hook(pattern: torch.Tensor, _hook: Any) -> None:
        reduced.append(reduce(pattern.float()))

    with torch.inference_mode(), model.hooks.attached([(_is_pattern, hook)]):
        model(tokens, stop_at_layer=model.cfg.n_layer)
    return reduced


def layer_patterns(model: GPT2, tokens: torch.Tensor, layer: int) -> torch.Tensor:
    """The (batch, head, q, k) patterns of one layer (the pass stops after that block)."""
    name = act_name("pattern", layer)
    _, cache = model.run_with_cache(tokens, names=[name], stop_at_layer=layer + 1)
    return cache[name].float()


def repeated_random_tokens(model: GPT2, half: int, batch: int, seed: int, id_range: tuple[int, int]) -> torch.Tensor:
    """(batch, 2*half+1) sequences [eot, r_1..r_T, r_1..r_T]; no token repeats inside r (so every repeat is planted)."""
    return repeated_sequences(model, torch.arange(*id_range), half, batch, seed)


def repeated_sequences(model: GPT2, pool: torch.Tensor, half: int, batch: int, seed: int) -> torch.Tensor:
    """[eot, r_1..r_T, r_1..r_T] rows, each r drawn from the token ids `pool` without repeats."""
    gen = torch.Generator().manual_seed(seed)
    firsts = torch.stack([pool[torch.randperm(len(pool), generator=gen)[:half]] for _ in range(batch)])
    bos = torch.full((batch, 1), model.tokenizer.eot_token_id, dtype=torch.long)
    return torch.cat([bos, firsts, firsts], dim=1)


def default_id_range(model: GPT2) -> tuple[int, int]:
    """Common multi-byte BPE tokens: past the 256 byte tokens and the earliest merges, well inside the vocabulary."""
    hi = min(20000, model.cfg.d_vocab - 1)
    return (min(1000, hi // 2), hi)


def _last_token_attention(by_layer: torch.Tensor, tokens: list[str], top: int = 5) -> LastTokenAttention:
    """Where the last position looks in each layer; `by_layer` is (layer, key), already averaged over heads."""
    top_keys = []
    for row in by_layer:
        weights, positions = row.topk(min(top, row.numel()))
        top_keys.append([AttendedKey(int(p), tokens[int(p)], float(w)) for w, p in zip(weights, positions)])
    return LastTokenAttention(
        position=len(tokens) - 1,
        token=tokens[-1],
        by_layer=by_layer.tolist(),
        top_keys_by_layer=top_keys,
        definition="pattern[last, k] averaged over the heads of each layer",
    )


def _prompt_induction(scores: torch.Tensor, targets: list[tuple[int, list[int]]]) -> PromptInduction:
    """Induction on the user's own prompt: the head that looks most at "what came after the earlier copy"."""
    definition = (
        "over query positions q whose token appeared before: mean of the attention on the "
        "positions right after its earlier copies"
    )
    if not targets:
        return PromptInduction(repeated_queries=0, definition=definition)
    layer, head = divmod(int(scores.argmax()), scores.shape[1])
    return PromptInduction(
        repeated_queries=len(targets),
        definition=definition,
        best=ScoredHead(layer, head, float(scores[layer, head])),
        uniform_baseline=sum(len(keys) / (q + 1) for q, keys in targets) / len(targets),
        targets=[InductionTarget(q, keys) for q, keys in targets],
    )


def _choose_head(heads: list[HeadScores], layer: int | None, head: int | None) -> SelectedHead:
    """The user's head, or else the clearest picture: the head (in the user's layer, if given) with top prev_token."""
    if layer is not None and head is not None:
        return SelectedHead(layer, head, "user")
    pool = [r for r in heads if (layer is None or r.layer == layer) and (head is None or r.head == head)]
    best = max(pool, key=lambda r: -1.0 if math.isnan(r.prev_token) else r.prev_token)
    where = "" if layer is None else f" in layer {layer}"
    return SelectedHead(best.layer, best.head, f"highest prev_token score{where}")


class AttentionResult(AnalysisResult[AttentionFindings]):
    """Findings, plus the selected layer's patterns on the prompt (head, q, k), the batch-mean patterns on the
    repeated random sequences (layer, head, q, k) and the best prompt-induction head's pattern, for the figures."""

    area = "attention"

    def __init__(
        self,
        findings: AttentionFindings,
        layer_patterns: torch.Tensor,
        batch_patterns: torch.Tensor,
        induction_pattern: torch.Tensor | None = None,
    ) -> None:
        super().__init__(findings)
        self.layer_patterns = layer_patterns
        self.batch_patterns = batch_patterns
        self.induction_pattern = induction_pattern  # (q, k) of the best induction head on the prompt, if it repeats


def analyze(
    model: GPT2,
    prompt: str,
    *,
    layer: int | None = None,
    head: int | None = None,
    prepend_bos: bool = False,
    repeat_half: int = 32,
    repeat_batch: int = 4,
    seed: int = 0,
) -> AttentionResult:
    """Score every head on `prompt` and on repeated random sequences, name roles, pick a head to draw."""
    check_seed(seed)
    cfg = model.cfg
    check_index(layer, cfg.n_layer, "layer")
    check_index(head, cfg.n_head, "head")
    tokens = model.to_tokens(prompt, prepend_bos=prepend_bos)
    token_ids = tokens[0].tolist()
    str_tokens = model.tokenizer.to_str_tokens(token_ids)
    keep = cfg.n_layer * cfg.n_head * len(token_ids) ** 2 <= KEEP_ALL_PATTERNS  # else re-run for the one layer
    targets = induction_targets(token_ids)
    rows, mask = target_mask(targets, len(token_ids))
    per_layer = reduce_patterns(
        model,
        tokens,
        lambda p: (
            prompt_scores(p[0]),
            p[0, :, -1, :].mean(0),
            p[0].cpu() if keep else None,
            prompt_induction_scores(p[0], rows, mask).cpu(),
        ),
    )

    half = max(2, min(repeat_half, (cfg.n_ctx - 1) // 2))
    id_range = default_id_range(model)
    random_tokens = repeated_random_tokens(model, half, repeat_batch, seed, id_range).to(model.device)
    batch_patterns = torch.stack(reduce_patterns(model, random_tokens, lambda p: p.mean(0)))  # (layer, head, q, k)

    scores = {name: torch.stack([s[name] for s, *_ in per_layer]) for name in PROMPT_SCORES}
    scores.update(repeat_scores(batch_patterns, half))
    scores = {name: values.cpu() for name, values in scores.items()}  # read one head at a time below
    heads = [
        HeadScores(l, h, **{name: float(scores[name][l, h]) for name in SCORES})
        for l in range(cfg.n_layer)
        for h in range(cfg.n_head)
    ]
    baselines = uniform_baselines(len(token_ids), half)
    selected = _choose_head(heads, layer, head)
    prompt_induction = _prompt_induction(torch.stack([p[3] for p in per_layer]), targets)
    findings = AttentionFindings(
        tokens=str_tokens,
        token_ids=token_ids,
        heads=heads,
        roles=name_roles(heads, baselines),
        role_rules={
            role: RoleRule(score=s, threshold=t, and_at_least=f"{BASELINE_FACTOR:g} x uniform_baseline")
            for role, (s, t) in ROLE_RULES.items()
        },
        uniform_baseline=baselines,
        definitions=DEFINITIONS,
        selected_head=selected,
        attention_sink=AttentionSink(
            by_layer=scores["bos"].mean(1).tolist(),
            definition="attention paid to position 0, mean over heads and query positions q>=1",
        ),
        last_token_attention=_last_token_attention(torch.stack([p[1] for p in per_layer]), str_tokens),
        prompt_induction=prompt_induction,
        induction_setup=InductionSetup(
            half_length=half,
            batch=repeat_batch,
            seed=seed,
            id_range=list(id_range),
            layout="[<|endoftext|>, r_1..r_T, r_1..r_T], no repeats inside r",
        ),
        induction_token_ids=random_tokens.tolist(),
    )

    def patterns_of(layer: int) -> torch.Tensor:
        kept = per_layer[layer][2]
        return (kept if kept is not None else layer_patterns(model, tokens, layer)[0]).cpu()

    best = prompt_induction.best
    induction = patterns_of(best.layer)[best.head] if best else None
    return AttentionResult(findings, patterns_of(selected.layer), batch_patterns.cpu(), induction)
