"""LayerNorm geometry."""

from typing import Any

from gpt2atlas.analysis import layernorm
from gpt2atlas.analysis.kinds import PerPrompt
from gpt2atlas.areas.pickers import layernorm as block
from gpt2atlas.areas.spec import INCLUDE_FIRST, AreaSpec, CommandPart, DashboardPart, Knob, ReportContext, ReportPart
from gpt2atlas.viz import layernorm as figures
from gpt2atlas.viz.readings import read_layernorm


def report_options(ctx: ReportContext) -> dict[str, Any]:
    return {"seed": ctx.seed, **({"superposition_steps": 20} if ctx.quick else {})}


SPEC = AreaSpec(
    "layernorm",
    "LayerNorm geometry",
    "LayerNorm",
    "centring, scaling onto the sphere, the gain and the shift",
    PerPrompt(layernorm.analyze),
    figures.FIGURES,
    read_layernorm,
    knobs=(
        Knob(
            "layer",
            "block whose ln1 is drawn in 3D and whose MLP shows GELU (default: the middle one)",
            flags=("--layer", "-l"),
        ),
        INCLUDE_FIRST,
        Knob("seed", "seed of the 3D toy and the superposition toy"),
    ),
    report=ReportPart(report_options, shown=5),
    dashboard=DashboardPart((("superposition_steps", 30),), block),
    command=CommandPart(
        "LayerNorm geometry: centring, the sphere of radius sqrt(d), the gain and shift, for every LayerNorm."
    ),
    inside_layers=True,
)
