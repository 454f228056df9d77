"""The resumable scan, with a small real scan (tests/atlas_toy.py) on a tiny random GPT-2: a scan stopped by
Ctrl-C/SIGTERM or killed with -9 and then resumed ends with the same database as one that never stopped."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
import torch

from atlas_toy import TOY, ToyWindows
from conftest import random_model
from gpt2atlas.atlas.atlas import Atlas
from gpt2atlas.atlas.driver import PAUSE_ENV, ScanInterrupted, spans
from gpt2atlas.atlas.job import AtlasRequest, run_atlas
from gpt2atlas.model import GPT2Config, save_checkpoint

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"
CONTEXT, SAVE_EVERY = 16, 12  # a commit every 12 windows


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A tiny checkpoint, a text of 1,215 tokens and more (81 windows of 15), and a private token cache."""
    folder = tmp_path_factory.mktemp("inputs")
    model = random_model(GPT2Config(n_layer=2, n_head=2, d_model=32, n_ctx=32), seed=3)
    checkpoint = save_checkpoint(model, folder / "tiny")
    words = ["cat", "dog", "owl", "ant", "bee", "elk"]
    text = " ".join(f"The {words[i % 6]} saw {i * 7 % 13} more at {i}." for i in range(150))
    (folder / "data.txt").write_text(text)
    os.environ["GPT2ATLAS_CACHE"] = str(folder / "cache")
    return checkpoint, folder / "data.txt"


def request(out: Path, inputs, **changes) -> AtlasRequest:
    checkpoint, data = inputs
    values = dict(out=out, model=str(checkpoint), data=str(data), context=CONTEXT, save_every=SAVE_EVERY)
    values.update(progress=False)
    values.update(changes)
    return AtlasRequest(**values)  # type: ignore[arg-type]


def dump(folder: Path) -> list[str]:
    with closing(sqlite3.connect(folder / "atlas.sqlite")) as db:
        return list(db.iterdump())


@pytest.fixture(scope="module")
def uninterrupted(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("whole") / "atlas"
    run_atlas(request(out, inputs), TOY)
    return out


def test_batches_are_cut_at_the_same_places_wherever_a_scan_resumes():
    assert list(spans(0, 12, 12, 5)) == [(0, 5), (5, 10), (10, 12)]
    assert list(spans(12, 24, 12, 5)) == [(12, 15), (15, 20), (20, 24)]
    assert list(spans(15, 24, 12, 5)) == [(15, 20), (20, 24)]  # resumed after a stop at 15


def test_the_toy_scan_finds_each_neurons_true_maximum(uninterrupted, inputs):
    """The scan is real: brute force over every window gives the same maxima and counts."""
    checkpoint, data = inputs
    from gpt2atlas.model.loading import load_model
    from gpt2atlas.training.data import prepare_tokens

    model = load_model(str(checkpoint))
    windows = ToyWindows(prepare_tokens(str(data), progress=False).train, CONTEXT)
    names = [f"blocks.{layer}.mlp.hook_post" for layer in range(2)]
    _, cache = model.run_with_cache(torch.as_tensor(np.stack(list(windows))), names)
    with Atlas.open(uninterrupted) as atlas:
        assert atlas.run.windows == len(windows) == 81 and atlas.run.tokens == 81 * (CONTEXT - 1)
        for layer in range(2):
            acts = cache[names[layer]].numpy()
            for index in (0, 17, 127):
                entry = atlas.neuron(layer, index)
                assert entry.stats.count == 81 * CONTEXT
                assert entry.examples[0].activation == pytest.approx(float(acts[..., index].max()), abs=1e-6)
                assert entry.stats.active_share == pytest.approx(float((acts[..., index] > 0).mean()), abs=1e-9)
        assert np.array_equal(atlas.window(42), windows[42])


def test_a_stop_mid_shard_commits_the_batch_and_resuming_gives_the_same_database(inputs, tmp_path):
    """SIGTERM after the second batch of the first shard: windows 0..10 are committed, the resumed scan starts
    at 10 and ends equal to the uninterrupted one."""
    from gpt2atlas.analysis.corpus import local

    def engine(collect, model, work):
        for number, partial in enumerate(local(collect, model, work)):
            if number == 1:
                os.kill(os.getpid(), signal.SIGTERM)
            yield partial

    small = {"batch_tokens": 5 * CONTEXT}  # 5 windows a batch
    whole = tmp_path / "whole"
    run_atlas(request(whole, inputs, **small), TOY)
    out = tmp_path / "atlas"
    with pytest.raises(
        ScanInterrupted, match=f"committed 10 of 81 windows .* resume with gpt2atlas atlas --resume {out}"
    ):
        run_atlas(request(out, inputs, **small), TOY, engine=engine)
    with closing(sqlite3.connect(out / "atlas.sqlite")) as db:
        assert db.execute("SELECT windows_done FROM progress").fetchone() == (10,)
        assert db.execute("SELECT COUNT(*) FROM windows").fetchone() == (10,)
    run_atlas(request(out, inputs, model=None, data=None, context=None, resume=True, **small), TOY)
    assert dump(out) == dump(whole)


def start(out: Path, inputs, go_on: Path) -> subprocess.Popen:
    checkpoint, data = inputs
    command = [sys.executable, str(TESTS / "atlas_toy.py"), "atlas", "--model", str(checkpoint), "--data", str(data)]
    command += ["--out", str(out), "--context", str(CONTEXT), "--save-every", str(SAVE_EVERY)]
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{TESTS}", PAUSE_ENV: str(go_on)}
    return subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)


def wait_for(process: subprocess.Popen, marker: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    assert process.stderr is not None
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if marker in line:
            return
        if not line and process.poll() is not None:
            break
    process.kill()
    pytest.fail(f"never saw {marker!r}")


@pytest.mark.slow
def test_kill_9_mid_scan_then_resume_gives_the_same_database(inputs, uninterrupted, tmp_path):
    out = tmp_path / "atlas"
    process = start(out, inputs, tmp_path / "never")
    wait_for(process, "committed 12")  # it waits there (the test hook) until killed
    process.kill()  # SIGKILL: no handler, no last commit
    process.wait()
    with pytest.raises(Exception, match="its scan has not finished"):
        Atlas.open(out)
    run_atlas(request(out, inputs, model=None, data=None, context=None, resume=True), TOY)
    assert dump(out) == dump(uninterrupted)


@pytest.mark.slow
def test_sigterm_exits_130_saying_how_to_resume(inputs, uninterrupted, tmp_path):
    out = tmp_path / "atlas"
    process = start(out, inputs, tmp_path / "never")
    wait_for(process, "committed 12")
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert f"committed 12 of 81 windows to {out}; resume with gpt2atlas atlas --resume {out}" in err
    assert "Traceback" not in err and "unexpected" not in err
    run_atlas(request(out, inputs, model=None, data=None, context=None, resume=True), TOY)
    assert dump(out) == dump(uninterrupted)
