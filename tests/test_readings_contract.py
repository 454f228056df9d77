"""Every reading sentence an area defines is produced on a real trained model (the shipped mini): a renamed
findings key shows up here as a logged, dropped sentence instead of silently vanishing from every report."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from gpt2atlas import load_model
from gpt2atlas.analysis.kinds import Inputs
from gpt2atlas.areas import AREAS, area
from gpt2atlas.viz import readings

PROMPT = "The cat sat on the mat. The cat sat on the mat because it was warm."
OPTIONS = {  # options that keep each area quick
    "embeddings": {"projections": ("pca",), "sample_size": 300},
    "weights": {"param": "blocks.0.attn.W_QKV"},
    "layernorm": {"superposition_steps": 20},
    "journey": {"projections": ("pca",)},
    "geometry": {"max_texts": 60, "all_tokens_budget": 500, "gride_max_rank": 16},
}


@pytest.fixture(scope="module")
def mini():
    return load_model("mini")


@pytest.mark.parametrize("spec", AREAS, ids=lambda spec: spec.key)
def test_no_reading_sentence_is_dropped(spec, mini, caplog):
    options = OPTIONS.get(spec.key, {})
    result = spec.run(mini, Inputs(PROMPT) if spec.per_prompt else Inputs(), options)
    with caplog.at_level(logging.WARNING, logger="gpt2atlas.readings"):
        sentences = spec.read(result.findings)
    assert [r.getMessage() for r in caplog.records] == []
    assert sentences


@pytest.fixture(scope="module")
def embedding_findings(mini):
    from gpt2atlas.analysis.embeddings import analyze

    return analyze(mini, "function class return", projections=("pca",), sample_size=300).findings


def test_the_embedding_neighbours_sentence_appears(embedding_findings):
    sentence = next(s for s in area("embeddings").read(embedding_findings) if "nearest" in s.lower())
    assert "function" in sentence


def test_a_dropped_sentence_is_logged(embedding_findings, caplog):
    whole = readings.read_embeddings(embedding_findings)
    periods = [s for s in whole if s.startswith("Their dominant periods")]
    assert len(periods) == 1
    # no periodicity rows: the periods sentence has no numbers to compare with chance, and raises
    position = replace(embedding_findings.position_embedding, periodicity=[])
    with caplog.at_level(logging.WARNING, logger="gpt2atlas.readings"):
        sentences = readings.read_embeddings(replace(embedding_findings, position_embedding=position))
    assert sentences == [s for s in whole if s not in periods]
    assert any("dropped" in r.getMessage() for r in caplog.records)
