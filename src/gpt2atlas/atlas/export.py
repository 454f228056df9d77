"""An atlas as OpenAI automated-interpretability's neuron records, so that their explainer and scorer run on it.

One JSON file per neuron, `OUT/<layer>/<neuron>.json` (the layout their `load_neuron` reads), holding a
`NeuronRecord`: `neuron_id` (`layer_index`, `neuron_index`), `most_positive_activation_records` (the top
examples), `random_sample` (every band's random examples, pooled), `random_sample_by_quantile` (one list per
band), `quantile_boundaries` (the bands' edges as activations: each band's low, then the last band's high),
and the moments `mean`, `variance`, `skewness`, `kurtosis` (excess; null where undefined, as for a dead neuron).
Each record is an `ActivationRecord`: the example's tokens as strings (decoded one by one) and the neuron's
activation on each. Every object carries `dataclass_name`, as their serializer writes and reads it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

from gpt2atlas.atlas.atlas import Atlas
from gpt2atlas.atlas.entries import Example, NeuronEntry
from gpt2atlas.atomic import replacing_folder
from gpt2atlas.errors import InputError, check_output
from gpt2atlas.tokenizer import Tokenizer

FORMATS = ("neuron-explainer",)


def _number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _record(example: Example, token_text: Callable[[int], str]) -> dict:
    return {
        "dataclass_name": "ActivationRecord",
        "tokens": [token_text(t) for t in example.tokens],
        "activations": [float(a) for a in example.activations],
    }


def neuron_record(entry: NeuronEntry, token_text: Callable[[int], str]) -> dict:
    """One neuron as a NeuronRecord (a JSON object; see the module's docstring)."""
    stats = entry.stats
    by_band = [[_record(e, token_text) for e in band.examples] for band in entry.bands]
    bounds: Sequence[float] = (
        [band.low * stats.maximum for band in entry.bands] + [entry.bands[-1].high * stats.maximum]
        if entry.bands
        else []
    )
    return {
        "dataclass_name": "NeuronRecord",
        "neuron_id": {"dataclass_name": "NeuronId", "layer_index": entry.layer, "neuron_index": entry.index},
        "random_sample": [record for band in by_band for record in band],
        "random_sample_by_quantile": by_band or None,
        "quantile_boundaries": [float(b) for b in bounds] or None,
        "mean": _number(stats.mean),
        "variance": _number(stats.std**2),
        "skewness": _number(stats.skewness),
        "kurtosis": _number(stats.kurtosis),
        "most_positive_activation_records": [_record(e, token_text) for e in entry.examples],
    }


def export(atlas_path: str | Path, out: str | Path, fmt: str = "neuron-explainer", *, overwrite: bool = False) -> int:
    """Write every neuron of the atlas at `atlas_path` under `out` (whole, or not at all); the count written."""
    if fmt not in FORMATS:
        raise InputError(f"fmt={fmt!r} is unknown: use {', '.join(FORMATS)}", arguments=("fmt",))
    out = Path(out)
    check_output(out, "out", folder=True)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise InputError(f"out={out} already exists: pass --overwrite to replace it", arguments=("out",))
    tokenizer = Tokenizer()
    vocab = tokenizer.vocab
    written = 0
    with Atlas.open(atlas_path) as atlas, replacing_folder(out) as staging:
        for layer in range(atlas.layers):
            folder = staging / str(layer)
            folder.mkdir()
            for index in range(atlas.neurons_per_layer):
                record = neuron_record(atlas.neuron(layer, index), vocab.__getitem__)
                (folder / f"{index}.json").write_text(json.dumps(record, allow_nan=False))
                written += 1
    return written
