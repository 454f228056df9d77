"""LayerNorm geometry: the invariants, planted gains / offsets / position dims, the toys."""

import math

import pytest
import torch

from conftest import TINY, random_model
from gpt2atlas.analysis import layernorm
from gpt2atlas.areas import figures_of
from gpt2atlas.errors import InputError

PROMPT = "The quick brown fox jumps over the lazy dog because it was bored"


def _analyze(model, **kwargs):
    return layernorm.analyze(
        model, PROMPT, superposition_vectors=200, superposition_dim=20, superposition_steps=3, **kwargs
    )


def test_steps_are_layernorm_and_keep_their_invariants():
    gen = torch.Generator().manual_seed(1)
    d = 48
    x = torch.randn(20, d, generator=gen, dtype=torch.float64) * 3 + 7.0  # a big common offset
    gamma = torch.rand(d, generator=gen, dtype=torch.float64) + 0.5
    beta = torch.randn(d, generator=gen, dtype=torch.float64)
    steps = layernorm.layernorm_steps(x, gamma, beta, 1e-5)
    expected = torch.nn.functional.layer_norm(x, (d,), gamma, beta, 1e-5)
    assert torch.allclose(steps.output, expected, atol=1e-12)
    assert steps.centred.mean(dim=-1).abs().max() < 1e-12
    assert torch.allclose(steps.centred, x - x.mean(dim=-1, keepdim=True))
    sphere = torch.full((20,), math.sqrt(d), dtype=torch.float64)
    assert torch.allclose(steps.normalized.norm(dim=-1), sphere, rtol=1e-5)
    assert torch.allclose(steps.scaled, steps.normalized * gamma)


def test_every_layernorm_matches_the_model_and_the_invariants_hold(tiny_model):
    f = _analyze(tiny_model).findings
    assert [r.name for r in f.layernorms] == [
        "blocks.0.ln1",
        "blocks.0.ln2",
        "blocks.1.ln1",
        "blocks.1.ln2",
        "ln_final",
    ]
    inv = f.invariants
    assert inv.centred_has_zero_mean and inv.norm_is_sqrt_d_up_to_eps and inv.matches_model
    assert inv.max_abs_diff_vs_model < 1e-5
    assert f.sqrt_d == pytest.approx(8.0)
    # the tiny model's stream is small (var ~ 4e-4), so eps visibly shrinks the norm below sqrt(d) ...
    row = f.layernorms[0]
    assert 7.5 < row.norm_before_gain < 8.0
    # ... exactly as sqrt(d var / (var + eps)) says
    assert row.norm_before_gain_max_abs_dev_from_eps_formula < 1e-9
    assert f.position_0_excluded is True


def test_planted_offset_is_removed_by_centring_and_big_inputs_sit_on_the_sqrt_d_sphere():
    model = random_model(TINY, seed=3)
    with torch.no_grad():
        model.W_pos.add_(5.0)  # every position: a large component along the all-ones vector
    f = _analyze(model).findings
    first = f.layernorms[0]
    assert first.centring_share > 0.99
    assert first.angle_centring_deg > 80
    # with |x| ~ 40 the variance dwarfs eps: the norm before the gain is sqrt(d) to 1e-4
    big = random_model(TINY, seed=3)
    with torch.no_grad():
        big.W_E.mul_(100.0)
    row = _analyze(big).findings.layernorms[0]
    assert row.norm_before_gain_max_rel_dev_from_sqrt_d < 1e-4


def test_planted_gains_and_shift_are_found():
    model = random_model(TINY, seed=4)
    with torch.no_grad():
        ln = model.blocks[1].ln2
        ln.w.copy_(1.0 + 0.01 * torch.randn(TINY.d_model, generator=torch.Generator().manual_seed(0)))
        ln.w[7] = 9.0
        ln.w[3] = 0.001
        ln.b[11] = 2.0
    f = _analyze(model).findings
    row = next(r for r in f.layernorms if r.name == "blocks.1.ln2")
    gain = row.gain
    assert gain.most_amplified_dims[0] == 7 and gain.gamma_max == pytest.approx(9.0)
    assert gain.most_suppressed_dims[0] == 3 and gain.gamma_min == pytest.approx(0.001)
    assert set(gain.gamma_outlier_dims) == {3, 7}
    assert row.beta_norm == pytest.approx(2.0)
    assert row.max_abs_diff_vs_model < 1e-4
    assert f.invariants.matches_model
    untouched = next(r for r in f.layernorms if r.name == "blocks.0.ln1")
    assert untouched.gain.gamma_outlier_dims == [] and untouched.beta_norm == 0.0


