"""The reading of how the model learned (training dynamics)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from gpt2atlas.analysis.attention import BASELINE_FACTOR
from gpt2atlas.viz.dynamics import tokens_text
from gpt2atlas.viz.readings.words import pct

if TYPE_CHECKING:
    from gpt2atlas.analysis.dynamics import Appearance, Dynamics


UNIFORM_GUESS_NATS = math.log(50257)  # the loss of a uniform guess over GPT-2's vocabulary
NOISE_ROUGHNESS = math.sqrt(2)  # the roughness of a table of independent random rows


def _between(appearance: Appearance) -> str:
    """'between 8.39M and 16.8M tokens' (the checkpoints either side of the half-way crossing)."""
    after = tokens_text(appearance.halfway_tokens, appearance.halfway_step)
    if appearance.before_step == appearance.halfway_step:
        return f"by {after}"
    return f"between {tokens_text(appearance.before_tokens, appearance.before_step)} and {after}"


def read_dynamics(dynamics: Dynamics) -> list[str]:
    """What appeared during training and when, each against the initial checkpoint and a chance baseline."""
    sentences = []
    val = [p for p in dynamics.losses if p.val_loss is not None]
    if len(val) >= 2:
        sentences.append(
            f"Validation loss fell from {val[0].val_loss:.2f} nats per token at initialisation (a uniform guess over "
            f"the vocabulary costs {UNIFORM_GUESS_NATS:.2f}) to {val[-1].val_loss:.2f} after "
            f"{tokens_text(val[-1].tokens, val[-1].step)}; the lowest was {min(p.val_loss for p in val if p.val_loss is not None):.2f}."
        )
    first, last = dynamics.positions[0], dynamics.positions[-1]
    rough = next(a for a in dynamics.appearances if a.what == "position roughness")
    if last.roughness < first.roughness / 2:
        sentences.append(
            f"The position embeddings went from noise to smooth curves: roughness (mean step between neighbouring "
            f"rows over mean row norm; independent random rows score {NOISE_ROUGHNESS:.2f}) fell from "
            f"{first.roughness:.2f} at initialisation to {last.roughness:.2f} ({last.roughness / first.roughness:.2f}x), "
            f"half of that fall came {_between(rough)}; their first three principal "
            f"components hold {pct(last.pca3_share)} of the variance (at initialisation {pct(first.pca3_share)})."
        )
    else:
        sentences.append(
            f"The position embeddings did not smooth beyond their initialisation: roughness {first.roughness:.2f} "
            f"then, {last.roughness:.2f} now (independent random rows score {NOISE_ROUGHNESS:.2f})."
        )
    if len(dynamics.checkpoints) >= 2:
        initial, final = dynamics.checkpoints[0], dynamics.checkpoints[-1]
        for name, role in (("prev_token", "previous-token"), ("induction", "induction")):
            layer, head, score = final.head(name).best()
            before = initial.head(name).values[layer][head]
            chance = max(dynamics.uniform_head[name], max(v for row in initial.head(name).values for v in row))
            when = next(a for a in dynamics.appearances if a.what.startswith(f"{name} score"))
            if score >= BASELINE_FACTOR * chance and score - chance >= 0.05:
                sentences.append(
                    f"Head {layer}.{head} became the strongest {role} head: {score:.2f} of its attention where the "
                    f"role puts it, against {before:.2f} for the same head at initialisation and "
                    f"{dynamics.uniform_head[name]:.2f} for a head attending evenly; half of its rise came "
                    f"{_between(when)}."
                )
            else:
                sentences.append(
                    f"No {role} head stands out: the best, {layer}.{head}, scores {score:.2f}, against {chance:.2f} for "
                    f"the best head at initialisation or a head attending evenly."
                )
    if dynamics.note:
        sentences.append(dynamics.note[0].upper() + dynamics.note[1:] + ".")
    return sentences
