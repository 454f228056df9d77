"""Direct logit attribution, activation patching and attribution patching: equal to TransformerLens 3 on the
same weights, right on a hand-planted circuit and on the shipped mini, and bad input named."""

from __future__ import annotations

import pytest
import torch

from causes_cases import (
    INDUCTION_HEAD,
    PLANTED_TOKENS,
    PREVIOUS_TOKEN_HEAD,
    planted_model,
    planted_pair,
    transformer_lens_twin,
)
from gpt2atlas import load_model
from gpt2atlas.analysis.causes import SITES, attribution_patch, direct_logit_attribution, patch
from gpt2atlas.analysis.causes import patching as patching_module
from gpt2atlas.analysis.causes.attribution import compare
from gpt2atlas.errors import InputError
from hf_utils import hf_random_checkpoint

TL_FUNCTIONS = {
    "resid_pre": "get_act_patch_resid_pre",
    "attn_out": "get_act_patch_attn_out",
    "mlp_out": "get_act_patch_mlp_out",
    "head_out": "get_act_patch_attn_head_out_all_pos",
    "head_out_by_pos": "get_act_patch_attn_head_out_by_pos",
    "head_pattern": "get_act_patch_attn_head_pattern_all_pos",
}


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    """Our GPT-2 and TransformerLens's on the same random weights (scaled up, so that the logits move), with a
    clean/corrupted pair and the answer/other tokens whose logit difference the corruption changes most."""
    pytest.importorskip("transformer_lens")
    hf, folder = hf_random_checkpoint(tmp_path_factory.mktemp("causes") / "ck", n_layer=2, n_head=4, n_embd=64)
    with torch.no_grad():
        for name, p in hf.named_parameters():
            if p.ndim == 2:
                p.mul_(25.0 if "wte" in name or "wpe" in name else 4.0)
    hf.save_pretrained(folder)
    ours = load_model(folder)
    generator = torch.Generator().manual_seed(1)
    clean = torch.randint(0, 50257, (1, 7), generator=generator)
    corrupted = clean.clone()
    corrupted[0, :4] = torch.randint(0, 50257, (4,), generator=generator)
    with torch.no_grad():
        lc, lk = ours(clean)[0, -1], ours(corrupted)[0, -1]
    candidates = lc.topk(5).indices.tolist() + lk.topk(5).indices.tolist()
    answer, other = max(
        ((a, o) for a in candidates for o in candidates if a != o),
        key=lambda p: abs(float(lc[p[0]] - lc[p[1]] - lk[p[0]] + lk[p[1]])),
    )
    return ours, transformer_lens_twin(hf), clean, corrupted, answer, other


def _tl_metric(tl, clean, corrupted, answer, other):
    with torch.no_grad():
        ends = [float(tl(t)[0, -1, answer] - tl(t)[0, -1, other]) for t in (clean, corrupted)]

    def metric(logits):
        return (logits[0, -1, answer] - logits[0, -1, other] - ends[1]) / (ends[0] - ends[1])

    return metric


@pytest.mark.parametrize("site", SITES)
def test_patching_equals_transformer_lens(twins, site):
    import transformer_lens.patching as tl_patching

    ours, tl, clean, corrupted, answer, other = twins
    _, clean_cache = tl.run_with_cache(clean)
    metric = _tl_metric(tl, clean, corrupted, answer, other)
    expected = getattr(tl_patching, TL_FUNCTIONS[site])(tl, corrupted, clean_cache, metric)
    got = patch(ours, clean, corrupted, site, answer=answer, other=other)
    assert got.shape == expected.shape
    assert expected.abs().max() > 0.02  # the patches move the metric: the comparison is not of zeros
    assert (got - expected).abs().max() < 1e-4


def test_patching_in_small_batches_gives_the_same_values(twins, monkeypatch):
    ours, _, clean, corrupted, answer, other = twins
    whole = patch(ours, clean, corrupted, "head_out_by_pos", answer=answer, other=other)
    monkeypatch.setattr(patching_module, "MAX_ELEMENTS", 1)  # one copy per forward pass
    one_by_one = patch(ours, clean, corrupted, "head_out_by_pos", answer=answer, other=other)
    assert (whole - one_by_one).abs().max() < 1e-5


