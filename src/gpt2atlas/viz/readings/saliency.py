"""The reading of the saliency scores."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gpt2atlas.analysis.saliency import SaliencyFindings
from gpt2atlas.viz.readings.words import (
    num,
    pct,
    quoted,
    sentences_from,
)


def read_saliency(f: SaliencyFindings) -> list[str]:
    tokens = f.tokens

    def target() -> str:
        t = f.target
        return f"Target: {quoted(t.token)} after the last token ({t.chosen_by}; probability {num(t.probability)}, " + (
            "the top guess)." if t.rank == 0 else f"ranked {t.rank + 1:,})"
        )

    def method(scores: Sequence[float], label: str) -> Callable[[], str]:
        def say() -> str:
            order = sorted(range(len(scores)), key=lambda i: -abs(scores[i]))[:3]
            said = (
                f"{label}: the inputs that matter most are "
                + ", ".join(f"{quoted(tokens[i])} (position {i}, {num(scores[i])})" for i in order)
                + "."
            )
            total = sum(abs(x) for x in scores)
            if len(scores) < 2 or total == 0:
                return said
            share, even = abs(scores[order[0]]) / total, 1 / len(scores)
            return (
                f"{said} The first carries {pct(share)} of the total |attribution| (spread evenly over the "
                f"{len(scores)} tokens, each would carry {pct(even)})."
            )

        return say

    def completeness() -> str:
        c = f.completeness
        return (
            f"Integrated gradients sum to {num(c.sum_integrated_gradients)} against f(x) − f(baseline) = "
            f"{num(c.f_difference)} (completeness error {num(c.abs_error)})."
        )

    return sentences_from(
        target,
        method(f.integrated_gradients, "Integrated gradients"),
        method(f.gradient_x_input, "Gradient × input"),
        completeness,
    )
