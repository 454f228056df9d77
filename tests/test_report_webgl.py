"""The report's loader budgets WebGL by context: one per 3-D scene, two for a 2-D WebGL plot, none for SVG."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gpt2atlas.report.html import GL_CONTEXTS, FigurePack, webgl_contexts


def _scenes(n: int) -> go.Figure:
    fig = make_subplots(rows=1, cols=n, specs=[[{"type": "scene"}] * n])
    for col in range(1, n + 1):
        fig.add_trace(go.Scatter3d(x=[0, 1], y=[0, 1], z=[0, 1]), row=1, col=col)
    return fig


def test_each_scene_is_a_context_and_a_webgl_scatter_two():
    pack = FigurePack()
    pack.add(_scenes(4), "four-scenes")
    pack.add(go.Figure(go.Scattergl(x=[0, 1], y=[1, 0])), "scattergl")
    pack.add(go.Figure(go.Heatmap(z=[[0, 1], [1, 0]])), "heatmap")
    mixed = _scenes(1).add_trace(go.Scattergl(x=[0, 1], y=[1, 0]))
    pack.add(mixed, "mixed")
    assert [f["gl"] for f in pack.figures] == [4, 2, 0, 3]
    assert webgl_contexts([]) == 0
    assert GL_CONTEXTS + max(f["gl"] for f in pack.figures) < 16  # the loader's budget stays under Chromium's limit
