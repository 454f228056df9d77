"""The reading of one weight block."""

from __future__ import annotations

from gpt2atlas.analysis.weights import MatrixEntry, WeightBlockFindings, WeightsFindings
from gpt2atlas.viz.readings.words import (
    num,
    pct,
    sentences_from,
)


def read_weights(findings: WeightsFindings) -> list[str]:
    if not isinstance(findings, WeightBlockFindings):
        return []  # no weight was asked for: the summary has its own reading
    f = findings

    def stats() -> str:
        st = f.stats
        return (
            f"{f.param} (shape {' × '.join(map(str, f.shape))}): mean {num(st.mean)}, std "
            f"{num(st.std)}, range {num(st.min)} to {num(st.max)}; {pct(st.fraction_near_zero)} of "
            "the entries are within 0.001 of zero."
        )

    def largest() -> str:
        top = f.largest[0]
        where = f"[{top.row}, {top.col}]" if isinstance(top, MatrixEntry) else f"[{top.index}]"
        return f"Largest entry in magnitude: {num(top.value)} at {where}."

    def spectrum() -> str | None:
        s = f.spectrum
        if s is None:
            return None  # a vector, or a block with a side < 2
        said = (
            f"Singular values: the largest is {num(s.singular_values[0])}; stable rank "
            f"{num(s.stable_rank)}, effective rank {num(s.effective_rank)} (of "
            f"{min(f.block_shape)} possible)."
        )
        noise = s.stable_rank_chance
        return f"{said} A matrix of i.i.d. entries of this shape has stable rank {num(noise)}: " + (
            "a few directions dominate, beyond chance."
            if s.stable_rank < noise / 2
            else "no direction dominates more than in noise."
        )

    return sentences_from(stats, largest, spectrum)
