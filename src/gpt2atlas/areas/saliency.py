"""Saliency: which input tokens drive the prediction."""

from gpt2atlas.analysis import saliency
from gpt2atlas.analysis.kinds import PerPrompt
from gpt2atlas.areas.pickers import target
from gpt2atlas.areas.spec import AreaSpec, CommandPart, DashboardPart, Knob
from gpt2atlas.viz import saliency as figures
from gpt2atlas.viz.readings import read_saliency

SPEC = AreaSpec(
    "saliency",
    "Saliency",
    "Saliency",
    "which input tokens drive the prediction",
    PerPrompt(saliency.analyze),
    figures.FIGURES,
    read_saliency,
    knobs=(
        Knob(
            "target",
            "one token to explain, e.g. ' Paris' (default: the model's top next token)",
            str,
            ("--target", "-t"),
        ),
        Knob("steps", "integrated-gradients quadrature points"),
    ),
    dashboard=DashboardPart(pickers=target),
    command=CommandPart("Which prompt tokens drive the target's logit: gradient x input and integrated gradients."),
    inside_layers=True,
)
