"""The residual stream: how its norm grows, what attention and the MLPs add, and its outlier ("massive") dims.

The stream is read at the n_layer + 1 places the logit lens also uses: after the embedding
(`blocks.0.hook_resid_pre`) and after every block (`blocks.l.hook_resid_post`, which is also
`blocks.{l+1}.hook_resid_pre`). Statistics leave out position 0 by default: in trained GPT-2 the first
position carries massive activations that would dominate every mean (use `include_first=True` to keep it).

A dim is an outlier in a state when its largest |activation| over the statistics' positions is at least
`threshold` times the median |activation| of that state (over all dims and those positions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from gpt2atlas.analysis import chance
from gpt2atlas.analysis.base import AnalysisResult
from gpt2atlas.errors import InputError
from gpt2atlas.model.gpt2 import GPT2
from gpt2atlas.model.names import act_name, residual_names

OUTLIER_THRESHOLD = 20.0
POSITION_NOTE = (
    "statistics leave out position 0 (its massive activations dominate norms and cosines); "
    "per-position tables still include it"
)


# ----- findings ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OutlierDim:
    """A dim whose peak |activation| reaches the threshold times the median; `layers` index the states."""

    dim: int
    max_abs: float
    ratio_to_median: float
    layers: list[int]


@dataclass(frozen=True)
class RatioDim:
    """A dim and its highest ratio to the median in any state (outlier or not)."""

    dim: int
    ratio_to_median: float


@dataclass(frozen=True)
class Contribution:
    """Mean norm of what one block's attention and MLP write, next to the stream they write into."""

    layer: int
    attn_out_norm: float
    mlp_out_norm: float
    resid_pre_norm: float
    attn_to_resid_ratio: float
    mlp_to_resid_ratio: float


@dataclass(frozen=True)
class ResidualFindings:
    tokens: list[str]
    token_ids: list[int]
    position_0_excluded: bool
    position_note: str
    states: list[str]
    state_hooks: list[str]
    norm_by_layer: list[float]
    norm_by_layer_definition: str
    norm_position_0: list[float]
    contributions: list[Contribution]
    outlier_dims: list[OutlierDim]  # strongest first
    outlier_threshold: float
    outlier_definition: str
    top_ratio_dims: list[RatioDim]
    outlier_ratio_chance: float
    position_0_dims: list[OutlierDim]  # empty when position 0 enters the statistics
    position_0_dims_definition: str


# ----- shared by the layernorm and journey analyses -------------------------------------------------------------
def stat_positions(n_tokens: int, include_first: bool = False) -> torch.Tensor:
    """Positions that enter statistics: all but position 0, unless asked (or the prompt is one token long)."""
    start = 0 if include_first or n_tokens == 1 else 1
    return torch.arange(start, n_tokens)


@dataclass(frozen=True)
class PositionPolicy:
    """Whether position 0 is left out of the statistics, and the findings' note saying so."""

    position_0_excluded: bool
    position_note: str


def position_policy(n_tokens: int, include_first: bool) -> PositionPolicy:
    """What the findings say about position 0."""
    excluded = not include_first and n_tokens > 1
    note = POSITION_NOTE if excluded else "statistics include position 0"
    if not include_first and n_tokens == 1:
        note = "one-token prompt: position 0 is the only position, so statistics use it"
    return PositionPolicy(excluded, note)


def state_hooks(n_layer: int) -> list[str]:
    """Hook names of the residual stream after the embedding and after every block."""
    return residual_names(n_layer)


def state_names(n_layer: int) -> list[str]:
    """Readable names of the same states: 'embed', 'block 0', ..., 'block {n_layer-1}' (after that block)."""
    return ["embed"] + [f"block {layer}" for layer in range(n_layer)]


def residual_states(
    model: GPT2, tokens: torch.Tensor, extra: Sequence[str] = ()
) -> tuple[torch.Tensor, dict, torch.Tensor]:
    """(n_layer + 1, pos, d_model) float32 residual states of the first prompt (on the CPU), the cache (with
    `extra` hooks, on the model's device) and the logits."""
    hooks = state_hooks(model.cfg.n_layer)
    logits, cache = model.run_with_cache(tokens, names=list(dict.fromkeys(hooks + list(extra))))
    return torch.stack([cache[h][0] for h in hooks]).float().cpu(), cache, logits


# ----- the residual analysis --------------------------------------------------------------------------------------
def outlier_dims(states: torch.Tensor, threshold: float = OUTLIER_THRESHOLD) -> tuple[list[OutlierDim], torch.Tensor]:
    """Outlier dims of (state, pos, d_model) activations, strongest first, and the (state, d_model) ratio table.

    ratio[s, d] = max over positions of |x[s, :, d]| / median |x[s]|. A dim is listed when its ratio clears
    `threshold` in at least one state; `layers` are the indices of those states.
    """
    magnitude = states.abs()
    median = magnitude.flatten(1).median(dim=1).values.clamp_min(torch.finfo(states.dtype).tiny)
    peak = magnitude.amax(dim=1)  # (state, d_model)
    ratio = peak / median[:, None]
    best_ratio = ratio.amax(dim=0)
    rows = []
    for dim in torch.nonzero(best_ratio >= threshold).flatten().tolist():
        rows.append(
            OutlierDim(
                dim=dim,
                max_abs=float(peak[:, dim].max()),
                ratio_to_median=float(best_ratio[dim]),
                layers=torch.nonzero(ratio[:, dim] >= threshold).flatten().tolist(),
            )
        )
    rows.sort(key=lambda r: -r.ratio_to_median)
    return rows, ratio


