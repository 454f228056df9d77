"""The reading of the model summary and of the generated samples."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from gpt2atlas.analysis.summary import ModelSummary
from gpt2atlas.viz.readings.words import (
    num,
    pct,
    sentences_from,
)


def read_summary(summary: ModelSummary) -> list[str]:
    cfg, counts = summary.config, summary.parameter_counts

    def shape() -> str:
        return (
            f"{summary.source}: {cfg.n_layer} blocks of {cfg.n_head} heads, d_model {cfg.d_model} "
            f"(d_head {cfg.d_head}, d_mlp {cfg.d_mlp}), context {cfg.n_ctx:,} tokens, "
            f"vocabulary {cfg.d_vocab:,} tokens: {counts['total']:,} parameters in all."
        )

    def shares() -> str:
        total = counts["total"]
        parts = [(k, v) for k, v in counts.items() if k != "total"]
        parts.sort(key=lambda kv: -kv[1])
        return (
            "Parameters by component: " + "; ".join(f"{k.replace('_', ' ')} {pct(v / total)}" for k, v in parts) + "."
        )

    def tied() -> str:
        note = summary.unembedding
        return note[:1].upper() + note[1:] + "."

    return sentences_from(shape, shares, tied)


def read_samples(samples: Sequence[Any], vocab_size: int) -> list[str]:
    probs = [p for s in samples for p in s.probs]
    if not probs:
        return ["The model generated no tokens (it stopped at once)."]
    mean = sum(probs) / len(probs)
    nll = -sum(math.log(max(p, 1e-12)) for p in probs) / len(probs)
    return [
        f"{len(samples)} sample(s), {len(probs)} generated tokens: the model gave the tokens it picked a mean "
        f"probability of {num(mean)} (geometric mean {num(math.exp(-nll))}); a uniform guess over the "
        f"{vocab_size:,}-token vocabulary would give {num(1 / vocab_size)}.",
        f"Most confident pick: {num(max(probs))}; least confident: {num(min(probs))}.",
    ]
