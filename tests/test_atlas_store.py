"""The atlas database: entries come back as they went in, search finds what it should, and anything that is not
a finished atlas of a known schema is refused with one line naming the path."""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing

import numpy as np
import pytest

from atlas_factory import SeenState, build, memory_atlas, window_ids
from gpt2atlas.atlas.atlas import Atlas
from gpt2atlas.atlas.reader import RunSummary
from gpt2atlas.atlas.store import DATABASE, RUN_FILE, SCHEMA_VERSION, RunInfo, Store, stored_head, stored_neuron
from gpt2atlas.errors import InputError
from gpt2atlas.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    folder = tmp_path_factory.mktemp("atlas")
    neurons, heads = build(folder)
    return folder, neurons, heads


def test_every_entry_comes_back_equal(made):
    folder, neurons, heads = made
    with Atlas.open(folder) as atlas:
        assert (atlas.layers, atlas.neurons_per_layer, atlas.heads_per_layer) == (2, 6, 2)
        assert [atlas.neuron(n.layer, n.index) for n in neurons] == [stored_neuron(n) for n in neurons]
        assert [atlas.head(h.layer, h.index) for h in heads] == [stored_head(h) for h in heads]
        for w in range(8):
            got = atlas.window(w)
            assert got.dtype == np.int64 and np.array_equal(got, window_ids(w))


def test_token_counts_are_those_of_the_scanned_positions(made):
    folder, _, _ = made
    scanned = np.concatenate([window_ids(w)[1:] for w in range(8)])  # after each window's end-of-text
    with Atlas.open(folder) as atlas:
        for token in [*scanned[:5].tolist(), 50256, 3]:
            assert atlas.token_count(token) == int((scanned == token).sum())
        assert atlas.run.top_k == 5


def test_the_run_is_in_the_database_and_in_run_json(made):
    folder, _, _ = made
    with Atlas.open(folder / DATABASE) as atlas:  # the .sqlite file itself opens too
        run = atlas.run
    assert run.complete and run.schema == SCHEMA_VERSION and run.windows == 8
    assert RunInfo.from_json((folder / RUN_FILE).read_text()) == run
    written = json.loads((folder / RUN_FILE).read_text())
    assert written["settings"] == {"context": 16, "top_k": 5, "dtype": "float32"}
    assert set(written["versions"]) == {"gpt2atlas", "torch", "python"} and written["manifest"]["spec"] == "corpus"


