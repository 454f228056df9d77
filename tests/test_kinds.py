"""The execution kinds and their runners (analysis/kinds.py, analysis/corpus.py), each tried with a tiny area of
its own: a pair of prompts, and a pass over a corpus whose collect step pickles as an engine such as Ray needs."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from gpt2atlas.analysis.base import AnalysisResult
from gpt2atlas.analysis.corpus import Batch, CorpusJob, batches, run_corpus
from gpt2atlas.analysis.kinds import Inputs, OverCorpus, PromptPair, WholeModel, run
from gpt2atlas.errors import InputError
from gpt2atlas.model.gpt2 import GPT2

TEXTS = ["one two three four five", "six seven", "eight nine ten eleven twelve thirteen fourteen", "x y z", "a"]


class Found(AnalysisResult):
    area = "test"


# ----- a pair of prompts ------------------------------------------------------------------------------------
def logit_gap(model: GPT2, clean: str, corrupted: str, *, token: int = 0) -> Found:
    """The logit of `token` after the clean prompt minus after the corrupted one."""
    last = [model(model.to_tokens(p))[0, -1, token].item() for p in (clean, corrupted)]
    return Found(last[0] - last[1])


def test_the_pair_runner_gives_both_prompts(tiny_model):
    gap = run(PromptPair(logit_gap), tiny_model, Inputs("the cat sat", "the dog sat"), {"token": 5}).findings
    clean = tiny_model(tiny_model.to_tokens("the cat sat"))[0, -1, 5].item()
    corrupted = tiny_model(tiny_model.to_tokens("the dog sat"))[0, -1, 5].item()
    assert gap == pytest.approx(clean - corrupted) and gap != 0
    with pytest.raises(InputError, match="give a clean and a corrupted one"):
        run(PromptPair(logit_gap), tiny_model, Inputs("the cat sat"))
    with pytest.raises(InputError, match="unknown option 'tokn'") as err:
        run(PromptPair(logit_gap), tiny_model, Inputs("a", "b"), {"tokn": 5}, area="pair")
    assert err.value.arguments == ("tokn",)


def test_the_whole_model_runner_takes_no_prompt(tiny_model):
    def n_layers(model: GPT2) -> Found:
        return Found(model.cfg.n_layer)

    assert run(WholeModel(n_layers), tiny_model, Inputs("ignored")).findings == tiny_model.cfg.n_layer


# ----- over a corpus ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SumNorms:
    """Collect: the number of tokens and the sum of the final residual norms of a batch (padding left out)."""

    def __call__(self, model: GPT2, batch: Batch) -> tuple[int, float]:
        with torch.inference_mode():
            _, cache = model.run_with_cache(torch.from_numpy(batch.ids), names=["blocks.1.hook_resid_post"])
        norms = cache["blocks.1.hook_resid_post"].norm(dim=-1).double().numpy()
        real = np.arange(batch.width)[None, :] < batch.lengths[:, None]
        return int(real.sum()), float(norms[real].sum())


def add(partials: Sequence[tuple[int, float]]) -> tuple[int, float]:
    return sum(p[0] for p in partials), sum(p[1] for p in partials)


def mean_norm_job(model: GPT2, prompt: str | None, *, batch_tokens: int = 8) -> CorpusJob:
    tokens = [model.tokenizer.encode(t) for t in TEXTS]
    order = np.argsort([-len(t) for t in tokens], kind="stable")
    return CorpusJob(tokens, order, SumNorms(), add, lambda m: Found(m[1] / m[0]), 0, batch_tokens)


def test_the_corpus_runner_equals_each_text_alone(tiny_model):
    result = run(OverCorpus(mean_norm_job), tiny_model, Inputs(), {"batch_tokens": 8})
    norms = []
    for text in TEXTS:
        _, cache = tiny_model.run_with_cache(text, names=["blocks.1.hook_resid_post"])
        norms += cache["blocks.1.hook_resid_post"][0].norm(dim=-1).double().tolist()
    assert result.findings == pytest.approx(np.mean(norms), rel=1e-5)
    with pytest.raises(InputError, match="unknown option 'batch'"):
        run(OverCorpus(mean_norm_job), tiny_model, Inputs(), {"batch": 8})


def test_batches_are_padded_longest_first_within_the_budget():
    tokens = [[1, 2, 3], [4], [5, 6, 7, 8, 9], [10, 11]]
    order = np.array([2, 0, 3, 1])
    made = list(batches(tokens, order, pad_id=0, batch_tokens=10))
    assert [b.texts.tolist() for b in made] == [[2, 0], [3, 1]]
    assert made[0].ids.tolist() == [[5, 6, 7, 8, 9], [1, 2, 3, 0, 0]] and made[1].lengths.tolist() == [2, 1]
    assert all(b.ids.size <= 10 for b in made)


def pickled(collect, model, work):
    """An engine that ships the collect step and each batch as bytes, as a remote one such as Ray does."""
    for batch in work:
        yield pickle.loads(pickle.dumps(collect))(model, pickle.loads(pickle.dumps(batch)))


def test_geometry_runs_the_same_through_an_engine_that_pickles(tiny_model):
    from gpt2atlas.geometry.analysis import start

    options = {"texts": TEXTS * 4, "all_tokens_budget": 40, "gride_max_rank": 4, "progress": False, "control": False}
    here = run_corpus(tiny_model, start(tiny_model, None, **options))
    there = run_corpus(tiny_model, start(tiny_model, None, **options), engine=pickled)
    assert here.findings.layers == there.findings.layers and here.findings.tsne == there.findings.tsne


def test_geometry_merge_is_associative(tiny_model):
    from gpt2atlas.geometry.extraction import assemble, cloud_job, measurement_sites, plan_clouds

    sites = measurement_sites(tiny_model.cfg.n_layer)
    plan = plan_clouds(tiny_model, TEXTS * 3, sites, max_tokens=16, all_tokens_budget=30)
    job = cloud_job(tiny_model, plan, lambda rows: rows, batch_tokens=16)
    parts = [job.collect(tiny_model, b) for b in batches(job.tokens, job.order, job.pad_id, job.batch_tokens)]
    assert len(parts) >= 3
    a, b, rest = parts[0], parts[1], job.merge(parts[2:])
    left = job.merge([job.merge([a, b]), rest])
    right = job.merge([a, job.merge([b, rest])])
    one = assemble(plan, left, tiny_model.cfg.d_model)
    other = assemble(plan, right, tiny_model.cfg.d_model)
    for cloud in one.points:
        np.testing.assert_array_equal(one.points[cloud], other.points[cloud])
        assert np.abs(one.points[cloud]).sum(-1).all()  # every planned point was filled
