"""The store and driver with the real scan (gpt2atlas.atlas.scan; skipped where it is not in yet): every entry
comes back from the database equal to what `finish` made, and a scan stopped mid-shard and resumed writes the
same database as one that never stopped."""

from __future__ import annotations

import os
import signal
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from conftest import random_model
from gpt2atlas.atlas.atlas import Atlas
from gpt2atlas.atlas.driver import ScanInterrupted
from gpt2atlas.atlas.job import AtlasRequest, run_atlas
from gpt2atlas.atlas.store import Store, stored_head, stored_neuron
from gpt2atlas.model import GPT2Config, save_checkpoint

pytest.importorskip("gpt2atlas.atlas.scan")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("real")
    os.environ["GPT2ATLAS_CACHE"] = str(folder / "cache")
    model = random_model(GPT2Config(n_layer=2, n_head=2, d_model=32, n_ctx=32), seed=5)
    text = " ".join(
        f"A {['red', 'blue', 'green'][i % 3]} box holds {i % 11} stones, said item {i}." for i in range(120)
    )
    (folder / "data.txt").write_text(text)
    return str(save_checkpoint(model, folder / "tiny")), str(folder / "data.txt")


def request(out: Path, inputs, **changes) -> AtlasRequest:
    model, data = inputs
    values = dict(out=out, model=model, data=data, context=24, save_every=8, batch_tokens=3 * 24, progress=False)
    return AtlasRequest(**{**values, **changes})  # type: ignore[arg-type]


def recipe():
    from gpt2atlas.cli.commands.atlas import real_recipe

    return real_recipe()


def dump(folder: Path) -> list[str]:
    with closing(sqlite3.connect(folder / "atlas.sqlite")) as db:
        return list(db.iterdump())


def test_entries_come_back_as_finish_made_them_and_resume_is_exact(inputs, tmp_path, monkeypatch):
    made = {}
    complete = Store.complete

    def keep(store, neurons, heads):
        made["neurons"], made["heads"] = list(neurons), list(heads)
        complete(store, made["neurons"], made["heads"])

    monkeypatch.setattr(Store, "complete", keep)
    whole = run_atlas(request(tmp_path / "whole", inputs), recipe())
    with Atlas.open(whole) as atlas:
        assert [atlas.neuron(n.layer, n.index) for n in made["neurons"]] == [stored_neuron(n) for n in made["neurons"]]
        assert [atlas.head(h.layer, h.index) for h in made["heads"]] == [stored_head(h) for h in made["heads"]]

    from gpt2atlas.analysis.corpus import local

    def engine(collect, model, work):  # SIGTERM after the second batch: a stop in the middle of a shard
        for number, partial in enumerate(local(collect, model, work)):
            if number == 1:
                os.kill(os.getpid(), signal.SIGTERM)
            yield partial

    out = tmp_path / "stopped"
    with pytest.raises(ScanInterrupted, match="committed 6 of"):
        run_atlas(request(out, inputs), recipe(), engine=engine)
    run_atlas(request(out, inputs, model=None, data=None, context=None, resume=True), recipe())
    assert dump(out) == dump(whole)
