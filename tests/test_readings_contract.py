"""Every reading sentence an area defines is produced on a real trained model (the shipped mini): a renamed
findings key shows up here as a logged, dropped sentence instead of silently vanishing from every report."""

from __future__ import annotations

import importlib
import logging

import pytest

from gpt2atlas import load_model
from gpt2atlas.viz import readings

PROMPT = "The cat sat on the mat. The cat sat on the mat because it was warm."
AREAS = {  # area -> (module, options that keep it quick)
    "embeddings": ("gpt2atlas.analysis.embeddings", {"projections": ("pca",), "sample_size": 300}),
    "weights": ("gpt2atlas.analysis.weights", {"param": "blocks.0.attn.W_QKV"}),
    "attention": ("gpt2atlas.analysis.attention", {}),
    "neurons": ("gpt2atlas.analysis.neurons", {}),
    "layernorm": ("gpt2atlas.analysis.layernorm", {"superposition_steps": 20}),
    "residual": ("gpt2atlas.analysis.residual", {}),
    "journey": ("gpt2atlas.analysis.journey", {"projections": ("pca",)}),
    "saliency": ("gpt2atlas.analysis.saliency", {}),
    "geometry": ("gpt2atlas.geometry.analysis", {"max_texts": 60, "all_tokens_budget": 500, "gride_max_rank": 16}),
}


@pytest.fixture(scope="module")
def mini():
    return load_model("mini")


@pytest.mark.parametrize("area", list(AREAS))
def test_no_reading_sentence_is_dropped(area, mini, caplog):
    module, options = AREAS[area]
    analyze = importlib.import_module(module).analyze
    result = analyze(mini, **options) if area in ("weights", "geometry") else analyze(mini, PROMPT, **options)
    with caplog.at_level(logging.WARNING, logger="gpt2atlas.readings"):
        sentences = readings.read(area, result.findings)
    assert [r.getMessage() for r in caplog.records] == []
    assert sentences


def test_the_embedding_neighbours_sentence_appears(mini):
    from gpt2atlas.analysis.embeddings import analyze

    findings = analyze(mini, "function class return", projections=("pca",), sample_size=300).findings
    sentence = next(s for s in readings.read("embeddings", findings) if "nearest" in s.lower())
    assert "function" in sentence


def test_a_dropped_sentence_is_logged(caplog):
    with caplog.at_level(logging.WARNING, logger="gpt2atlas.readings"):
        assert readings.read_embeddings({"neighbours": [{"query": "x"}]}) == []
    assert any("dropped" in r.getMessage() for r in caplog.records)