def test_a_finished_atlas_is_one_file_that_plain_sqlite_reads(made):
    folder, neurons, _ = made
    assert sorted(p.name for p in folder.iterdir()) == [DATABASE, RUN_FILE]  # no -wal / -shm left
    with closing(sqlite3.connect(folder / DATABASE)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert db.execute("SELECT COUNT(*) FROM scan_state").fetchone() == (0,)  # only a scan in progress needs it
        best = db.execute(
            "SELECT layer, idx, activation FROM neuron_examples WHERE token = ? ORDER BY activation DESC LIMIT 1",
            (1003,),
        ).fetchone()
    expected = max((n for n in neurons if n.index == 3), key=lambda n: max(e.activation for e in n.examples))
    assert best == (expected.layer, 3, max(e.activation for e in expected.examples))


def test_search_by_token_finds_the_units_whose_examples_centre_on_it(made):
    folder, neurons, heads = made
    with Atlas.open(folder) as atlas:
        hits = atlas.search(token=1004)
        assert {(h.unit, h.layer, h.index, h.reason) for h in hits} == {
            ("neuron", 0, 4, "example"),
            ("neuron", 1, 4, "example"),
        }
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        by_mean = atlas.search(token=262)  # every neuron's second token mean
        assert {(h.layer, h.index) for h in by_mean if h.reason == "token_mean"} == {
            (n.layer, n.index) for n in neurons
        }
        assert len(atlas.search(token=262, limit=3)) == 3
        head_hits = atlas.search(token=2001)
        assert {(h.unit, h.layer, h.index) for h in head_hits} == {("head", 0, 1), ("head", 1, 1)}


def test_search_by_text_searches_each_of_its_tokens(made):
    folder, _, _ = made
    ids = Tokenizer().encode(" the")
    with Atlas.open(folder) as atlas:
        assert atlas.search(text=" the") == atlas.search(token=ids[0])


def test_search_by_density(made):
    folder, neurons, _ = made
    inside = {(n.layer, n.index) for n in neurons if 0.2 <= n.stats.active_share <= 0.7}
    with Atlas.open(folder) as atlas:
        hits = atlas.search(min_density=0.2, max_density=0.7)
        assert {(h.layer, h.index) for h in hits} == inside and all(h.reason == "density" for h in hits)
        filtered = atlas.search(token=262, min_density=0.2, max_density=0.7)
        assert {(h.layer, h.index) for h in filtered} == inside and all(h.unit == "neuron" for h in filtered)


SAME_QUESTIONS = [
    {"token": 1004},  # examples of two neurons
    {"token": 262},  # a token mean of every neuron
    {"token": 2000},  # the queries of two heads (and the keys of two others, which a search does not look at)
    {"token": 2001},
    {"token": 262, "limit": 3},
    {"text": " the"},
    {"text": " Leaff"},  # two tokens: 1004 (two neurons' examples) and 2001 (two heads')
    {"text": "/ the"},  # 14 (L0N1's and L1N1's first token mean) and 262
    {"min_density": 0.2, "max_density": 0.7},
    {"max_density": 0.5, "limit": 2},
    {"text": " Leaff", "min_density": 0.3},  # a bound keeps the neurons within it and leaves the heads out
    {"token": 99},  # nothing
]


@pytest.mark.parametrize("question", SAME_QUESTIONS, ids=lambda q: ",".join(f"{k}={v!r}" for k, v in q.items()))
def test_the_database_and_memory_answer_a_search_alike(made, question):
    folder, neurons, heads = made
    windows = {w: window_ids(w) for w in range(8)}
    in_memory = memory_atlas(RunSummary("tiny", 120, 8, 5), windows, neurons, heads, {})
    with Atlas.open(folder) as atlas:
        stored = atlas.search(**question)
    assert stored == in_memory.search(**question)
    assert bool(stored) == (question != {"token": 99})  # each question but the last has hits to agree on
    assert len({(h.unit, h.layer, h.index, h.reason) for h in stored}) == len(stored)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda a: a.neuron(2, 0), "layer=2 is out of range"),
        (lambda a: a.neuron(0, 6), "index=6 is out of range"),
        (lambda a: a.head(0, -1), "index=-1 is out of range"),
        (lambda a: a.window(8), "window=8 is out of range"),
        (lambda a: a.search(), "give a token, a text or a density bound"),
        (lambda a: a.search(token=60000), "token=60000 is not a token id"),
        (lambda a: a.search(text=""), "has no tokens"),
    ],
)
def test_bad_questions_are_input_errors(made, call, message):
    with Atlas.open(made[0]) as atlas, pytest.raises(InputError, match=message):
        call(atlas)


def test_what_is_not_a_finished_atlas_is_refused_naming_the_path(tmp_path):
    with pytest.raises(InputError, match=f"{tmp_path / 'nowhere'}"):
        Atlas.open(tmp_path / "nowhere")
    text = tmp_path / "notes.sqlite"
    text.write_text("hello, not a database at all")
    with pytest.raises(InputError, match=f"{text} is not an atlas: it is not a SQLite database"):
        Atlas.open(text)
    foreign = tmp_path / "foreign.sqlite"
    with closing(sqlite3.connect(foreign)) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(InputError, match=f"{foreign} is not an atlas: a SQLite database without"):
        Atlas.open(foreign)
    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    with pytest.raises(InputError, match=f"{corrupt} is not an atlas"):
        Atlas.open(corrupt)
    unfinished = tmp_path / "unfinished"
    build(unfinished, finish=False)
    with pytest.raises(InputError, match=f"{unfinished / DATABASE}: its scan has not finished: resume it with"):
        Atlas.open(unfinished)
    newer = tmp_path / "newer"
    build(newer)
    with closing(sqlite3.connect(newer / DATABASE)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(InputError, match=f"{newer / DATABASE} is an atlas of schema version {SCHEMA_VERSION + 1}"):
        Atlas.open(newer)
    with closing(sqlite3.connect(newer / DATABASE)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
    with pytest.raises(
        InputError, match=f"{newer / DATABASE} is an atlas of schema version {SCHEMA_VERSION - 1}, older"
    ):
        Atlas.open(newer)


def test_the_saved_state_comes_back_bit_for_bit(tmp_path):
    build(tmp_path, finish=False)
    store = Store.reopen(tmp_path)
    state = SeenState(np.array([[1.5, np.nan], [-0.0, 2.0**-60]], dtype=np.float64))
    store.commit(state, 5, {})
    store.close()
    again = Store.reopen(tmp_path)
    loaded = again.load_state(SeenState)
    assert again.windows_done() == 5 and loaded.seen.tobytes() == state.seen.tobytes()
    assert loaded.seen.shape == (2, 2) and loaded.seen.flags.writeable


def test_answers_are_quick(made):
    with Atlas.open(made[0]) as atlas:
        started = time.perf_counter()
        for _ in range(20):
            atlas.neuron(1, 5)
            atlas.search(token=1005)
        assert (time.perf_counter() - started) / 20 < 0.3
