"""The token's journey: the logit lens against the model's logits, planted streams, cosines, trajectories."""

import math

import numpy as np
import pytest
import torch

from conftest import TINY, random_model
from gpt2atlas.analysis import journey
from gpt2atlas.analysis.base import to_jsonable
from gpt2atlas.areas import figures_of
from gpt2atlas.errors import InputError

PROMPT = "Alice went to the market and Bob went to the"


def _analyze(model, prompt=PROMPT, **kwargs):
    return journey.analyze(model, prompt, projections=("pca",), **kwargs)


def test_the_lens_at_the_last_layer_is_the_models_output(tiny_model):
    f = _analyze(tiny_model).findings
    logits = tiny_model(PROMPT)[0]
    assert f.top1[-1] == [tiny_model.tokenizer.vocab[i] for i in logits.argmax(-1).tolist()]
    assert f.final_token_rank[-1] == [0] * len(f.tokens)
    assert max(abs(k) for k in f.kl_to_final[-1]) < 1e-6
    assert f.lens_vs_model_max_abs_diff < 1e-4
    probs = logits.softmax(-1)
    top = f.top_k[-1][-1]
    assert [c.id for c in top] == probs[-1].topk(5).indices.tolist()
    assert [c.prob for c in top] == pytest.approx(probs[-1].topk(5).values.tolist(), rel=1e-4)
    assert f.layers == ["embed", "block 0", "block 1"]
    assert f.layer_hooks[0] == "blocks.0.hook_resid_pre" and f.layer_hooks[-1] == "blocks.1.hook_resid_post"


def test_the_lens_reads_each_layer_before_ln_final(tiny_model):
    f = _analyze(tiny_model).findings
    _, cache = tiny_model.run_with_cache(PROMPT, names=["blocks.0.hook_resid_post"])
    with torch.no_grad():
        log_p = tiny_model.unembed(tiny_model.ln_final(cache["blocks.0.hook_resid_post"][0])).log_softmax(-1)
    final = tiny_model(PROMPT)[0].log_softmax(-1)
    kl = (final.exp() * (final - log_p)).sum(-1)
    # KL of a few 1e-3 from log-probabilities of magnitude ~11 in float32: the analysis unembeds many rows in one
    # product, this check one layer's rows, and BLAS may sum those in another order (it does on some CPUs)
    assert f.kl_to_final[1] == pytest.approx(kl.tolist(), rel=1e-4, abs=1e-5)
    ranks = (log_p > log_p.gather(-1, final.argmax(-1, keepdim=True))).sum(-1)
    assert f.final_token_rank[1] == ranks.tolist()
    assert f.kl_to_final_mean[1] == pytest.approx(float(kl[1:].mean()), rel=1e-4, abs=1e-5)  # position 0 left out


def test_blocks_that_write_nothing_leave_every_layer_at_the_final_answer():
    model = random_model(TINY, seed=6)
    with torch.no_grad():
        for block in model.blocks:
            for p in (block.attn.W_O, block.attn.b_O, block.mlp.W_out, block.mlp.b_out):
                p.zero_()
    f = _analyze(model).findings
    n = len(f.tokens)
    assert f.final_token_rank == [[0] * n] * 3
    assert np.abs(np.asarray(f.kl_to_final)).max() < 1e-6
    assert f.cosine.previous_layer.mean[1:] == pytest.approx([1.0, 1.0])
    assert f.centroid_distance_mean[0] == pytest.approx(f.centroid_distance_mean[-1])


def test_cosines_with_embeddings_when_there_is_no_position_embedding():
    model = random_model(TINY, seed=7)
    with torch.no_grad():
        model.W_pos.zero_()
    f = _analyze(model).findings
    cos = f.cosine
    assert cos.own_embedding.per_position[0] == pytest.approx([1.0] * len(f.tokens))
    assert cos.previous_layer.per_position[0] == [None] * len(f.tokens)
    assert all(row[-1] is None for row in cos.next_token_embedding.per_position)
    assert all(row[-1] == pytest.approx(1.0) for row in cos.last_position.per_position)
    ids = model.to_tokens(PROMPT)[0]
    w_e = model.W_E[ids]
    expected = torch.nn.functional.cosine_similarity(w_e[:-1], w_e[1:], dim=-1)
    assert cos.next_token_embedding.per_position[0][:-1] == pytest.approx(expected.tolist(), abs=1e-5)
    assert cos.next_token_embedding.mean[0] == pytest.approx(float(expected[1:].mean()), abs=1e-5)


def test_cloud_spread_matches_its_definition(tiny_model):
    f = _analyze(tiny_model).findings
    _, cache = tiny_model.run_with_cache(PROMPT, names=["blocks.1.hook_resid_post"])
    x = cache["blocks.1.hook_resid_post"][0, 1:]
    assert f.covariance_trace[-1] == pytest.approx(float(torch.cov(x.T).trace()), rel=1e-4)
    assert f.centroid_distance_mean[-1] == pytest.approx(float((x - x.mean(0)).norm(dim=-1).mean()), rel=1e-5)


def test_pca_trajectory_and_position_choice(tiny_model):
    result = _analyze(tiny_model, position=2)
    t = result.findings.trajectory
    assert t.position == 2 and t.token == result.findings.tokens[2]
    assert np.asarray(t.pca).shape == (3, 2) and result.pca.shape == (3, len(result.findings.tokens), 2)
    assert sum(t.pca_explained_variance_ratio) <= 1.0 + 1e-9
    assert "umap" not in to_jsonable(t) and t.umap is None and result.umap_points is None
    assert _analyze(tiny_model, position=-1).findings.trajectory.position == len(result.findings.tokens) - 1


