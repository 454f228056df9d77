"""The reading of the residual stream and its outlier dims."""

from __future__ import annotations

from gpt2atlas.analysis.residual import ResidualFindings
from gpt2atlas.viz.readings.words import (
    num,
    sentences_from,
)


def read_residual(f: ResidualFindings) -> list[str]:
    def growth() -> str:
        norms = f.norm_by_layer
        first, last = norms[0], norms[-1]
        return (
            f"The residual stream's mean norm grows from {num(first)} after the embedding to {num(last)} at "
            f"the end ({num(last / first)}×)."
        )

    def contributions() -> str:
        rows = f.contributions
        attn = max(rows, key=lambda r: r.attn_to_resid_ratio)
        mlp = max(rows, key=lambda r: r.mlp_to_resid_ratio)
        return (
            f"Relative to the stream it writes into, attention writes most in layer {attn.layer} "
            f"({num(attn.attn_to_resid_ratio)}× the stream's norm), the MLP in layer {mlp.layer} "
            f"({num(mlp.mlp_to_resid_ratio)}×)."
        )

    def outliers() -> str:
        dims = f.outlier_dims[:3]
        if not dims:
            top = f.top_ratio_dims
            biggest = f" (the largest: dim {top[0].dim}, {num(top[0].ratio_to_median)}× the median)" if top else ""
            threshold = f.outlier_threshold
            noise = f.outlier_ratio_chance
            baseline = f" Gaussian activations of this size reach {num(noise)}× in 95% of draws." if noise else ""
            return (
                f"No dimension reaches {num(threshold)}× the median |activation|{biggest}: no outlier dims.{baseline}"
                if threshold
                else f"No outlier dims{biggest}.{baseline}"
            )
        return (
            "Outlier (massive) dims: "
            + "; ".join(f"dim {d.dim} reaches |{num(d.max_abs)}|, {num(d.ratio_to_median)}× the median" for d in dims)
            + "."
        )

    def position_note() -> str | None:
        excluded = f.position_0_excluded
        return "Statistics exclude position 0 (its massive activations would dominate)." if excluded else None

    def position_0() -> str | None:
        if not f.position_0_excluded:
            return None
        dims = f.position_0_dims[:2]
        if not dims:
            return "Position 0 has no massive dimension either (none reaches the outlier threshold there)."
        return (
            "At position 0, left out above, "
            + "; ".join(
                f"dim {d.dim} reaches |{num(d.max_abs)}|, {num(d.ratio_to_median)}× the median of the other "
                f"positions (in {len(d.layers)} of {len(f.states)} states, from {f.states[d.layers[0]]})"
                for d in dims
            )
            + "."
        )

    return sentences_from(growth, contributions, outliers, position_note, position_0)
