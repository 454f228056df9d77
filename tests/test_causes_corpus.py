"""Ablation over a corpus, the built-in induction pair, and the findings written as JSON."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

import gpt2atlas.causes as causes
from causes_cases import INDUCTION_HEAD, PLANTED_TOKENS, PREVIOUS_TOKEN_HEAD, planted_model
from gpt2atlas.analysis.base import to_jsonable
from gpt2atlas.analysis.causes.ablation import corpus_windows
from gpt2atlas.errors import InputError
from gpt2atlas.model.names import act_name

CORPUS = "\n".join(f"def f{i}(x):\n    return x * {i} + {i * i}  # line {i}" for i in range(60))


def _loss_with(model, windows, hook_name, replace):
    """Mean next-token loss with one activation replaced, the plain way: hooks and full logits."""
    losses = []
    for row in windows:
        logits = model.run_with_hooks(row[None, :-1], fwd_hooks=[(hook_name, lambda a, hook: replace(a))])
        losses.append(F.cross_entropy(logits[0], row[1:], reduction="sum"))
    return float(torch.stack(losses).sum() / windows[:, 1:].numel())


def test_ablation_equals_hooks_and_full_logits(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("GPT2ATLAS_CACHE", str(tmp_path / "cache"))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(CORPUS)
    found = causes.ablate(tiny_model, str(corpus), context=32, max_tokens=96, batch_size=2, progress=False)
    windows = corpus_windows(tiny_model, str(corpus), 32, 96, progress=False)
    assert found.windows == len(windows) == 3 and found.tokens == 96
    assert [c.component for c in found.components[:5]] == ["L0H0", "L0H1", "L0H2", "L0H3", "L0.mlp"]
    base = _loss_with(tiny_model, windows, "hook_embed", lambda a: a)
    assert abs(found.base_loss - base) < 1e-4

    def zero_head(z):
        z = z.clone()
        z[:, :, 2] = 0
        return z

    zeroed = _loss_with(tiny_model, windows, act_name("z", 1), zero_head)
    by_name = {c.component: c for c in found.components}
    assert abs(by_name["L1H2"].zero - (zeroed - base)) < 1e-4
    _, cache = tiny_model.run_with_cache(windows[:, :-1], names=[act_name("mlp_out", 0)])
    mean = cache[act_name("mlp_out", 0)].mean((0, 1))
    averaged = _loss_with(tiny_model, windows, act_name("mlp_out", 0), lambda a: mean.expand_as(a))
    assert abs(by_name["L0.mlp"].mean - (averaged - base)) < 1e-4
    assert by_name["L0.mlp"].zero != 0 and found.zero_ranking.top in by_name


def test_ablation_names_bad_data(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("GPT2ATLAS_CACHE", str(tmp_path / "cache"))
    with pytest.raises(InputError) as caught:
        causes.ablate(tiny_model, str(tmp_path / "missing.txt"), progress=False)
    assert caught.value.arguments == ("data",)


def test_built_in_pair_on_the_planted_circuit_finds_both_heads():
    model = planted_model()
    prompt = PLANTED_TOKENS[:8]
    clean, corrupted, answer = causes.induction_pair(model, prompt)
    assert clean == prompt + prompt[:-1] and corrupted[8:] == prompt[:-1] and answer == prompt[-1]
    assert all(a != b for a, b in zip(clean[:8], corrupted[:8], strict=True))
    found = causes.analyze(model, prompt, sites=("head_out", "head_pattern"))
    assert found.built_in_pair and found.pair.answer == answer
    head_out = found.sweeps[0]
    # The whole first copy is replaced, so the previous-token head alone restores nothing: with its clean output
    # the induction head finds the right position but copies the corrupted token there (an AND of the two heads).
    assert head_out.ranking.top == "L{}H{}".format(*INDUCTION_HEAD) and head_out.ranking.top_value > 0.95
    assert abs(head_out.ranking.runner_up_value) < 0.05 and abs(head_out.ranking.median) < 0.01
    assert abs(head_out.values[PREVIOUS_TOKEN_HEAD[0]][PREVIOUS_TOKEN_HEAD[1]]) < 0.05
    # `other` defaults to the corrupted run's top prediction: the current token, which the tied embedding
    # predicts directly, so the token embedding rightly pushes against the answer
    assert found.pair.other == prompt[-2] and found.attribution.above_chance == ["embed", "L1H0"]
    values = dict(zip(found.attribution.names, found.attribution.values, strict=True))
    assert values["embed"] < 0 < values["L1H0"]
    assert found.estimates[0].correlation > 0.99
    # the induction head's pattern: patching restores a little, the gradient (a saturated softmax) says the
    # opposite sign; attribution patching's largest disagreement names it
    pattern = found.estimates[1].largest_disagreements[0]
    assert pattern.component == "L1H0" and pattern.patched > 0.03 and pattern.estimated < 0
    written = json.loads(json.dumps(to_jsonable(found)))
    assert written["sweeps"][0]["axes"] == ["layer", "head"] and len(written["sweeps"][0]["values"]) == 2
    assert written["attribution"]["names"][-1] == "ln_final.bias"


def test_built_in_pair_needs_room_for_two_copies(tiny_model):
    with pytest.raises(InputError) as caught:
        causes.induction_pair(tiny_model, list(range(1000, 1070)))
    assert caught.value.arguments == ("prompt",) and "139" in str(caught.value)
