"""`atlas-export --format neuron-explainer`: one JSON file per neuron with exactly the fields of OpenAI
automated-interpretability's NeuronRecord, which loads back into dataclasses that mirror theirs."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Optional

import pytest

from atlas_factory import build
from gpt2atlas.atlas.export import export
from gpt2atlas.atlas.store import stored_neuron
from gpt2atlas.cli.main import main
from gpt2atlas.errors import InputError
from gpt2atlas.tokenizer import Tokenizer


# mirrors of neuron_explainer/activations/activations.py (their FastDataclass adds `dataclass_name` to each)
@dataclass
class ActivationRecord:
    tokens: list[str]
    activations: list[float]


@dataclass
class NeuronId:
    layer_index: int
    neuron_index: int


@dataclass
class NeuronRecord:
    neuron_id: NeuronId
    random_sample: list[ActivationRecord]
    random_sample_by_quantile: Optional[list[list[ActivationRecord]]]
    quantile_boundaries: Optional[list[float]]
    mean: Optional[float]
    variance: Optional[float]
    skewness: Optional[float]
    kurtosis: Optional[float]
    most_positive_activation_records: list[ActivationRecord]


CLASSES = {c.__name__: c for c in (ActivationRecord, NeuronId, NeuronRecord)}


def load(value):
    """Their `loads`: every object names its dataclass, and must have exactly that dataclass's fields."""
    if isinstance(value, list):
        return [load(v) for v in value]
    if not isinstance(value, dict):
        return value
    kind = CLASSES[value.pop("dataclass_name")]
    assert set(value) == {f.name for f in fields(kind)}, (kind, set(value))
    return kind(**{k: load(v) for k, v in value.items()})


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    neurons, _ = build(folder / "atlas", layers=2, neurons=3)
    assert (
        main(["atlas-export", str(folder / "atlas"), "--format", "neuron-explainer", "--out", str(folder / "out")]) == 0
    )
    return folder / "out", neurons


def test_one_file_per_neuron_in_their_layout(exported):
    out, neurons = exported
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.json")) == [
        f"{l}/{i}.json" for l in (0, 1) for i in range(3)
    ]


def test_each_record_loads_into_their_dataclasses_with_our_values(exported):
    out, neurons = exported
    vocab = Tokenizer().vocab
    for entry in map(stored_neuron, neurons):  # as the atlas keeps them: context activations in float16
        record = load(json.loads((out / str(entry.layer) / f"{entry.index}.json").read_text()))
        assert record.neuron_id == NeuronId(entry.layer, entry.index)
        top = record.most_positive_activation_records
        assert [r.tokens for r in top] == [[vocab[t] for t in e.tokens] for e in entry.examples]
        assert [r.activations for r in top] == [list(e.activations) for e in entry.examples]
        assert len(record.random_sample_by_quantile) == len(entry.bands)
        assert record.random_sample == [r for band in record.random_sample_by_quantile for r in band]
        assert record.quantile_boundaries == [0.0, 0.5 * 4.5, 1.0 * 4.5]  # the bands' edges times the maximum
        assert (record.mean, record.variance, record.skewness, record.kurtosis) == (0.1, 0.25, 1.2, 3.4)


def test_an_existing_out_is_refused(exported, tmp_path):
    out, _ = exported
    with pytest.raises(InputError, match="already exists"):
        export(out.parent / "atlas", out)
    with pytest.raises(InputError, match="fmt='csv' is unknown"):
        export(out.parent / "atlas", tmp_path / "x", "csv")
