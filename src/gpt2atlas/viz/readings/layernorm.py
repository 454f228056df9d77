"""The reading of LayerNorm's geometry."""

from __future__ import annotations

from gpt2atlas.analysis.layernorm import LayerNormFindings
from gpt2atlas.viz.readings.words import (
    num,
    pct,
    sentences_from,
)


def read_layernorm(f: LayerNormFindings) -> list[str]:
    rows = f.layernorms

    def centring() -> str:
        shares = [r.centring_share for r in rows]
        return (
            f"Centring (projection onto the hyperplane ⟂ the all-ones vector) removes {pct(min(shares))}–"
            f"{pct(max(shares))} of the input's squared norm, depending on the LayerNorm ({len(rows)} in all)."
        )

    def sphere() -> str:
        norms = [r.norm_before_gain for r in rows]
        return (
            f"Before the gain every output has norm {num(min(norms), 4)}–{num(max(norms), 4)}: the sphere of "
            f"radius √d = {num(f.sqrt_d, 4)} (a hair less, because of ε)."
        )

    def gain() -> str:
        widest_row = max(rows, key=lambda r: r.gain.gamma_max - r.gain.gamma_min)
        widest = widest_row.gain
        if widest.gamma_max == widest.gamma_min:
            return f"Every gain γ is {num(widest.gamma_max)}: the LayerNorms keep the sphere a sphere."
        return (
            f"The widest gain spread is in {widest_row.name}: γ from {num(widest.gamma_min)} to "
            f"{num(widest.gamma_max)} (sphere → ellipsoid); it amplifies dims "
            f"{', '.join(map(str, widest.most_amplified_dims[:3]))} most and suppresses dims "
            f"{', '.join(map(str, widest.most_suppressed_dims[:3]))}."
        )

    def angle() -> str:
        angles = [r.angle_deg for r in rows]
        return f"Angle between a LayerNorm's input and its output: {num(min(angles))}° to {num(max(angles))}°."

    def superposition() -> str:
        sp = f.superposition
        lo, hi = sp.band_deg
        rnd, opt = sp.random, sp.optimised
        text = (
            f"Superposition toy: {sp.n_vectors:,} directions in {sp.dim} dims. Random, their pairwise angles "
            f"span {num(rnd.min_angle)}–{num(rnd.max_angle)}°; optimised, "
            f"{num(opt.min_angle)}–{num(opt.max_angle)}°"
        )
        best = sp.welch_bound.best_possible_angle_range
        if best:
            text += f" (the Welch bound allows no narrower than {num(best[0])}–{num(best[1])}°"
            most = sp.welch_bound.max_vectors_all_in_band
            text += f"; at most {most:,} vectors can all be within {num(lo)}–{num(hi)}°)" if most is not None else ")"
        return (
            text + f". Pairs within {num(lo)}–{num(hi)}°: {pct(opt.fraction_in_band)} "
            f"(random: {pct(rnd.fraction_in_band)})."
        )

    def position_note() -> str | None:
        return "Statistics leave out position 0." if f.position_0_excluded else None

    return sentences_from(centring, sphere, gain, angle, superposition, position_note)
