"""Figures cut to screen size: pooled heat maps keep their outliers, sampled scatters keep their extremes."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from gpt2atlas.viz.screen import as_array, fit_to_screen, pool_signed_max, sample_indices


def test_pooling_keeps_the_largest_magnitude_with_its_sign():
    z = np.random.default_rng(0).normal(0, 0.02, (768, 768))
    z[100, 200] = -5.0  # one planted outlier: it must survive pooling, negative
    z[:, 700] = 3.0  # an outlier column
    pooled = pool_signed_max(z, (3, 3))
    assert pooled.shape == (256, 256)
    assert pooled[100 // 3, 200 // 3] == -5.0
    assert np.all(pooled[:, 700 // 3] == 3.0)
    rest = np.delete(np.delete(pooled, 700 // 3, axis=1), 100 // 3, axis=0)
    assert np.abs(rest).max() < 0.2  # pooling did not smear the outliers into other cells
    block = z[:3, :3]
    assert pooled[0, 0] == block.flat[np.abs(block).argmax()]


def test_pooling_pads_uneven_shapes_without_inventing_values():
    z = np.arange(10, dtype=float).reshape(2, 5)
    assert pool_signed_max(z, (2, 2)).tolist() == [[6.0, 8.0, 9.0]]


def test_a_large_heat_map_is_pooled_to_screen_size_and_says_so():
    z = np.random.default_rng(1).normal(size=(1024, 768))
    fig = go.Figure(go.Heatmap(z=z, x=np.arange(768), y=np.arange(1024)))
    small, cuts = fit_to_screen(fig, max_side=256)
    trace = small.data[0]
    assert as_array(trace.z).shape == (256, 256)
    assert as_array(trace.y).tolist() == list(range(0, 1024, 4))  # each cell labelled by its block's first row
    assert len(cuts) == 1 and "1/4 × 1/3 resolution" in cuts[0].note
    assert fig.data[0].z.shape == (1024, 768)  # the original figure is untouched
    untouched, none = fit_to_screen(go.Figure(go.Heatmap(z=z[:100, :100])))
    assert none == [] and as_array(untouched.data[0].z).shape == (100, 100)


def test_sampling_keeps_every_outlier_and_the_density_of_the_rest():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=50_257), rng.normal(size=50_257)
    x[123], y[4567] = 40.0, -40.0  # two tokens far out: they must be kept
    kept = sample_indices([x, y], 5_000)
    assert len(kept) == 5_000 and len(set(kept)) == len(kept)
    assert {123, 4567} <= set(kept)
    # uniform elsewhere: the share of kept points in the tails matches the whole cloud's (no dense frame)
    tail = np.abs(x) > 2
    assert abs(tail[kept].mean() - tail.mean()) < 0.01


def test_a_huge_scatter_is_sampled_with_its_hover_text_aligned():
    n = 20_000
    x = np.arange(n, dtype=float)
    fig = go.Figure(go.Scattergl(x=x, y=x * 2, hovertext=[f"token {i}" for i in range(n)], name="tokens"))
    small, cuts = fit_to_screen(fig, max_points=2_000)
    trace = small.data[0]
    xs = as_array(trace.x)
    assert len(xs) <= 2_000 and "of 20,000 points" in cuts[0].note
    assert list(trace.hovertext) == [f"token {int(v)}" for v in xs]  # hover text follows its point
    assert np.allclose(as_array(trace.y), xs * 2)


def test_long_titles_are_wrapped_and_markup_is_left_alone():
    long = "Which dims carry position: log10|γ| of each LayerNorm vs log10 std of W_pos per dim, one point each"
    fig, _ = fit_to_screen(go.Figure(layout={"title": {"text": long + "<br><sup>a note that is long " * 3 + "</sup>"}}))
    lines = fig.layout.title.text.split("<br>")
    assert all(len(line) <= 80 for line in lines if "<" not in line)
    assert " ".join(line for line in lines if "<" not in line) == long  # nothing lost, only broken
    assert lines[-1].startswith("<sup>")


def test_subplot_titles_are_wrapped_to_their_column():
    from plotly.subplots import make_subplots

    titles = ["tokens: mean vs std of each token", "positions: std of each dim", "short"]
    fig = make_subplots(rows=1, cols=3, subplot_titles=titles)
    fig.add_annotation(x=0.5, y=0.5, xref="paper", yref="paper", text="an arrow note, not a title " * 3)
    fitted, _ = fit_to_screen(fig)
    texts = [a.text for a in fitted.layout.annotations]
    assert texts[0] == "tokens: mean vs std<br>of each token" and texts[2] == "short"
    assert all(len(line) <= 20 for text in texts[:3] for line in text.split("<br>"))
    assert texts[3] == "an arrow note, not a title " * 3  # an annotation of its own (with an arrow) is left alone
    assert [a.text for a in fig.layout.annotations][:3] == titles  # the figure passed in is not changed


def test_a_wrapped_top_row_gets_room_above_it():
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=3, subplot_titles=["tokens: mean vs std of each token", "b", "c", "d", "e", "f"])
    fig.update_layout(height=600)
    fitted, _ = fit_to_screen(fig)
    assert fitted.layout.margin.t == 100 + 20 and fitted.layout.height == 620
    unchanged, _ = fit_to_screen(make_subplots(rows=1, cols=2, subplot_titles=["a", "b"]))
    assert unchanged.layout.margin.t is None
