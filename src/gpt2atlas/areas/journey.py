"""The token's journey through the layers (logit lens)."""

from typing import Any

from gpt2atlas.analysis import journey
from gpt2atlas.analysis.kinds import PerPrompt
from gpt2atlas.areas.pickers import token
from gpt2atlas.areas.spec import INCLUDE_FIRST, AreaSpec, CommandPart, DashboardPart, Knob, ReportContext, ReportPart
from gpt2atlas.viz import journey as figures
from gpt2atlas.viz.readings import read_journey


def report_options(ctx: ReportContext) -> dict[str, Any]:
    return {"seed": ctx.seed, "projections": tuple(p for p in ctx.projections if p in ("pca", "umap")) or ("pca",)}


SPEC = AreaSpec(
    "journey",
    "The token's journey (logit lens)",
    "Journey",
    "the prediction layer by layer",
    PerPrompt(journey.analyze),
    figures.FIGURES,
    read_journey,
    knobs=(
        Knob("position", "token whose trajectory is drawn (default: the last; negative counts from the end)"),
        Knob("top_k", "guesses kept per layer and position"),
        INCLUDE_FIRST,
        Knob("projections", "trajectory maps: pca, umap or pca,umap", str, listed=True),
        Knob("seed", "seed of the UMAP token sample and layout"),
    ),
    report=ReportPart(report_options),
    dashboard=DashboardPart((("projections", ("pca",)),), token),
    command=CommandPart(
        "The token's journey: logit lens (top-k, rank, KL per layer), stream cosines, a token's trajectory."
    ),
    inside_layers=True,
)
