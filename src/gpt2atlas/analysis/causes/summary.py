"""One clean/corrupted pair measured every way: DLA, patching sweeps, and attribution patching beside them.

Without a corrupted prompt, the built-in pair tests induction: the prompt's tokens t_1..t_n, repeated as
[t_1..t_n, t_1..t_n-1] (the answer is t_n, known only from the first copy), against the same with the first
copy replaced by random tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch

from gpt2atlas.analysis.attention import default_id_range
from gpt2atlas.analysis.base import AnalysisResult
from gpt2atlas.analysis.causes.ablation import ablate
from gpt2atlas.analysis.causes.attribution import compare, estimate
from gpt2atlas.analysis.causes.dla import direct_logit_attribution
from gpt2atlas.analysis.causes.findings import CausesFindings, PatchSweep, labels, rank
from gpt2atlas.analysis.causes.inputs import SITE_AXES, Token, check_site, tokens_of
from gpt2atlas.analysis.causes.patching import sweep
from gpt2atlas.analysis.causes.setup import PatchSetup, make_setup
from gpt2atlas.errors import InputError
from gpt2atlas.model.gpt2 import GPT2, ModelInput

DEFAULT_SITES = ("resid_pre", "head_out")


def induction_pair(model: GPT2, prompt: ModelInput, seed: int = 0) -> tuple[list[int], list[int], int]:
    """(clean, corrupted, answer): [t, t without its last token] and the same with t replaced by random tokens."""
    tokens = tokens_of(model, prompt)[0].tolist()
    if len(tokens) < 2:
        raise InputError(
            f"prompt= has {len(tokens)} token: the built-in pair repeats the prompt, which needs at least 2 tokens",
            arguments=("prompt",),
        )
    if 2 * len(tokens) - 1 > model.cfg.n_ctx:
        raise InputError(
            f"prompt= has {len(tokens)} tokens: the built-in pair repeats them, which makes "
            f"{2 * len(tokens) - 1}, more than the model's context of {model.cfg.n_ctx}; give a shorter prompt or "
            "a corrupted one",
            arguments=("prompt",),
        )
    low, high = default_id_range(model)
    generator = torch.Generator().manual_seed(seed)
    replacement = torch.randint(low, high, (len(tokens),), generator=generator).tolist()
    return tokens + tokens[:-1], replacement + tokens[:-1], tokens[-1]


def sweep_findings(setup: PatchSetup, site: str, values: torch.Tensor) -> PatchSweep:
    """A sweep's values with the numbers a reading quotes (best component, median, runner-up)."""
    axes = SITE_AXES[site]
    return PatchSweep(
        site=site,
        axes=list(axes),
        values=values.tolist(),
        ranking=rank(labels(axes, values.shape), values),
        metric=setup.description(),
    )


def measure(
    model: GPT2,
    prompt: ModelInput,
    corrupted: ModelInput | None = None,
    answer: Token | None = None,
    other: Token | None = None,
    *,
    sites: Sequence[str] = DEFAULT_SITES,
    seed: int = 0,
    position: int = -1,
) -> tuple[CausesFindings, dict[str, torch.Tensor]]:
    """The findings, and attribution patching's estimate of each site (the arrays a figure sets beside them)."""
    for site in sites:
        check_site(site)
    built_in = corrupted is None
    clean: ModelInput = prompt
    if corrupted is None:
        clean, corrupted, induced = induction_pair(model, prompt, seed)
        answer = induced if answer is None else answer
    setup = make_setup(model, clean, corrupted, answer, other, None)
    attribution = direct_logit_attribution(
        model, setup.clean, setup.pair.answer, setup.pair.other, position=position, seed=seed
    )
    sweeps, estimates, estimated = [], [], {}
    for site in sites:
        values = sweep(setup, site)
        sweeps.append(sweep_findings(setup, site, values))
        estimated[site] = estimate(setup, site)
        estimates.append(compare(site, values, estimated[site]))
    return CausesFindings(attribution, setup.findings(), sweeps, estimates, built_in), estimated


def analyze(
    model: GPT2,
    prompt: ModelInput,
    corrupted: ModelInput | None = None,
    answer: Token | None = None,
    other: Token | None = None,
    *,
    sites: Sequence[str] = DEFAULT_SITES,
    seed: int = 0,
) -> CausesFindings:
    """DLA on the clean prompt, then each site patched and estimated by attribution patching."""
    return measure(model, prompt, corrupted, answer, other, sites=sites, seed=seed)[0]


class CausesResult(AnalysisResult[CausesFindings]):
    """The causes area's result: the findings, and attribution patching's estimates per site for the figures."""

    area = "causes"

    def __init__(self, findings: CausesFindings, estimated: dict[str, torch.Tensor]) -> None:
        super().__init__(findings)
        self.estimated = estimated


def analyze_pair(
    model: GPT2,
    clean: str,
    corrupted: str | None = None,
    *,
    answer: str | None = None,
    other: str | None = None,
    sites: tuple[str, ...] = DEFAULT_SITES,
    position: int = -1,
    seed: int = 0,
    data: str | None = None,
    ablation_tokens: int = 16_384,
    progress: bool = True,
) -> CausesResult:
    """The causes area: `analyze` on a clean prompt and a corrupted one (None: the built-in induction pair),
    with DLA at `position` of the clean prompt (patching's metric reads the last position); with `data` (a
    corpus as `train --data` reads it), also every head and MLP ablated over at most `ablation_tokens` of it."""
    if not sites:
        raise InputError(f"sites= names no site: give at least one of {', '.join(SITE_AXES)}", arguments=("sites",))
    if ablation_tokens < 1:
        raise InputError(f"ablation_tokens={ablation_tokens} must be at least 1", arguments=("ablation_tokens",))
    findings, estimated = measure(model, clean, corrupted, answer, other, sites=sites, seed=seed, position=position)
    if data is not None:
        findings = replace(findings, ablation=ablate(model, data, max_tokens=ablation_tokens, progress=progress))
    return CausesResult(findings, estimated)