def test_a_custom_metric_is_used_as_given(twins):
    ours, _, clean, corrupted, answer, other = twins

    def logit_difference(logits):
        return logits[0, -1, answer] - logits[0, -1, other]

    raw = patch(ours, clean, corrupted, "resid_pre", metric=logit_difference)
    normalised = patch(ours, clean, corrupted, "resid_pre", answer=answer, other=other)
    with torch.no_grad():
        ends = [float(logit_difference(ours(t))) for t in (clean, corrupted)]
    assert (raw[0, :] - ends[1]).abs().max() > 0.1
    assert ((raw - ends[1]) / (ends[0] - ends[1]) - normalised).abs().max() < 1e-4


def test_dla_heads_equal_transformer_lens_stack_head_results(twins):
    ours, tl, clean, _, answer, other = twins
    found = direct_logit_attribution(ours, clean, answer=answer, other=other, position=-1)
    _, cache = tl.run_with_cache(clean)
    stack = cache.stack_head_results(layer=-1, apply_ln=True)[:, 0, -1]  # (layer * head, d_model)
    direction = tl.W_U[:, answer] - tl.W_U[:, other]
    expected = (stack * tl.ln_final.w) @ direction
    heads = [v for n, v in zip(found.names, found.values, strict=True) if "H" in n and "." not in n]
    assert len(heads) == ours.cfg.n_layer * ours.cfg.n_head
    assert (torch.tensor(heads) - expected.double()).abs().max() < 1e-4


def test_dla_parts_sum_to_the_real_logit_difference(twins):
    ours, _, clean, _, answer, other = twins
    for position in (-1, 3):
        found = direct_logit_attribution(ours, clean, answer=answer, other=other, position=position)
        logits = ours(clean)[0, position]
        real = float(logits[answer] - logits[other])
        assert abs(found.total - real) < 1e-4
        assert abs(sum(found.values) - real) < 1e-4
        assert found.names[:2] == ["embed", "pos_embed"] and found.names[-1] == "ln_final.bias"
        assert "L1H3" in found.names and "L0.attn_bias" in found.names and "L1.mlp" in found.names


def test_dla_defaults_to_the_top_prediction_and_takes_token_strings():
    mini = load_model("mini")
    prompt = "for key, value in mapping.items():\n    print(key,"
    found = direct_logit_attribution(mini, prompt)
    logits = mini(prompt)[0, -1]
    assert found.answer == int(logits.argmax())
    assert abs(found.total - float(logits.max())) < 1e-4 and abs(sum(found.values) - found.total) < 1e-4
    against = direct_logit_attribution(mini, prompt, answer=" value", other=" key")
    ids = mini.tokenizer.encode(" value") + mini.tokenizer.encode(" key")
    assert (against.answer, against.other) == tuple(ids)
    assert abs(against.total - float(logits[ids[0]] - logits[ids[1]])) < 1e-4


# ----- known answers -------------------------------------------------------------------------------------------
def test_planted_circuit_dla_names_the_induction_head_and_nothing_else():
    model = planted_model()
    clean, _, answer = planted_pair()
    found = direct_logit_attribution(model, clean, answer=answer, other=PLANTED_TOKENS[8])
    layer, head = INDUCTION_HEAD
    assert found.answer == answer == int(model(clean)[0, -1].argmax())
    assert found.above_chance == [f"L{layer}H{head}"]
    assert found.ranking.top == f"L{layer}H{head}"
    assert found.ranking.top_value > 0.9 * found.total
    assert abs(found.ranking.runner_up_value) < 0.05 * found.ranking.top_value


@pytest.mark.parametrize("site", ["head_out", "head_out_by_pos"])
def test_planted_circuit_head_patching_names_both_planted_heads(site):
    model = planted_model()
    clean, corrupted, answer = planted_pair()
    values = patch(model, clean, corrupted, site, answer=answer, other=PLANTED_TOKENS[8])
    per_head = values if site == "head_out" else values.amax(dim=1)  # the best position of each head
    planted = [PREVIOUS_TOKEN_HEAD, INDUCTION_HEAD]
    for layer, head in planted:
        assert per_head[layer, head] > 0.9
    others = [float(per_head[l, h].abs()) for l in range(2) for h in range(4) if (l, h) not in planted]
    assert max(others) < 0.05