def test_pca_of_a_planted_line_puts_it_on_the_first_axis():
    direction = torch.tensor([1.0, 0.0, 0.0, 0.0])
    other = torch.tensor([0.0, 1.0, 0.0, 0.0])
    # 3 states x 5 positions: points spread along `direction` with a little along `other`
    spread = torch.linspace(-1, 1, 5)
    states = torch.stack(
        [
            torch.stack([s * direction + 0.1 * k * other + torch.tensor([0, 0, 5.0, 0]) for s in spread])
            for k in range(3)
        ]
    )
    coords, ratio = journey.pca_trajectories(states, torch.arange(5))
    assert ratio[0] > ratio[1]
    first_axis = coords[0, :, 0]
    assert np.all(np.diff(first_axis) > 0) or np.all(np.diff(first_axis) < 0)


def test_smooth_memberships_follow_umaps_definition():
    distances = np.sort(np.random.default_rng(0).random((6, 15)), axis=1)
    memberships = journey.smooth_memberships(distances, distances[:, 0], n_neighbors=16)
    assert memberships.sum(axis=1) == pytest.approx(np.full(6, math.log2(16)), rel=1e-6)
    assert np.all(memberships[:, 0] == 1.0) and np.all(np.diff(memberships, axis=1) <= 1e-12)


def test_fuzzy_graph_is_the_symmetric_union():
    points = torch.nn.functional.normalize(torch.randn(40, 8, generator=torch.Generator().manual_seed(0)), dim=1)
    sims, knn = (points @ points.T).topk(6, dim=1)
    graph = journey.fuzzy_graph(knn.numpy(), (1 - sims).clamp_min(0).double().numpy()).toarray()
    assert np.allclose(graph, graph.T) and np.all(np.diag(graph) == 0)
    assert graph.max() <= 1.0 + 1e-12 and graph.min() >= 0.0
    directed = np.zeros((40, 40), dtype=bool)
    directed[np.repeat(np.arange(40), 5), knn[:, 1:].numpy().ravel()] = True
    assert np.array_equal(graph > 0, directed | directed.T)  # an edge wherever either end lists the other


@pytest.mark.slow  # umap-learn compiles its own version first (several seconds of numba JIT)
def test_fuzzy_graph_equals_umap_learns():
    from umap.umap_ import fuzzy_simplicial_set

    points = torch.nn.functional.normalize(torch.randn(300, 16, generator=torch.Generator().manual_seed(1)), dim=1)
    sims, knn = (points @ points.T).topk(11, dim=1)
    distances = (1 - sims).clamp_min(0).double().numpy()
    distances[:, 0] = 0.0
    ours = journey.fuzzy_graph(knn.numpy(), distances).toarray()
    theirs, _, _ = fuzzy_simplicial_set(
        points.numpy(),
        11,
        np.random.RandomState(0),
        "cosine",
        knn_indices=knn.numpy().astype(np.int32),
        knn_dists=distances.astype(np.float32),
    )
    assert np.abs(ours - theirs.toarray()).max() < 1e-5


def test_bad_inputs(tiny_model):
    with pytest.raises(InputError, match="position=40 is out of range"):
        _analyze(tiny_model, position=40)
    with pytest.raises(InputError, match="top_k"):
        _analyze(tiny_model, top_k=0)
    with pytest.raises(InputError, match="projection"):
        journey.analyze(tiny_model, PROMPT, projections=("tsne",))
    with pytest.raises(InputError, match="empty"):
        journey.analyze(tiny_model, "")


def test_figures_escape_tokens(tiny_model):
    result = _analyze(tiny_model, "<i>x</i> & y")
    figures = figures_of(result)
    assert set(figures) == {"logit_lens", "rank_kl", "cosines", "trajectory"}
    table = figures["logit_lens"].data[0]
    assert np.asarray(table.z).shape == (3, len(result.findings.tokens))
    assert not any("<" in label for label in table.x) and any("&lt;" in label for label in table.x)


@pytest.mark.slow  # UMAP's first fit in a process compiles its numba kernels
def test_umap_places_a_token_that_never_moves_on_its_own_embedding():
    model = random_model(TINY, seed=8)
    with torch.no_grad():
        model.W_pos.zero_()
        for block in model.blocks:  # the stream stays the token's embedding at every layer
            for p in (block.attn.W_O, block.attn.b_O, block.mlp.W_out, block.mlp.b_out):
                p.zero_()
    result = journey.analyze(model, PROMPT, umap_sample=300, seed=1)
    t = result.findings.trajectory
    assert t.nearest_sampled_token == [result.findings.tokens[-1]] * 3
    assert t.umap_sample_size is not None and t.umap is not None
    assert t.umap_sample_size >= 300 and len(result.umap_points.coords) == t.umap_sample_size
    own = result.umap_points.ids.index(result.findings.token_ids[-1])
    coords = np.asarray(result.umap_points.coords)
    typical = np.median(np.linalg.norm(coords - coords.mean(0), axis=1))
    assert np.linalg.norm(np.asarray(t.umap[0]) - coords[own]) < typical  # placed near its own token
    assert set(figures_of(result)) == {"logit_lens", "rank_kl", "cosines", "trajectory"}