def test_gains_that_follow_the_position_embedding_correlate_with_it():
    model = random_model(TINY, seed=5)
    with torch.no_grad():
        model.W_pos[:, 5] *= 40.0
        model.W_pos[:, 9] *= 20.0
        pos_std = model.W_pos.std(dim=0)
        model.blocks[0].ln1.w.copy_(pos_std / pos_std.mean())  # gain proportional to the position std
    g = _analyze(model).findings.gamma_vs_position
    assert [row.dim for row in g.position_dims[:2]] == [5, 9]
    correlations = {row.name: row.pearson for row in g.correlation}
    assert correlations["blocks.0.ln1"] == pytest.approx(1.0, abs=1e-9)
    assert correlations["ln_final"] is None  # a constant gain correlates with nothing


def test_toy_lands_on_the_plane_then_the_circle():
    numbers, steps = layernorm.toy_3d(seed=0)
    assert numbers.centred_sum_max_abs < 1e-12
    assert (steps.centred @ torch.ones(3, dtype=torch.float64)).abs().max() < 1e-12  # on the plane
    radius = steps.normalized.norm(dim=-1)
    exact = (3 * steps.variance / (steps.variance + numbers.eps)).sqrt()  # sqrt(3) up to eps
    assert (radius - exact).abs().max() < 1e-12
    assert numbers.radius_max <= math.sqrt(3) and numbers.radius_min > 0.99 * math.sqrt(3)


def test_gelu_minimum_and_layer_numbers(tiny_model):
    f = _analyze(tiny_model, layer=0).findings.gelu
    assert f.minimum == pytest.approx(-0.170, abs=1e-3)
    assert f.argmin == pytest.approx(-0.75, abs=0.01)
    assert f.layer == 0
    assert 0.3 < f.fraction_pre_activations_negative < 0.7  # random weights: about half


def test_superposition_toy_narrows_the_angles_but_cannot_beat_welch():
    numbers, before, after = layernorm.superposition_toy(n_vectors=200, dim=20, steps=25, seed=0)
    assert len(before) == len(after) == 200 * 199 // 2
    random_spread = numbers.random.max_angle - numbers.random.min_angle
    optimised_spread = numbers.optimised.max_angle - numbers.optimised.min_angle
    assert optimised_spread < 0.7 * random_spread
    worst_cos = math.cos(math.radians(numbers.optimised.min_angle))
    assert worst_cos >= numbers.welch_bound.min_possible_max_abs_cos - 1e-6


def test_adam_update_equals_torch_optim_adam():
    gen = torch.Generator().manual_seed(4)
    ours = torch.randn(30, 7, generator=gen)
    theirs = ours.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([theirs], lr=0.1)
    moments = (torch.zeros_like(ours), torch.zeros_like(ours))
    for step in range(1, 8):
        grad = torch.randn(30, 7, generator=gen) * step
        layernorm.adam_update(ours, grad, moments, step, lr=0.1)
        theirs.grad = grad.clone()
        optimizer.step()
    assert torch.allclose(ours, theirs.detach(), rtol=1e-6, atol=1e-7)
    assert not torch.allclose(ours, torch.randn(30, 7, generator=torch.Generator().manual_seed(4)), atol=0.1)


def test_welch_limits_known_values():
    limits = layernorm.welch_limits(1000, 100, (89.0, 91.0))
    assert limits.min_possible_max_abs_cos == pytest.approx(math.sqrt(900 / (100 * 999)))
    assert limits.max_vectors_all_in_band == 103
    assert layernorm.welch_limits(10, 10_000, (89.0, 91.0)).max_vectors_all_in_band is None


def test_bad_layer_is_an_input_error(tiny_model):
    with pytest.raises(InputError, match="layer=5 is out of range"):
        _analyze(tiny_model, layer=5)


def test_figures_escape_the_prompt(tiny_model):
    result = layernorm.analyze(tiny_model, "x <b> & <i>", superposition_vectors=50, superposition_dim=10)
    assert any("<" in t for t in result.findings.tokens[1:])  # the prompt has tokens holding "<" ...
    figures = figures_of(result)
    assert set(figures) == {"toy_3d", "steps_3d", "gamma_per_dim", "gamma_vs_position", "gelu", "superposition"}
    text = figures["steps_3d"].to_json()
    assert "&lt;" in text and "&amp;" in text  # ... which reach the hover text escaped
    for token in result.findings.tokens[1:]:
        if "<" in token:
            assert f'"{token.replace(" ", "·")}<br>' not in text


def test_a_bfloat16_model_still_matches_within_its_rounding():
    model = random_model(TINY, seed=9).to(torch.bfloat16)
    inv = _analyze(model).findings.invariants
    assert inv.matches_model and 0 < inv.max_abs_diff_vs_model <= inv.matches_model_tolerance < 0.2
    assert inv.centred_has_zero_mean and inv.norm_is_sqrt_d_up_to_eps  # the steps themselves run in float64
