"""A checkpoint with a padded vocabulary (nanoGPT pads 50,257 to 50,304): the extra rows are no text."""

import pytest
import torch

from conftest import random_model
from gpt2atlas.analysis import journey, neurons, saliency
from gpt2atlas.analysis.base import vocab_strings
from gpt2atlas.errors import InputError
from gpt2atlas.model import GPT2Config

PADDED = GPT2Config(n_layer=2, n_head=4, d_model=64, n_ctx=128, d_vocab=50304)
PROMPT = "The cat sat on the mat because it was warm"


@pytest.fixture(scope="module")
def padded():
    model = random_model(PADDED)
    # padding rows 50x larger than the others: they dominate the logits, as nothing in training holds them down
    model.W_E[50257:] = torch.randn(47, 64, generator=torch.Generator().manual_seed(0))
    return model


def test_vocab_strings_name_the_padding_rows(padded):
    names = vocab_strings(padded)
    assert len(names) == 50304 and names[50256] == "<|endoftext|>" and names[50257] == "<50257>"


def test_analyses_label_padding_ids_instead_of_crashing(padded):
    found = journey.analyze(padded, PROMPT, umap_sample=300)
    assert any(row.id >= 50257 for state in found.findings.top_k for pos in state for row in pos)
    nearest = found.findings.trajectory.nearest_sampled_token
    assert nearest is not None and len(nearest) == padded.cfg.n_layer + 1
    assert neurons.analyze(padded, PROMPT).findings
    target = saliency.analyze(padded, PROMPT).findings.target
    assert target.token == vocab_strings(padded)[target.token_id]


def test_generation_never_samples_a_padding_row(padded):
    result = padded.generate(PROMPT, 12, num_samples=3, seed=0, stop_at_eos=False)
    assert all(0 <= t < 50257 for row in result.new_tokens for t in row)
    assert all(len(text) > 0 for text in result.texts)


def test_a_umap_sample_too_small_for_its_neighbour_graph_is_an_input_error(padded):
    with pytest.raises(InputError, match="umap_sample"):
        journey.analyze(padded, "Hi", umap_sample=2)
