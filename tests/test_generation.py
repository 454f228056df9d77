"""Generation: greedy equals Hugging Face token for token; seeds reproduce; samples come as one batch."""

import pytest
import torch

from gpt2atlas import load_model
from gpt2atlas.errors import AtlasError, InputError
from gpt2atlas.model import generation
from gpt2atlas.model.generation import _filter_logits, _sample
from hf_utils import hf_random_checkpoint

PROMPT = "Hello, I'm a language model,"


@pytest.fixture(scope="module")
def hf_and_ours(tmp_path_factory):
    hf, folder = hf_random_checkpoint(
        tmp_path_factory.mktemp("gen") / "ck", n_layer=2, n_head=4, n_embd=64, n_positions=64, seed=3
    )
    return hf, load_model(folder)


def test_greedy_equals_huggingface_generate(hf_and_ours):
    hf, ours = hf_and_ours
    prompt = ours.to_tokens(PROMPT)
    expected = hf.generate(prompt, max_new_tokens=25, do_sample=False, pad_token_id=50256, eos_token_id=None)
    result = ours.generate(PROMPT, max_new_tokens=25, temperature=0, stop_at_eos=False)
    assert result.new_tokens[0] == expected[0, prompt.shape[1] :].tolist()
    assert len(result.new_tokens[0]) == 25


def test_kv_cache_equals_recomputing_everything(hf_and_ours):
    _, ours = hf_and_ours
    tokens = ours.to_tokens(PROMPT)
    for _ in range(10):
        tokens = torch.cat([tokens, ours(tokens)[:, -1].argmax(-1, keepdim=True)], dim=1)
    cached = ours.generate(PROMPT, max_new_tokens=10, temperature=0, stop_at_eos=False)
    assert cached.new_tokens[0] == tokens[0, -10:].tolist()


def test_same_seed_same_samples_and_batch(hf_and_ours):
    _, ours = hf_and_ours
    a = ours.generate(PROMPT, max_new_tokens=12, seed=42, num_samples=5, top_k=50, top_p=0.95)
    b = ours.generate(PROMPT, max_new_tokens=12, seed=42, num_samples=5, top_k=50, top_p=0.95)
    c = ours.generate(PROMPT, max_new_tokens=12, seed=43, num_samples=5, top_k=50, top_p=0.95)
    assert a.new_tokens == b.new_tokens and a.texts == b.texts
    assert a.new_tokens != c.new_tokens
    assert len(a.texts) == 5 and len({tuple(t) for t in a.new_tokens}) > 1  # the batch holds distinct samples
    assert all(0 < p <= 1 for row in a.token_probs for p in row)


def test_probabilities_of_chosen_tokens_match_the_model(hf_and_ours):
    _, ours = hf_and_ours
    result = ours.generate(PROMPT, max_new_tokens=3, temperature=0, stop_at_eos=False)
    tokens = ours.to_tokens(PROMPT)[0].tolist() + result.new_tokens[0]
    probs = ours(torch.tensor([tokens])).softmax(-1)[0]
    n = len(ours.to_tokens(PROMPT)[0])
    for i, token in enumerate(result.new_tokens[0]):
        assert probs[n - 1 + i, token].item() == pytest.approx(result.token_probs[0][i], rel=1e-4)


def test_alternatives_are_the_distribution_each_token_was_drawn_from(hf_and_ours):
    _, ours = hf_and_ours
    result = ours.generate(PROMPT, max_new_tokens=4, seed=1, num_samples=2, top_k=20, stop_at_eos=False, alternatives=5)
    same = ours.generate(PROMPT, max_new_tokens=4, seed=1, num_samples=2, top_k=20, stop_at_eos=False)
    assert same.new_tokens == result.new_tokens and same.top_tokens == []  # asking for them changes no sample
    n = len(ours.to_tokens(PROMPT)[0])
    for sample in range(2):
        tokens = ours.to_tokens(PROMPT)[0].tolist() + result.new_tokens[sample]
        probs = ours(torch.tensor([tokens])).softmax(-1)[0]
        for step in range(4):
            expected = probs[n - 1 + step].topk(5)
            assert result.top_tokens[sample][step] == expected.indices.tolist()
            assert result.top_probs[sample][step] == pytest.approx(expected.values.tolist(), rel=1e-4)
            drawn = result.new_tokens[sample][step]
            if drawn in result.top_tokens[sample][step]:
                at = result.top_tokens[sample][step].index(drawn)
                assert result.top_probs[sample][step][at] == pytest.approx(result.token_probs[sample][step])
    with pytest.raises(InputError, match="alternatives=-1"):
        ours.generate(PROMPT, max_new_tokens=2, alternatives=-1)


