"""The reading of the intrinsic dimension layer by layer."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from gpt2atlas.geometry.findings import GeometryFindings
from gpt2atlas.viz.readings.words import (
    num,
    sentences_from,
    versus_chance,
)

ANISOTROPY_GAP = 0.1  # mean cosines this far from the random-initialised twin's read as beyond chance


def _layer_name(layer: Any) -> str:
    """Geometry's layer index: 0 is the embedding output, k the residual stream after block k-1."""
    if not isinstance(layer, int):
        return str(layer)
    return "the embedding output" if layer == 0 else f"the output of block {layer - 1}"


def read_geometry(f: GeometryFindings) -> list[str]:
    rows = [r for r in f.layers if r.substep == "resid"]

    def corpus() -> str:
        name = f.corpus.description or f.corpus.name
        n = f.n_texts
        return f"Corpus: {name}" + (f", {n:,} texts." if n else ".")

    def profile(cloud: str) -> Callable[[], str | None]:
        def say() -> str | None:
            mine = [r for r in rows if r.cloud == cloud]
            if not mine:
                return None  # this cloud was not measured
            peak = max(mine, key=lambda r: r.twonn_id)
            said = (
                f"{cloud.replace('_', ' ')} cloud: TwoNN intrinsic dimension {num(mine[0].twonn_id)} at "
                f"{_layer_name(mine[0].layer)}, peaks at {num(peak.twonn_id)} ± {num(peak.twonn_err)} "
                f"at {_layer_name(peak.layer)}, ends at {num(mine[-1].twonn_id)} at "
                f"{_layer_name(mine[-1].layer)}; PCA needs {min(r.pca_id_90 for r in mine)}–"
                f"{max(r.pca_id_90 for r in mine)} components for 90% of the variance."
            )
            summary = f.summary.get(cloud)
            if summary is None:
                return said
            control, control_err = summary.peak_control_twonn_id, summary.peak_control_twonn_err
            at_peak = next((r for r in mine if r.layer == summary.peak_layer), None)
            if control is None or at_peak is None:
                return said
            measured, err = at_peak.twonn_id, at_peak.twonn_err or 0.0
            gap = abs(measured - control)
            beyond = gap > 3 * math.hypot(err, control_err or 0.0)
            return (
                f"{said} At {_layer_name(at_peak.layer)} a random-initialised GPT-2 of this shape, on the same "
                f"points, gives {num(control)} ± {num(control_err)} against {num(measured)}: "
                + (
                    f"{'higher' if measured > control else 'lower'} than chance, beyond 3 standard errors."
                    if beyond
                    else versus_chance(False) + "."
                )
            )

        return say

    def anisotropy() -> str | None:
        mine = [r for r in rows if r.cloud == "last_token"] or rows
        if not mine:
            return None  # no layer was measured
        worst = max(mine, key=lambda r: r.mean_cosine)
        said = (
            f"Anisotropy (mean pairwise cosine) is highest at {_layer_name(worst.layer)} "
            f"({num(worst.mean_cosine)}): there the representations crowd into the narrowest cone."
        )
        control = f.control
        if control is None or worst.cloud not in control.mean_cosine:
            return said
        twin = control.mean_cosine[worst.cloud][worst.layer]
        gap = worst.mean_cosine - twin
        return f"{said} A random-initialised GPT-2 of this shape gives {num(twin)} there: " + (
            f"{'narrower' if gap > 0 else 'wider'} than chance."
            if abs(gap) >= ANISOTROPY_GAP
            else versus_chance(False) + "."
        )

    def position_note() -> str | None:
        return (
            None
            if f.settings.include_first_position
            else "Position 0 is left out (its massive activations distort distances)."
        )

    return sentences_from(corpus, profile("last_token"), profile("all_tokens"), anisotropy, position_note)
