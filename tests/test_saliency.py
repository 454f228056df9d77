"""Saliency: completeness of integrated gradients, gradient x input against autograd, planted dependencies."""

import json

import pytest
import torch

from conftest import TINY, random_model
from gpt2atlas.analysis import saliency
from gpt2atlas.areas import figures_of
from gpt2atlas.cli.main import main
from gpt2atlas.errors import InputError

PROMPT = "The capital of France is the city of"


def _target_logit(model, tokens, token_embeds, target):
    """The target's last-position logit with hook_embed replaced, through the public run_with_hooks."""
    logits = model.run_with_hooks(tokens, fwd_hooks=[("hook_embed", lambda act, hook: token_embeds)])
    return logits[0, -1, target]


def test_integrated_gradients_are_complete(tiny_model):
    f = saliency.analyze(tiny_model, PROMPT).findings
    c = f.completeness
    assert c.sum_integrated_gradients == pytest.approx(sum(f.integrated_gradients))
    assert c.abs_error < 1e-4 * max(1.0, abs(c.f_difference))
    tokens = tiny_model.to_tokens(PROMPT)
    zeros = torch.zeros(1, tokens.shape[1], TINY.d_model)
    with torch.no_grad():
        baseline = _target_logit(tiny_model, tokens, zeros, f.target.token_id).item()
    assert c.f_baseline == pytest.approx(baseline, abs=1e-5)
    assert c.f_input == pytest.approx(f.target.logit, abs=1e-5)


def test_gradient_x_input_equals_autograd(tiny_model):
    f = saliency.analyze(tiny_model, PROMPT, steps=4).findings
    tokens = tiny_model.to_tokens(PROMPT)
    embeds = tiny_model.W_E[tokens].clone().requires_grad_(True)
    _target_logit(tiny_model, tokens, embeds, f.target.token_id).backward()
    expected = (embeds.grad * embeds.detach()).sum(-1)[0]
    assert f.gradient_x_input == pytest.approx(expected.tolist(), abs=1e-6)


def test_quadrature_matches_a_fine_riemann_sum(tiny_model):
    f = saliency.analyze(tiny_model, "one two three", steps=8).findings
    tokens = tiny_model.to_tokens("one two three")
    embeds = tiny_model.W_E[tokens[0]]
    alphas = (torch.arange(200) + 0.5) / 200  # midpoint rule, fine grid
    target = f.target.token_id
    _, _, grads, _ = saliency.target_gradients(tiny_model, tokens, alphas[:, None, None] * embeds, target)
    riemann = (grads * embeds).sum(-1).mean(0)
    assert f.integrated_gradients == pytest.approx(riemann.tolist(), abs=1e-5)


def _copy_first_token_model():
    """Attention and MLP outputs are switched off except one layer-0 head that copies position 0 to every position:
    the last position's logits then depend on the first token and the last token, and on nothing between."""
    model = random_model(TINY, seed=5)
    d_model, d_head = TINY.d_model, TINY.d_head
    with torch.no_grad():
        for block in model.blocks:
            block.attn.W_O.zero_()
            block.attn.b_O.zero_()
            block.mlp.W_out.zero_()
            block.mlp.b_out.zero_()
        attn = model.blocks[0].attn
        model.W_pos[0, d_model - 1] = 1.0  # a marker only position 0 carries
        attn.W_QKV[:, 0:d_head] = 0.0  # head 0 query: a constant, from the bias
        attn.b_QKV[0] = 20.0
        attn.W_QKV[:, d_model : d_model + d_head] = 0.0  # head 0 key: reads the marker
        attn.W_QKV[d_model - 1, d_model] = 1.0
        attn.W_O[0:d_head, 0:d_head] = torch.eye(d_head)  # head 0 writes its value back to the stream
    return model


def test_planted_dependency_shows_in_the_scores():
    model = _copy_first_token_model()
    f = saliency.analyze(model, "alpha beta gamma delta epsilon").findings
    ig, gxi = f.integrated_gradients, f.gradient_x_input
    scale = max(abs(v) for v in ig)
    assert abs(ig[0]) > 0.05 * scale and abs(ig[-1]) > 0.05 * scale
    assert all(abs(v) < 1e-4 * scale for v in ig[1:-1])
    assert all(abs(v) < 1e-4 * scale for v in gxi[1:-1])
    assert f.completeness.relative_error < 1e-4
    assert {row.position for row in f.most_salient[:2]} == {0, len(ig) - 1}


def test_target_default_and_user_choice(tiny_model):
    f = saliency.analyze(tiny_model, PROMPT, steps=2).findings
    logits = tiny_model(PROMPT)[0, -1]
    assert f.target.token_id == int(logits.argmax()) and f.target.rank == 0
    assert f.target.chosen_by == "the model's top next token"
    chosen = saliency.analyze(tiny_model, PROMPT, target=" Paris", steps=2).findings.target
    paris = tiny_model.tokenizer.encode(" Paris")[0]
    assert chosen.token_id == paris and chosen.chosen_by == "user"
    assert chosen.rank == int((logits > logits[paris]).sum())
    assert chosen.probability == pytest.approx(logits.softmax(-1)[paris].item(), rel=1e-4)
    with pytest.raises(InputError, match="not one"):
        saliency.analyze(tiny_model, PROMPT, target=" Parisienne tower")
    with pytest.raises(InputError, match="steps"):
        saliency.analyze(tiny_model, PROMPT, steps=0)


def test_figures_are_escaped(tiny_model):
    result = saliency.analyze(tiny_model, "x <b>bold</b> & y", target="<", steps=2)
    figures = figures_of(result)
    assert set(figures) == {"tokens_coloured", "scores_bar"}
    for fig in figures.values():
        assert "<b>" not in fig.to_json()


def test_cli(tmp_path, tiny_checkpoint, capsys):
    out = tmp_path / "out"
    assert (
        main(
            [
                "saliency",
                "--model",
                str(tiny_checkpoint),
                "--prompt",
                PROMPT,
                "--out",
                str(out),
                "--no-png",
                "--target",
                " Paris",
                "--steps",
                "4",
            ]
        )
        == 0
    )
    findings = json.loads((out / "saliency" / "findings.json").read_text())
    assert findings["target"]["token"] == " Paris"
    assert len(findings["integrated_gradients"]) == len(findings["tokens"]) == 8
    capsys.readouterr()
    assert (
        main(
            [
                "saliency",
                "--model",
                str(tiny_checkpoint),
                "--prompt",
                PROMPT,
                "--out",
                str(out),
                "--target",
                " Parisienne tower",
            ]
        )
        == 1
    )
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
