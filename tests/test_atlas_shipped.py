"""The atlas shipped with `mini` is what a scan of its own windows gives.

A rescan of a slice (its first W windows, taken from the atlas's `windows` table, so no corpus is needed) cannot
have the whole atlas's top-k, but it must agree where a slice can: every top example of the atlas that lies in the
slice is among the slice's top examples, in the same order, at the same position and with the same activation; the
slice finds nothing above the atlas's k-th activation that the atlas lacks; and what does not depend on the data
(the logit effect) is equal. Bands are drawn per histogram bin of the neuron's whole-corpus maximum, so a slice's
differ; they are not compared.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from gpt2atlas.analysis.corpus import run_corpus
from gpt2atlas.atlas import scan
from gpt2atlas.atlas.atlas import Atlas
from gpt2atlas.atlas.driver import model_digest
from gpt2atlas.atlas.store import RUN_FILE, RunInfo
from gpt2atlas.atlas.windows import Windows
from gpt2atlas.model import load_model
from gpt2atlas.shipped import shipped_atlas

W = 24  # windows rescanned (of 392)


@pytest.fixture(scope="module")
def shipped():
    path = shipped_atlas("mini")
    assert path is not None, "the mini atlas is not in the package: run scripts/make_mini_atlas.py"
    with Atlas.open(path) as atlas:
        model = load_model("mini")
        settings = scan.ScanSettings(**dict(atlas.run.settings))  # type: ignore[arg-type]
        stream = np.concatenate([atlas.window(w)[1:] for w in range(W)]).astype(np.uint16)
        contents = run_corpus(model, scan.job(model, Windows(stream, settings.context), settings))
        yield atlas, model, contents


def test_the_atlas_is_of_the_shipped_model_and_its_counts_are_its_windows(shipped):
    atlas, model, _ = shipped
    run = atlas.run
    assert run.model == "mini" and run.model_digest == model_digest(model) and run.split == "val" and run.complete
    assert RunInfo.from_json((atlas.path.parent / RUN_FILE).read_text()) == run
    assert json.loads(run.manifest)["spec"] == "python-docs,python-stdlib" == run.data
    (stored,) = atlas._db.execute("SELECT COUNT(*) FROM windows").fetchone()
    assert stored == run.windows and run.tokens == run.windows * (run.context - 1)
    for layer, index in [(0, 0), (1, 511), (1, 17)]:
        stats = atlas.neuron(layer, index).stats
        assert stats.count == run.tokens == sum(atlas.neuron(layer, index).histogram.counts)
    assert atlas.head(1, 3).stats.queries == run.tokens


def _same_places(shipped_examples, rescanned) -> None:
    """Every shipped example in the slice is rescanned, in the same order, with its activation and context."""
    inside = [e for e in shipped_examples if e.window < W]
    found = {(e.window, e.position): e for e in rescanned}
    assert all((e.window, e.position) in found for e in inside), "a top example of the atlas is missing"
    order = [found[e.window, e.position] for e in inside]
    assert order == sorted(order, key=lambda e: rescanned.index(e))
    for e in inside:
        again = found[e.window, e.position]
        assert again.activation == pytest.approx(e.activation, abs=1e-5)
        assert again.tokens == e.tokens
        step = np.abs(again.activations).max() / 127  # the stored context is int8 steps of its largest |value|
        np.testing.assert_allclose(again.activations, e.activations, atol=step / 2 + 1e-5)
    if len(shipped_examples) == len(rescanned):  # a full top-k: nothing above its last entry was left out
        floor = shipped_examples[-1].activation
        above = {(e.window, e.position) for e in rescanned if e.activation > floor + 1e-5}
        assert above <= {(e.window, e.position) for e in inside}


def test_a_rescan_of_a_slice_of_its_windows_gives_the_same_entries(shipped):
    atlas, _, contents = shipped
    compared = 0
    for entry in contents.neurons:
        kept = atlas.neuron(entry.layer, entry.index)
        _same_places(kept.examples, entry.examples)
        compared += sum(e.window < W for e in kept.examples)
        assert [t.token for t in kept.logit_effect.promoted] == [t.token for t in entry.logit_effect.promoted]
        assert [t.token for t in kept.logit_effect.suppressed] == [t.token for t in entry.logit_effect.suppressed]
        np.testing.assert_allclose(
            [t.logit for t in kept.logit_effect.promoted], [t.logit for t in entry.logit_effect.promoted], atol=1e-5
        )
    for head in contents.heads:
        _same_places(atlas.head(head.layer, head.index).examples, head.examples)
    assert compared > 300  # the slice holds a fair share of the atlas's examples
