"""The reading of the causes area: each component named beside the rest (the median, the runner-up) and the
direct attributions beside random directions of the unembedding space."""

from __future__ import annotations

from gpt2atlas.analysis.causes.findings import AblationFindings, AttributionCheck, CausesFindings, PatchSweep
from gpt2atlas.viz.readings.words import join_some, num, quoted

# what one component of a site is called, by the site
UNIT = {
    "resid_pre": ("residual stream entry", "residual stream entries"),
    "attn_out": ("attention output", "attention outputs"),
    "mlp_out": ("MLP output", "MLP outputs"),
    "head_out": ("head", "heads"),
    "head_out_by_pos": ("head at a position", "heads at each position"),
    "head_pattern": ("head pattern", "head patterns"),
}


def component(label: str, tokens: list[str]) -> str:
    """'L1P15' as 'layer 1 at position 15 ('_')'; head labels stay as they are."""
    if "P" not in label:
        return label
    layer, rest = label[1:].split("P")
    pos, _, head = rest.partition("H")
    where = f"layer {layer}{f' head {head}' if head else ''} at position {pos}"
    return f"{where} ({quoted(tokens[int(pos)])})" if int(pos) < len(tokens) else where


def pair_sentence(f: CausesFindings) -> str:
    p = f.pair
    what = f"the logit of {quoted(p.answer_token)}"
    if p.other_token is not None:
        what = f"the logit difference {quoted(p.answer_token)} − {quoted(p.other_token)}"
    made = (
        "the built-in induction pair (the prompt repeated, its first copy replaced by random tokens in the "
        "corrupted run)"
        if f.built_in_pair
        else "the clean and the corrupted prompt given"
    )
    text = (
        f"On {made}, {len(p.clean_tokens)} tokens each: {what} is {num(p.clean_metric)} on the clean run and "
        f"{num(p.corrupted_metric)} on the corrupted one; patching reads it normalised, 0 = corrupted, 1 = clean."
    )
    if p.clean_metric <= p.corrupted_metric:
        text += (
            " The clean run does not favour the answer more than the corrupted one, so the restored fractions "
            "below measure no circuit that makes the answer: try another pair or answer."
        )
    return text


def dla_sentences(f: CausesFindings) -> list[str]:
    a = f.attribution
    r = a.ranking
    chance = a.chance.p95_of_largest
    lead = (
        f"Direct logit attribution at position {a.position} ({quoted(a.tokens[a.position])}) splits the total "
        f"{num(a.total)}: the largest part is {r.top} with {num(r.top_value)}; the median part gives "
        f"{num(r.median)} in magnitude"
    )
    if r.runner_up is not None:
        lead += f", and the next, {r.runner_up}, {num(r.runner_up_value)}"
    verdict = (
        f"Along {a.chance.count} random directions of the unembedding space, the largest part reaches "
        f"{num(chance)} (95th percentile): "
    )
    if a.above_chance:
        verdict += f"{join_some(a.above_chance)} exceed{'s' if len(a.above_chance) == 1 else ''} that."
    else:
        verdict += f"no part exceeds that, so {r.top}'s {num(r.top_value)} is within what chance directions get."
    return [lead + ".", verdict]


def sweep_sentence(sweep: PatchSweep, tokens: list[str]) -> str:
    r = sweep.ranking
    unit, units = UNIT[sweep.site]
    text = (
        f"Patching {units} ({sweep.site}): {component(r.top, tokens)} restores {num(r.top_value)} of the clean "
        f"run's metric; the median {unit} restores {num(r.median)}"
    )
    if r.runner_up is not None:
        text += f", and no other more than {num(r.runner_up_value)} ({component(r.runner_up, tokens)})"
    return text + "."


def estimate_sentence(check: AttributionCheck, tokens: list[str]) -> str:
    text = f"Attribution patching estimates {check.site} with a correlation of {num(check.correlation)} to the real patches"
    if check.largest_disagreements:
        worst = check.largest_disagreements[0]
        text += (
            f"; it disagrees most at {component(worst.component, tokens)}: patched {num(worst.patched)}, "
            f"estimated {num(worst.estimated)}"
        )
    if check.correlation < 0.8 and check.site == "resid_pre":
        text += " (the residual stream is where the linear estimate is known to fail: a patch there changes "
        text += "everything downstream)"
    return text + "."


def ablation_sentence(a: AblationFindings) -> str:
    """The component whose zero ablation costs most, against the median and the runner-up, then mean ablation's."""
    z, m = a.zero_ranking, a.mean_ranking
    text = (
        f"Ablating over {a.tokens} tokens of {a.data} (loss {num(a.base_loss)} nats per token): setting "
        f"{z.top}'s output to zero costs the most, {num(z.top_value)} nats per token; the median component costs "
        f"{num(z.median)}"
    )
    if z.runner_up is not None:
        text += f", and no other more than {num(z.runner_up_value)} ({z.runner_up})"
    text += f". Set to its mean instead, {m.top} costs the most, {num(m.top_value)}; the median {num(m.median)}"
    if m.runner_up is not None:
        text += f", the runner-up {num(m.runner_up_value)} ({m.runner_up})"
    return text + "."


def read_causes(f: CausesFindings) -> list[str]:
    tokens = f.pair.clean_tokens
    return [
        pair_sentence(f),
        *dla_sentences(f),
        *(sweep_sentence(sweep, tokens) for sweep in f.sweeps),
        *(estimate_sentence(check, tokens) for check in f.estimates),
        *([] if f.ablation is None else [ablation_sentence(f.ablation)]),
    ]
