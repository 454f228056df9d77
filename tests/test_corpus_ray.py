"""The Ray engine (analysis/corpus_ray.py): a local Ray of 2 workers started by the test gives the local engine's
results, in the batches' order; bad settings and a dead address answer in one line within seconds. Skipped where
Ray is not installed; CI installs it (the `ray` extra)."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from gpt2atlas.analysis.corpus import Batch, CorpusJob, batches, local, run_corpus
from gpt2atlas.errors import InputError
from gpt2atlas.model.gpt2 import GPT2

ray = pytest.importorskip("ray")

from gpt2atlas.analysis.corpus_ray import RayEngine, check_address, ray_engine  # noqa: E402

TEXTS = [
    "The cat sat on the mat and looked at the door for a long time.",
    "Rain fell.",
    "A spiral of rocks rose from the sea, and the birds circled it all day long.",
    "one two three four five six",
    "x",
    "Numbers: 1, 2, 3, 5, 8, 13, 21, 34.",
] * 3


@pytest.fixture(scope="module")
def mini() -> GPT2:
    from gpt2atlas import load_model

    return load_model("mini").requires_grad_(False)


@pytest.fixture(scope="module")
def engine():
    """One local Ray of 2 workers for the whole file (started on first use, shut down at the end)."""
    made = ray_engine(None, workers=2, device="cpu")
    yield made
    made.close()
    assert not ray.is_initialized()  # the Ray it started is gone


# ----- a job of our own: per-text maxima of every neuron, and the order the texts were seen in ------------------
@dataclass(frozen=True)
class NeuronMaxima:
    """Collect: each text's maximum over its real positions of every MLP neuron, keyed by the text's index."""

    def __call__(self, model: GPT2, batch: Batch) -> tuple[list[int], np.ndarray]:
        with torch.inference_mode():
            _, cache = model.run_with_cache(torch.from_numpy(batch.ids), names=lambda n: n.endswith("mlp.hook_post"))
        post = torch.cat([cache[f"blocks.{l}.mlp.hook_post"] for l in range(model.cfg.n_layer)], dim=-1).numpy()
        real = np.arange(batch.width)[None, :, None] < batch.lengths[:, None, None]
        return batch.texts.tolist(), np.where(real, post, -np.inf).max(axis=1)


def concatenate(partials: Sequence[tuple[list[int], np.ndarray]]) -> tuple[list[int], np.ndarray]:
    """Merge that keeps order (associative, not commutative), so a partial out of place shows."""
    return [t for p in partials for t in p[0]], np.concatenate([p[1] for p in partials])


def maxima_job(model: GPT2, batch_tokens: int = 40) -> CorpusJob:
    tokens = [model.tokenizer.encode(t) for t in TEXTS]
    order = np.argsort([-len(t) for t in tokens], kind="stable")
    return CorpusJob(
        tokens, order, NeuronMaxima(), concatenate, lambda m: m, model.tokenizer.eot_token_id, batch_tokens
    )


def test_ray_gives_the_local_results_in_the_batches_order(mini, engine):
    job = maxima_job(mini)
    assert len(list(batches(job.tokens, job.order, job.pad_id, job.batch_tokens))) >= 6  # several per actor
    here_texts, here = run_corpus(mini, job)
    there_texts, there = run_corpus(mini, maxima_job(mini), engine=engine)
    assert there_texts == here_texts == job.order.tolist()
    np.testing.assert_allclose(there, here, rtol=1e-6, atol=1e-6)
    assert isinstance(engine, RayEngine) and engine.started and len(engine.actors) == 2
    actors = list(engine.actors)
    run_corpus(mini, maxima_job(mini), engine=engine)
    assert engine.actors == actors  # the same model is not shipped again


def test_geometry_runs_the_same_on_ray(mini, engine):
    from gpt2atlas.geometry.analysis import start

    options = {"texts": TEXTS, "all_tokens_budget": 60, "gride_max_rank": 4, "progress": False, "control": False}
    here = run_corpus(mini, start(mini, None, **options))
    there = run_corpus(mini, start(mini, None, **options), engine=engine)
    assert len(here.findings.layers) == len(there.findings.layers) > mini.cfg.n_layer
    for ours, theirs in zip(here.findings.layers, there.findings.layers):
        assert (ours.site, ours.cloud, ours.n_points) == (theirs.site, theirs.cloud, theirs.n_points)
        assert ours.twonn_id == pytest.approx(theirs.twonn_id, rel=1e-5)


def test_the_atlas_scan_is_the_same_on_ray(mini, engine):
    scan = pytest.importorskip("gpt2atlas.atlas.scan")
    from gpt2atlas.atlas.windows import Windows

    stream = np.array([t for text in TEXTS for t in mini.tokenizer.encode(text + "\n")], dtype=np.uint16)
    windows = Windows(stream, 24)
    plan = scan.plan(mini, windows, scan.ScanSettings(context=24, top_k=5, min_token_count=2))
    collect = scan.Collect(plan)

    def work():
        return windows.batches(np.arange(len(windows)), batch_tokens=24 * 3)

    here = scan.merge(list(local(collect, mini, work())))
    there = scan.merge(list(engine(collect, mini, work())))
    for name, value in vars(here).items():
        other = getattr(there, name)
        if np.issubdtype(value.dtype, np.floating):
            np.testing.assert_allclose(other, value, rtol=1e-6, atol=1e-6, err_msg=name)
        else:
            np.testing.assert_array_equal(other, value, err_msg=name)
    one, two = scan.finish(here, mini, windows, plan), scan.finish(there, mini, windows, plan)
    assert [n.examples for n in one.neurons] == [n.examples for n in two.neurons]


@dataclass(frozen=True)
class Refuse:
    """Collect: refuses a batch holding text 3, as a step refuses input it cannot take."""

    def __call__(self, model: GPT2, batch: Batch) -> list[int]:
        if 3 in batch.texts:
            raise InputError("text 3 is not welcome", arguments=("text",))
        return batch.texts.tolist()


def test_a_workers_input_error_arrives_as_it_was_raised(mini, engine):
    job = maxima_job(mini)
    job.collect = Refuse()
    with pytest.raises(InputError) as err:
        run_corpus(mini, job, engine=engine)
    assert str(err.value) == "text 3 is not welcome"
    assert err.value.arguments == ("text",), err.value.__dict__


# ----- bad input: one line, within seconds -----------------------------------------------------------------
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens here once the socket is closed


def test_an_address_that_does_not_answer_is_refused_within_seconds():
    address = f"127.0.0.1:{_closed_port()}"
    start = time.perf_counter()
    with pytest.raises(InputError, match=rf"address='{address}' does not answer") as err:
        ray_engine(address, workers=2)
    assert time.perf_counter() - start < 10 and "\n" not in str(err.value)
    start = time.perf_counter()
    with pytest.raises(InputError, match="does not answer .* within 1 s"):
        check_address("192.0.2.1:6379", seconds=1.0)  # TEST-NET-1: routed nowhere, so it times out
    assert time.perf_counter() - start < 5
    with pytest.raises(InputError, match="is not host:port"):
        ray_engine("nonsense", workers=2)


def test_bad_counts_and_devices_are_refused():
    with pytest.raises(InputError, match="workers=0 must be at least 1") as err:
        ray_engine(None, workers=0)
    assert err.value.arguments == ("workers",)
    with pytest.raises(InputError, match="device='tpu' is not one of cpu, cuda"):
        ray_engine(None, workers=1, device="tpu")


def test_ray_missing_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(InputError, match=r"pip install 'gpt2atlas\[ray\]'"):
        ray_engine(None, workers=2)


def test_more_workers_than_the_cluster_holds_is_refused(mini, engine):
    run_corpus(mini, maxima_job(mini), engine=engine)  # the file's local Ray of 2 CPUs is up
    greedy = ray_engine(None, workers=3)  # finds that Ray running, and asks it for 3 CPUs
    with pytest.raises(InputError, match="workers=3 need 3 CPUs, the cluster has 2"):
        run_corpus(mini, maxima_job(mini), engine=greedy)
    assert ray.is_initialized() and not greedy.started  # the Ray it did not start keeps running
