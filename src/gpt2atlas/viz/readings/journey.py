"""The reading of the token's journey (logit lens)."""

from __future__ import annotations

from collections.abc import Sequence

from gpt2atlas.analysis.journey import JourneyFindings
from gpt2atlas.viz.readings.words import (
    num,
    quoted,
    sentences_from,
)


def first_stable_top1_layer(ranks: Sequence[Sequence[int]], position: int) -> int | None:
    """First layer index from which the final top-1 token stays at rank 0 at `position`."""
    column = [row[position] for row in ranks]
    if column[-1] != 0:
        return None
    layer = len(column) - 1
    while layer > 0 and column[layer - 1] == 0:
        layer -= 1
    return layer


def read_journey(f: JourneyFindings) -> list[str]:
    layers, ranks = f.layers, f.final_token_rank
    tokens = f.tokens

    def last_position() -> str:
        position = len(ranks[0]) - 1
        final = f.top1[-1][position]
        first = first_stable_top1_layer(ranks, position)
        after = tokens[position] if tokens else f"position {position}"
        said = f"After {quoted(after)} (last position) the model predicts {quoted(final)}"
        if first is None:  # the lens of the last state is the model's output: only a tie in the logits gets here
            return f"{said}; the final token ranks {ranks[-1][position] + 1} in the last layer's lens (a tie)."
        return f"{said}; it is the logit lens's top-1 from {layers[first]} on."

    def typical() -> str | None:
        found = [first_stable_top1_layer(ranks, p) for p in range(len(ranks[0]))]
        firsts = [x for x in found if x is not None]
        if not firsts:
            return None  # no position's final prediction is the last layer's lens top-1 (ties only)
        mean = sum(firsts) / len(firsts)
        return (
            f"Averaged over the {len(firsts)} positions, the final prediction becomes top-1 for good at layer "
            f"index {num(mean)} (0 = the embedding, {len(layers) - 1} = after the last block)."
        )

    def kl() -> str:
        means = f.kl_to_final_mean
        half = next((i for i, m in enumerate(means) if m <= means[0] / 2), None)
        said = (
            f"KL divergence to the final distribution falls from {num(means[0])} nats at {layers[0]} to "
            f"{num(means[-1])} at {layers[-1]}"
        )
        return f"{said}; it halves by {layers[half]}." if half is not None else f"{said}; it never halves."

    return sentences_from(last_position, typical, kl)
