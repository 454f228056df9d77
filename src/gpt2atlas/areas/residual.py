"""The residual stream and its outlier dims."""

from gpt2atlas.analysis import residual
from gpt2atlas.analysis.kinds import PerPrompt
from gpt2atlas.areas.spec import INCLUDE_FIRST, AreaSpec, CommandPart, Knob
from gpt2atlas.viz import residual as figures
from gpt2atlas.viz.readings import read_residual

SPEC = AreaSpec(
    "residual",
    "Residual stream and outlier dims",
    "Residual",
    "norm growth, attention and MLP contributions, massive dims",
    PerPrompt(residual.analyze),
    figures.FIGURES,
    read_residual,
    knobs=(INCLUDE_FIRST, Knob("threshold", "outlier dim: peak |activation| at least this many x the median", float)),
    command=CommandPart("Residual stream: norm growth, what attention and MLPs add, outlier (massive) dims."),
    inside_layers=True,
)
