"""Attribution patching: the linear estimate of every patch, from one clean forward pass, one corrupted forward
pass and one backward pass (Nanda 2023; Syed et al. 2023).

    estimate(component) = (clean activation - corrupted activation) . d metric / d activation  (at the corrupted run)

summed over the component's elements (a head's d_head values at every position for head_out, its whole
(query, key) pattern for head_pattern). It is exact for a metric linear in the activation and drifts where the
model is not: a saturated softmax (attention patterns, and the queries and keys feeding them) and the residual
stream, whose patches change everything downstream. AtP* (Kramar et al. 2024) recomputes the softmax exactly
for query and key patches; those sites are not offered here, so it is not implemented.
"""

from __future__ import annotations

import torch

from gpt2atlas.analysis.causes.findings import AttributionCheck, Disagreement, labels
from gpt2atlas.analysis.causes.inputs import SITE_AXES, Token, check_site
from gpt2atlas.analysis.causes.patching import cache_of, readout_of
from gpt2atlas.analysis.causes.setup import Metric, PatchSetup, make_setup
from gpt2atlas.model.gpt2 import GPT2, ModelInput
from gpt2atlas.model.hooks import HookPoint
from gpt2atlas.model.names import act_name

# the activation each site patches
ACTIVATION = {
    "resid_pre": "resid_pre",
    "attn_out": "attn_out",
    "mlp_out": "mlp_out",
    "head_out": "z",
    "head_out_by_pos": "z",
    "head_pattern": "pattern",
}


def corrupted_gradients(setup: PatchSetup, short_name: str) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Every layer's `short_name` activation on the corrupted run and the metric's gradient with respect to it."""
    model = setup.model
    kept: dict[str, torch.Tensor] = {}

    def leaf(x: torch.Tensor, hook: HookPoint) -> torch.Tensor:
        return x.detach().requires_grad_(True)  # the graph starts here: the weights need no gradient

    def keep(x: torch.Tensor, hook: HookPoint) -> None:
        x.retain_grad()
        kept[hook.name] = x

    names = [act_name(short_name, layer) for layer in range(model.cfg.n_layer)]
    with torch.enable_grad(), model.hooks.attached([(act_name("embed"), leaf), (names, keep)]):
        final = model.residual_stream(setup.corrupted)
        readout_of(setup)(final)[0].backward()
    activations = [kept[name].detach()[0] for name in names]
    gradients = [kept[name].grad[0] for name in names]  # type: ignore[index]
    return activations, gradients


def estimate(setup: PatchSetup, site: str) -> torch.Tensor:
    """The linear estimate of every patch of `site`, shaped as patching's result."""
    short_name = ACTIVATION[site]
    corrupted, gradients = corrupted_gradients(setup, short_name)
    with torch.inference_mode():
        clean = cache_of(setup.model, setup.clean, (short_name,))[short_name]
    per_layer = []
    for new, old, grad in zip(clean, corrupted, gradients, strict=True):
        product = (new - old) * grad
        if site in ("resid_pre", "attn_out", "mlp_out"):
            per_layer.append(product.sum(-1))  # (pos,)
        elif site == "head_out":
            per_layer.append(product.sum((0, 2)))  # (head,)
        elif site == "head_out_by_pos":
            per_layer.append(product.sum(-1))  # (pos, head)
        else:
            per_layer.append(product.sum((1, 2)))  # pattern (head, query, key) -> (head,)
    return torch.stack(per_layer).float()


def attribution_patch(
    model: GPT2,
    clean: ModelInput,
    corrupted: ModelInput,
    site: str,
    answer: Token | None = None,
    other: Token | None = None,
    metric: Metric | None = None,
) -> torch.Tensor:
    """The gradient estimate of `patch(model, clean, corrupted, site, ...)`, of the same shape."""
    check_site(site)
    return estimate(make_setup(model, clean, corrupted, answer, other, metric), site)


def compare(site: str, patched: torch.Tensor, estimated: torch.Tensor, top: int = 5) -> AttributionCheck:
    """Attribution patching beside the real patching: their correlation and where they disagree most."""
    names = labels(SITE_AXES[site], patched.shape)
    p, e = patched.flatten().double().cpu(), estimated.flatten().double().cpu()
    correlation = float(torch.corrcoef(torch.stack([p, e]))[0, 1]) if len(p) > 1 else float("nan")
    order = torch.argsort((e - p).abs(), descending=True, stable=True)[:top].tolist()
    return AttributionCheck(
        site=site,
        correlation=correlation,
        largest_disagreements=[Disagreement(names[i], float(p[i]), float(e[i])) for i in order],
    )
