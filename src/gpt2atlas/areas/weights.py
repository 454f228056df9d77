"""Weights: any weight tensor, the model summary, the architecture in 3-D."""

from typing import Any

from gpt2atlas.analysis import weights
from gpt2atlas.analysis.kinds import WholeModel
from gpt2atlas.areas.pickers import weight
from gpt2atlas.areas.spec import AreaSpec, CommandPart, DashboardPart, Knob, ReportContext, ReportPart
from gpt2atlas.viz import weights as figures
from gpt2atlas.viz.readings import read_weights

WEIGHTS_PARAM = "blocks.0.attn.W_QKV"  # the report shows its query columns (W_Q of every head of layer 0)


def report_options(ctx: ReportContext) -> dict[str, Any]:
    """Layer 0's W_Q, all heads: the whole W_QKV would weigh ~10 MB in the page for GPT-2 small."""
    return {"param": WEIGHTS_PARAM, "cols": f"0:{ctx.model.cfg.d_model}"}


SPEC = AreaSpec(
    "weights",
    "Weights",
    "Weights",
    "a weight block as a heat map with its value histogram",
    WholeModel(weights.analyze),
    figures.FIGURES,
    read_weights,
    knobs=(
        Knob(
            "param",
            "weight to show, ours (blocks.0.attn.W_QKV) or Hugging Face's (h.0.attn.c_attn.weight); omit for "
            "only the model summary and 3D architecture",
            str,
        ),
        Knob("rows", "row range a:b (default: all)", str),
        Knob("cols", "column range a:b (default: all)", str),
    ),
    report=ReportPart(report_options),
    dashboard=DashboardPart(pickers=weight),
    command=CommandPart(
        "A weight tensor (or a block of it) as a heat map with its histogram; the model summary and 3D view.",
        prompt="none",
    ),
)