def test_top_k_and_top_p_filters():
    logits = torch.tensor([[4.0, 3.0, 2.0, 1.0, 0.0]])
    assert torch.isinf(_filter_logits(logits, 2, None)).tolist() == [[False, False, True, True, True]]
    probs = logits.softmax(-1)[0]  # 0.636, 0.234, 0.086, ...
    kept = ~torch.isinf(_filter_logits(logits, None, 0.8))
    assert kept.tolist() == [[True, True, False, False, False]] and probs[:2].sum() > 0.8
    assert (~torch.isinf(_filter_logits(logits, None, 0.5))).sum() == 1


def test_sampler_draws_each_token_with_its_probability():
    probs = torch.tensor([0.0, 0.5, 0.0, 0.3, 0.15, 0.05, 0.0])
    n = 40_000
    draws = _sample(probs.expand(n, -1), torch.Generator().manual_seed(0))
    counts = torch.bincount(draws, minlength=len(probs)).double()
    assert counts[probs == 0].sum() == 0  # a token of probability 0 is never drawn, at either end
    expected = probs.double() * n
    kept = probs > 0
    chi2 = (((counts - expected) ** 2)[kept] / expected[kept]).sum().item()
    assert chi2 < 16.3  # chi-square, 3 degrees of freedom, p = 0.001
    unnormalised = _sample((probs * 7).expand(n, -1), torch.Generator().manual_seed(0))
    assert torch.equal(unnormalised, draws)  # only the proportions matter


def test_nucleus_from_candidates_equals_the_full_sort(monkeypatch):
    logits = torch.randn(6, 500, generator=torch.Generator().manual_seed(1)) * 3
    logits[0] *= 0.01  # nearly flat: the nucleus is far larger than the candidates, so the full sort is taken
    for top_p in (0.3, 0.9, 0.99):
        full = _filter_logits(logits, None, top_p)
        monkeypatch.setattr(generation, "NUCLEUS_CANDIDATES", 64)
        assert torch.equal(torch.isinf(_filter_logits(logits[1:], None, top_p)), torch.isinf(full[1:]))
        assert torch.equal(torch.isinf(_filter_logits(logits, None, top_p)), torch.isinf(full))
        monkeypatch.undo()


def test_stops_at_the_context_with_a_message(hf_and_ours):
    _, ours = hf_and_ours
    messages = []
    prompt = list(range(60))
    result = ours.generate(prompt, max_new_tokens=30, temperature=0, stop_at_eos=False, warn=messages.append)
    assert result.stopped_at_context and len(result.new_tokens[0]) == 4
    assert "context is 64 tokens" in messages[0]
    with pytest.raises(InputError, match="fills the model's context"):
        ours.generate(list(range(64)), max_new_tokens=1)
    with pytest.raises(InputError, match="more than the model's context"):
        ours.generate(list(range(65)), max_new_tokens=1)


@pytest.mark.parametrize("bad", [dict(max_new_tokens=0), dict(temperature=-1), dict(top_p=0.0), dict(num_samples=0)])
def test_bad_settings(hf_and_ours, bad):
    _, ours = hf_and_ours
    with pytest.raises(InputError):
        ours.generate(PROMPT, **{"max_new_tokens": 3, **bad})


def test_non_finite_logits_are_a_clear_error_not_a_silent_token(hf_and_ours):
    _, ours = hf_and_ours
    saved = ours.ln_final.w.detach().clone()
    with torch.no_grad():
        ours.ln_final.w.fill_(float("nan"))  # what a float16 overflow looks like downstream
    try:
        for settings in (dict(temperature=0), dict(temperature=1.0, num_samples=3, seed=0)):
            with pytest.raises(AtlasError, match="not finite"):
                ours.generate(PROMPT, max_new_tokens=3, **settings)
    finally:
        with torch.no_grad():
            ours.ln_final.w.copy_(saved)
    assert ours.generate(PROMPT, max_new_tokens=2, temperature=0).new_tokens  # restored
