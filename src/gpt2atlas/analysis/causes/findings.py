"""The typed findings of the causal analyses (frozen dataclasses, written by analysis.base.to_jsonable)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from gpt2atlas.analysis.base import optional


@dataclass(frozen=True)
class Ranking:
    """How the strongest component compares with the rest: the numbers a reading against chance quotes.

    `by` says what is ranked ("value": the largest value first, as patching's restored fraction; "magnitude":
    the largest |value| first, as an attribution that may push either way). `median` is the median value of all
    components; `runner_up` the second in the ranking.
    """

    by: str
    top: str
    top_value: float
    median: float
    runner_up: str | None = optional()
    runner_up_value: float | None = optional()


def rank(names: Sequence[str], values: torch.Tensor, by: str = "value") -> Ranking:
    """The Ranking of `values` (one per name)."""
    flat = values.detach().flatten().double().cpu()
    key = flat if by == "value" else flat.abs()
    order = torch.argsort(key, descending=True, stable=True).tolist()
    second = order[1] if len(order) > 1 else None
    return Ranking(
        by=by,
        top=names[order[0]],
        top_value=float(flat[order[0]]),
        median=float(flat.median()) if by == "value" else float(flat.abs().median()),
        runner_up=names[second] if second is not None else None,
        runner_up_value=float(flat[second]) if second is not None else None,
    )


@dataclass(frozen=True)
class RandomDirections:
    """What the same parts give on random directions of the unembedding space (random tokens' unembedding
    columns, or differences of two when a logit difference is measured, each scaled to the length of the
    answer's direction): the chance an attribution has to beat."""

    count: int
    seed: int
    definition: str
    p95_by_part: list[float]  # per part (ln_final.bias aside): the 95th percentile of |attribution|
    p95_of_largest: float  # the 95th percentile, over the directions, of the largest |attribution| of any part


@dataclass(frozen=True)
class DirectAttribution:
    """Direct logit attribution at one position: `values[i]` is part `names[i]`'s share of `total`.

    The parts, in order: embed, pos_embed, then per layer L{l}H{h} for each head, L{l}.attn_bias, L{l}.mlp,
    and last ln_final.bias; they sum to `total`, the real logit (difference) of the run.
    """

    tokens: list[str]
    position: int
    answer: int
    answer_token: str
    names: list[str]
    values: list[float]
    total: float
    ranking: Ranking
    chance: RandomDirections
    above_chance: list[str]  # parts whose |value| exceeds chance.p95_of_largest
    definition: str
    other: int | None = optional()
    other_token: str | None = optional()


@dataclass(frozen=True)
class PatchSweep:
    """One activation-patching sweep: `values` has TransformerLens's shape for the site (`axes` names them)."""

    site: str
    axes: list[str]
    values: list  # nested lists, shaped by axes
    ranking: Ranking  # over every patched component (labels as L{l}H{h}, L{l}P{p}, L{l}P{p}H{h})
    metric: str


@dataclass(frozen=True)
class Disagreement:
    component: str
    patched: float
    estimated: float


@dataclass(frozen=True)
class AttributionCheck:
    """Attribution patching beside the real patching of the same site."""

    site: str
    correlation: float  # Pearson, over every component
    largest_disagreements: list[Disagreement]  # largest |estimated - patched| first


@dataclass(frozen=True)
class CausesPair:
    """The clean/corrupted pair a patching run used, and the metric's ends."""

    clean_tokens: list[str]
    corrupted_tokens: list[str]
    answer: int
    answer_token: str
    clean_metric: float  # the logit (difference) of the clean run
    corrupted_metric: float
    other: int | None = optional()
    other_token: str | None = optional()


@dataclass(frozen=True)
class ComponentAblation:
    component: str  # L{l}H{h} or L{l}.mlp
    zero: float  # loss increase (nats per token) when its output is set to 0
    mean: float  # ... when set to its mean over the corpus


@dataclass(frozen=True)
class AblationFindings:
    """Loss increase per component over a corpus, zero- and mean-ablated."""

    data: str
    tokens: int
    windows: int
    context: int
    base_loss: float
    components: list[ComponentAblation]
    zero_ranking: Ranking
    mean_ranking: Ranking
    definition: str


def labels(site_axes: Sequence[str], shape: Sequence[int]) -> list[str]:
    """One label per element of a site's result, in row-major order (L1H3, L0P4, L2P5H1)."""
    letter = {"layer": "L", "pos": "P", "head": "H"}
    out = [""]
    for axis, size in zip(site_axes, shape, strict=True):
        out = [f"{prefix}{letter[axis]}{i}" for prefix in out for i in range(size)]
    return out


@dataclass(frozen=True)
class CausesFindings:
    """Everything the causes area measures on one clean/corrupted pair."""

    attribution: DirectAttribution  # on the clean prompt, at its last position, for the pair's answer/other
    pair: CausesPair
    sweeps: list[PatchSweep]
    estimates: list[AttributionCheck]  # attribution patching beside each sweep
    built_in_pair: bool  # True when the corrupted prompt was made here (the induction pair)
    ablation: AblationFindings | None = optional()  # only when a corpus was given (`data`)