def position_0_dims(
    states: torch.Tensor, positions: torch.Tensor, threshold: float = OUTLIER_THRESHOLD
) -> list[OutlierDim]:
    """The massive dims of position 0, which the statistics leave out: |x[s, 0, d]| against the median |x| of the
    other positions of the same state; listed when the ratio clears `threshold` in some state, strongest first."""
    others = positions[positions != 0]
    if len(others) == 0:
        return []
    median = states[:, others].abs().flatten(1).median(dim=1).values.clamp_min(torch.finfo(states.dtype).tiny)
    first = states[:, 0].abs()  # (state, d_model)
    ratio = first / median[:, None]
    best = ratio.amax(dim=0)
    rows = [
        OutlierDim(
            dim=dim,
            max_abs=float(first[:, dim].max()),
            ratio_to_median=float(best[dim]),
            layers=torch.nonzero(ratio[:, dim] >= threshold).flatten().tolist(),
        )
        for dim in torch.nonzero(best >= threshold).flatten().tolist()
    ]
    return sorted(rows, key=lambda r: -r.ratio_to_median)


def top_ratio_dims(ratios: torch.Tensor, count: int = 10) -> list[RatioDim]:
    """The dims with the highest ratio to the median in any state, outliers or not."""
    values, dims = ratios.amax(dim=0).topk(min(count, ratios.shape[1]))
    return [RatioDim(int(d), float(v)) for v, d in zip(values, dims)]


def contributions(cache: dict, states: torch.Tensor, positions: torch.Tensor, n_layer: int) -> list[Contribution]:
    """Mean norm of what each block's attention and MLP write, next to the norm of the stream they write into."""
    rows = []
    for layer in range(n_layer):
        attn = cache[act_name("attn_out", layer)][0, positions].float().norm(dim=-1).mean()
        mlp = cache[act_name("mlp_out", layer)][0, positions].float().norm(dim=-1).mean()
        before = states[layer, positions].norm(dim=-1).mean()
        rows.append(
            Contribution(
                layer=layer,
                attn_out_norm=float(attn),
                mlp_out_norm=float(mlp),
                resid_pre_norm=float(before),
                attn_to_resid_ratio=float(attn / before),
                mlp_to_resid_ratio=float(mlp / before),
            )
        )
    return rows


class ResidualResult(AnalysisResult[ResidualFindings]):
    """Findings, plus the (state, pos) norm table and the (state, d_model) outlier-ratio table for the figures."""

    area = "residual"

    def __init__(self, findings: ResidualFindings, norms: torch.Tensor, ratios: torch.Tensor) -> None:
        super().__init__(findings)
        self.norms = norms
        self.ratios = ratios


def analyze(
    model: GPT2,
    prompt: str,
    *,
    include_first: bool = False,
    threshold: float = OUTLIER_THRESHOLD,
) -> ResidualResult:
    """Norm growth, attention/MLP contributions and outlier dims of the residual stream on `prompt`."""
    if not threshold > 1:
        raise InputError(
            f"threshold={threshold:g} must be above 1 (a multiple of the median)", arguments=("threshold",)
        )
    n_layer = model.cfg.n_layer
    tokens = model.to_tokens(prompt)
    token_ids = tokens[0].tolist()
    outputs = [act_name(f"{part}_out", layer) for layer in range(n_layer) for part in ("attn", "mlp")]
    states, cache, _ = residual_states(model, tokens, outputs)
    positions = stat_positions(len(token_ids), include_first)
    norms = states.norm(dim=-1)  # (state, pos)
    outliers, ratios = outlier_dims(states[:, positions], threshold)
    policy = position_policy(len(token_ids), include_first)
    findings = ResidualFindings(
        tokens=model.tokenizer.to_str_tokens(token_ids),
        token_ids=token_ids,
        position_0_excluded=policy.position_0_excluded,
        position_note=policy.position_note,
        states=state_names(n_layer),
        state_hooks=state_hooks(n_layer),
        norm_by_layer=norms[:, positions].mean(dim=1).tolist(),
        norm_by_layer_definition="mean L2 norm over positions of resid_pre of each layer, then resid_post of the last",
        norm_position_0=norms[:, 0].tolist(),
        contributions=contributions(cache, states, positions, n_layer),
        outlier_dims=outliers,
        outlier_threshold=threshold,
        outlier_definition=(
            "ratio_to_median = max over positions of |x[dim]| / median |x| of the same state; listed when it "
            "reaches outlier_threshold in some state; layers index `states`"
        ),
        top_ratio_dims=top_ratio_dims(ratios),
        # what Gaussian activations of the same size reach (95% of draws): the chance baseline of the ratio
        outlier_ratio_chance=chance.max_abs_over_median(states.shape[0] * len(positions) * states.shape[-1]),
        position_0_dims=position_0_dims(states, positions, threshold) if 0 not in positions.tolist() else [],
        position_0_dims_definition=(
            "for position 0, left out of the statistics: ratio_to_median = |x[0, dim]| / median |x| of the other "
            "positions of the same state; listed when it reaches outlier_threshold in some state"
        ),
    )
    return ResidualResult(findings, norms, ratios)
