"""Residual stream: norms against the cache, planted outlier dims, position 0 left out of statistics."""

import pytest
import torch

from conftest import TINY, random_model
from gpt2atlas.analysis import residual
from gpt2atlas.areas import area, figures_of

PROMPT = "One two three four five six seven eight nine ten"


def test_norms_and_contributions_match_the_cache(tiny_model):
    f = residual.analyze(tiny_model, PROMPT).findings
    hooks = ["blocks.0.hook_resid_pre", "blocks.0.hook_resid_post", "blocks.1.hook_resid_post"]
    outputs = ["blocks.1.hook_attn_out", "blocks.1.hook_mlp_out"]
    _, cache = tiny_model.run_with_cache(PROMPT, names=hooks + outputs)
    expected = [float(cache[h][0, 1:].norm(dim=-1).mean()) for h in hooks]
    assert f.norm_by_layer == pytest.approx(expected, rel=1e-5)
    assert f.norm_position_0 == pytest.approx([float(cache[h][0, 0].norm()) for h in hooks], rel=1e-5)
    assert f.states == ["embed", "block 0", "block 1"] and f.state_hooks == hooks
    row = f.contributions[1]
    assert row.attn_out_norm == pytest.approx(float(cache[outputs[0]][0, 1:].norm(dim=-1).mean()), rel=1e-5)
    assert row.mlp_out_norm == pytest.approx(float(cache[outputs[1]][0, 1:].norm(dim=-1).mean()), rel=1e-5)
    assert f.position_0_excluded is True and "position 0" in f.position_note
    with_first = residual.analyze(tiny_model, PROMPT, include_first=True).findings
    all_positions = [float(cache[h][0].norm(dim=-1).mean()) for h in hooks]
    assert with_first.norm_by_layer == pytest.approx(all_positions, rel=1e-5)


def test_a_huge_constant_in_the_position_embedding_is_the_first_outlier_dim():
    model = random_model(TINY, seed=1)
    with torch.no_grad():
        model.W_pos[:, 13] += 3.0  # ~150x the typical |activation| of 0.02, at every position
    f = residual.analyze(model, PROMPT).findings
    assert f.outlier_dims[0].dim == 13
    assert f.outlier_dims[0].layers == [0, 1, 2]  # present from the embedding on
    assert f.outlier_dims[0].max_abs == pytest.approx(3.0, rel=0.1)
    assert f.outlier_dims[0].ratio_to_median > 50
    assert len(f.outlier_dims) == 1  # nothing else clears the threshold


def test_an_outlier_written_by_an_mlp_bias_appears_after_its_block():
    model = random_model(TINY, seed=2)
    with torch.no_grad():
        model.blocks[0].mlp.b_out[21] = 5.0
    f = residual.analyze(model, PROMPT).findings
    first = f.outlier_dims[0]
    assert first.dim == 21
    assert first.layers == [1, 2]  # after block 0 and after block 1, not in the embedding
    assert f.contributions[0].mlp_out_norm > 4.0


def test_a_massive_activation_at_position_0_only_stays_out_unless_asked():
    model = random_model(TINY, seed=3)
    with torch.no_grad():
        model.W_pos[0, 40] = 500.0
    excluded = residual.analyze(model, PROMPT).findings
    assert all(row.dim != 40 for row in excluded.outlier_dims)
    assert excluded.norm_position_0[0] > 100 * excluded.norm_by_layer[0]
    # named all the same, apart, against the other positions' median
    first = excluded.position_0_dims
    assert [row.dim for row in first] == [40] and first[0].ratio_to_median > 1000
    assert first[0].layers == list(range(len(excluded.states)))
    assert any(s.startswith("At position 0, left out above, dim 40 reaches") for s in area("residual").read(excluded))
    included = residual.analyze(model, PROMPT, include_first=True).findings
    assert included.outlier_dims[0].dim == 40 and included.position_0_excluded is False
    assert included.position_0_dims == []
    clean = residual.analyze(random_model(TINY, seed=3), PROMPT).findings
    assert clean.position_0_dims == []
    assert "Position 0 has no massive dimension either (none reaches the outlier threshold there)." in area(
        "residual"
    ).read(clean)


def test_outlier_dims_ratio_definition():
    states = torch.ones(2, 4, 6)
    states[1, 2, 3] = -50.0
    rows, ratios = residual.outlier_dims(states, threshold=20.0)
    assert rows == [residual.OutlierDim(dim=3, max_abs=50.0, ratio_to_median=50.0, layers=[1])]
    assert ratios.shape == (2, 6) and float(ratios[0].max()) == 1.0


def test_one_token_prompt_uses_position_0():
    assert residual.stat_positions(1).tolist() == [0]
    assert residual.stat_positions(4).tolist() == [1, 2, 3]
    assert residual.stat_positions(4, include_first=True).tolist() == [0, 1, 2, 3]
    assert residual.position_policy(1, False).position_0_excluded is False


def test_figures(tiny_model):
    result = residual.analyze(tiny_model, "a <tag> & more")
    figures = figures_of(result)
    assert set(figures) == {"norm_growth", "token_layer_norms", "outlier_dims"}
    heat = figures["token_layer_norms"].data[0]
    assert heat.z.shape == (len(result.findings.tokens), 3)
    assert any("&lt;" in label for label in heat.y) and not any("<" in label for label in heat.y)