def test_planted_circuit_attribution_patching_agrees_with_patching():
    model = planted_model()
    clean, corrupted, answer = planted_pair()
    checks = {}
    for site in ("head_out", "head_pattern", "mlp_out"):
        patched = patch(model, clean, corrupted, site, answer=answer, other=PLANTED_TOKENS[8])
        estimated = attribution_patch(model, clean, corrupted, site, answer=answer, other=PLANTED_TOKENS[8])
        assert estimated.shape == patched.shape
        checks[site] = compare(site, patched, estimated)
        assert checks[site].correlation > 0.98, (site, checks[site])
    # where a planted head switches its pattern on, the saturated softmax makes the linear estimate overshoot
    worst = checks["head_out"].largest_disagreements[:2]
    assert {d.component for d in worst} == {"L0H0", "L1H0"}
    assert all(0.9 < d.patched < 1.1 and d.estimated > 1.5 for d in worst)


MINI_LINE = "    self.assertEqual(widget.colour, expected_colour)\n"
MINI_CORRUPTIONS = [
    "    self.assertEqual(button.height, default_height)\n",
    "    self.assertTrue(parser.strict, allowed_values)\n",
]


@pytest.mark.parametrize("replacement", MINI_CORRUPTIONS)
def test_mini_head_patching_ranks_the_induction_head_first(replacement):
    from gpt2atlas.analysis import attention

    mini = load_model("mini")
    line, other_line = mini.tokenizer.encode(MINI_LINE), mini.tokenizer.encode(replacement)
    assert len(line) == len(other_line)
    cut = len(line) - 3  # "... expected_" -> "colour", which only the first copy tells
    clean, corrupted = line + line[:cut], other_line + line[:cut]
    best = attention.analyze(mini, mini.tokenizer.decode(clean)).findings.prompt_induction.best
    assert best is not None and (best.layer, best.head) == (1, 3)
    values = patch(mini, clean, corrupted, "head_out", answer=line[cut])
    assert divmod(int(values.argmax()), mini.cfg.n_head) == (best.layer, best.head)
    assert values[1, 3] > 0.9 and values.flatten().topk(2).values[1] < 0.3


# ----- bad input ---------------------------------------------------------------------------------------------
def _error(fn, *args, **kwargs) -> InputError:
    with pytest.raises(InputError) as caught:
        fn(*args, **kwargs)
    return caught.value


def test_bad_input_is_named(tiny_model):
    m = tiny_model
    err = _error(patch, m, "The cat sat on the mat", "The dog sat", "resid_pre")
    assert err.arguments == ("clean", "corrupted") and "clean has 6" in str(err) and "corrupted has 3" in str(err)
    err = _error(patch, m, "The cat sat", "The cat sat", "resid_pre")
    assert "same tokens" in str(err) and "undefined" in str(err)
    err = _error(patch, m, "The cat sat", "The dog sat", "neurons")
    assert err.arguments == ("site",) and "resid_pre" in str(err)
    err = _error(patch, m, "The cat sat", "The dog sat", "resid_pre", answer=" Maryanne")
    assert err.arguments == ("answer",) and "tokenizes as" in str(err) and "2 tokens" in str(err)
    err = _error(attribution_patch, m, "The cat sat", "The dog sat", "head_out", other=50257)
    assert err.arguments == ("other",)
    err = _error(patch, m, "The cat sat", "The dog sat", "head_out", answer=" mat", other=" mat")
    assert err.arguments == ("answer", "other")
    err = _error(direct_logit_attribution, m, "The cat sat", position=3)
    assert err.arguments == ("position",) and "3 tokens" in str(err)
    assert direct_logit_attribution(m, "The cat sat", position=-3).position == 0
    err = _error(direct_logit_attribution, m, "The cat sat", answer="")
    assert err.arguments == ("answer",)
