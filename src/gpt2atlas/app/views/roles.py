"""Head roles: every head's scores as layer x head grids, and the heads named for each role."""

from __future__ import annotations

from gpt2atlas.app import state
from gpt2atlas.app.widgets import chart, reading
from gpt2atlas.viz.readings import read

MODULE = "gpt2atlas.analysis.attention"


def render(model, settings) -> None:
    from gpt2atlas.analysis.attention import SCORES
    from gpt2atlas.viz.attention import score_grid_figure

    result = state.cached_analysis(settings.model_id, MODULE, settings.prompt)
    reading(read("attention", result.findings))
    fig = score_grid_figure(result.findings.heads, SCORES, model.cfg.n_layer, model.cfg.n_head)
    chart(fig, key="roles_chart")
