"""Every area's reading runs on a real trained model (the shipped mini) for three prompts: a repeating one, a plain
one and a single token. A reading never catches: a renamed field or a wrong index raises here instead of silently
vanishing from every report."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gpt2atlas import load_model
from gpt2atlas.analysis.kinds import Inputs, PromptPair
from gpt2atlas.areas import AREAS, area
from gpt2atlas.areas.spec import ReportContext
from gpt2atlas.viz import readings

PROMPTS = (  # a repeating prompt (induction), a plain longer one, and one token (no query with a choice)
    "The cat sat on the mat. The cat sat on the mat because it was warm.",
    "Once upon a time there was a small village by the sea, and every morning the fishermen rowed out",
    "Hello",
)
OPTIONS = {  # options that keep each area quick
    "embeddings": {"projections": ("pca",), "sample_size": 300},
    "weights": {"param": "blocks.0.attn.W_QKV"},
    "layernorm": {"superposition_steps": 20},
    "journey": {"projections": ("pca",)},
    "geometry": {"max_texts": 60, "all_tokens_budget": 500, "gride_max_rank": 16},
    "causes": {"sites": ("resid_pre", "head_out")},
}


@pytest.fixture(scope="module")
def mini():
    return load_model("mini")


@pytest.mark.parametrize("spec", AREAS, ids=lambda spec: spec.key)
def test_every_reading_speaks_on_three_prompts(spec, mini):
    options = OPTIONS.get(spec.key, {})
    if isinstance(spec.kind, PromptPair):  # the report's pair, then the built-in pair on the longer prompts
        assert spec.report.pair is not None
        pair = spec.report.pair(ReportContext(mini, list(PROMPTS)))
        for inputs in (pair, *(Inputs(prompt) for prompt in PROMPTS[:2])):
            assert spec.read(spec.run(mini, inputs, options).findings), inputs
        return
    if not spec.per_prompt:
        assert spec.read(spec.run(mini, Inputs(), options).findings)
        return
    for prompt in PROMPTS:
        assert spec.read(spec.run(mini, Inputs(prompt), options).findings), prompt


@pytest.fixture(scope="module")
def embedding_findings(mini):
    from gpt2atlas.analysis.embeddings import analyze

    return analyze(mini, "function class return", projections=("pca",), sample_size=300).findings


def test_the_embedding_neighbours_sentence_appears(embedding_findings):
    sentence = next(s for s in area("embeddings").read(embedding_findings) if "nearest" in s.lower())
    assert "function" in sentence


def test_a_sentence_without_its_numbers_is_left_out(embedding_findings):
    whole = readings.read_embeddings(embedding_findings)
    periods = [s for s in whole if s.startswith("Their dominant periods")]
    assert len(periods) == 1
    # no periodicity rows: the periods sentence checks its data and says nothing
    position = replace(embedding_findings.position_embedding, periodicity=[])
    sentences = readings.read_embeddings(replace(embedding_findings, position_embedding=position))
    assert sentences == [s for s in whole if s not in periods]


def test_a_broken_reading_raises_instead_of_falling_back(embedding_findings):
    # a malformed field (what a renamed or retyped finding looks like) is a bug: it reaches the caller
    broken = replace(embedding_findings, token_embedding=None)
    with pytest.raises(AttributeError):
        area("embeddings").read(broken)
