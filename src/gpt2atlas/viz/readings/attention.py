"""The reading of the attention heads and their roles."""

from __future__ import annotations

import math
from collections.abc import Callable

from gpt2atlas.analysis.attention import BASELINE_FACTOR, AttentionFindings
from gpt2atlas.viz.readings.words import (
    head_label,
    join_some,
    num,
    pct,
    quoted,
    sentences_from,
    versus_chance,
)

_ROLE_NAMES = {
    "previous_token": "previous-token",
    "induction": "induction",
    "duplicate_token": "duplicate-token",
    "bos_sink": "BOS/sink",
}


def read_attention(f: AttentionFindings) -> list[str]:
    heads = f.heads

    def roles() -> str:
        said = []
        for role, members in f.roles.items():
            if members:
                named = (f"{head_label(m)} ({num(m.score)})" for m in members)
                said.append(f"{_ROLE_NAMES.get(role, role.replace('_', ' '))} heads: {join_some(named)}")
        if not said:
            return (
                "No head clears the bar for a named role (previous-token, induction, duplicate-token or "
                "sink: a fixed threshold and twice a uniform head's score)."
            )
        return "Named roles — " + "; ".join(said) + "."

    def top(score: str, label: str) -> Callable[[], str | None]:
        def say() -> str | None:
            scored = [r for r in heads if not math.isnan(r.score(score))]
            if not scored:
                return None  # no head has this score (e.g. no query position with a choice)
            best = max(scored, key=lambda r: r.score(score))
            said = f"Strongest {label} score: {head_label(best)} ({num(best.score(score))})"
            uniform = f.uniform_baseline.get(score)
            if uniform is None:
                return said + "."
            return f"{said}; a head attending uniformly scores {num(uniform)}."

        return say

    def prompt_induction() -> str:
        found = f.prompt_induction
        best, uniform = found.best, found.uniform_baseline
        if best is None or uniform is None:
            return "The prompt repeats no token, so induction is measured on repeated random sequences only."
        return (
            f"On the prompt, {found.repeated_queries} token(s) repeat an earlier one; there {head_label(best)} puts "
            f"{num(best.score)} of its attention on the token that followed the earlier copy (induction), a "
            f"uniform head {num(uniform)}: {versus_chance(best.score >= BASELINE_FACTOR * uniform)}."
        )

    def sink() -> str:
        by_layer = f.attention_sink.by_layer
        peak = max(range(len(by_layer)), key=lambda i: by_layer[i])
        uniform = f.uniform_baseline.get("bos")
        said = (
            f"Attention to the first token (the sink): {pct(by_layer[0])} in layer 0, peaking at "
            f"{pct(by_layer[peak])} in layer {peak} (mean over heads and query positions)"
        )
        if uniform is None:
            return said + "."
        peak_share = by_layer[peak]
        verdict = (
            versus_chance(True)
            if peak_share >= BASELINE_FACTOR * uniform
            else "more than a uniform head, but not twice as much"
            if peak_share > 1.25 * uniform
            else versus_chance(False)
        )
        return f"{said}; a head attending uniformly gives it {pct(uniform)}: {verdict}."

    def last() -> str:
        last_token = f.last_token_attention
        top_key = last_token.top_keys_by_layer[-1][0]
        uniform = 1 / max(len(f.tokens), 1)
        return (
            f"In the last layer the last token {quoted(last_token.token)} looks most at "
            f"{quoted(top_key.token)} (position {top_key.position}, {pct(top_key.weight)}; spread "
            f"evenly, each token would get {pct(uniform)})."
        )

    def entropy() -> str:
        low = min(heads, key=lambda r: r.entropy)
        high = max(heads, key=lambda r: r.entropy)
        uniform = f.uniform_baseline.get("entropy")
        said = (
            f"Most focused head {head_label(low)} (entropy {num(low.entropy)} nats); most diffuse "
            f"{head_label(high)} ({num(high.entropy)} nats)"
        )
        if uniform is None:
            return said + "."
        return f"{said}; a head attending uniformly has {num(uniform)} nats."

    return sentences_from(
        roles,
        top("induction", "induction"),
        top("prev_token", "previous-token"),
        top("duplicate", "duplicate-token"),
        prompt_induction,
        sink,
        last,
        entropy,
    )
