"""MLP neurons."""

from gpt2atlas.analysis import neurons
from gpt2atlas.analysis.kinds import PerPrompt
from gpt2atlas.areas.pickers import neuron
from gpt2atlas.areas.spec import LAYER_OF_PICTURE, AreaSpec, CommandPart, DashboardPart, Knob, ReportPart
from gpt2atlas.viz import neurons as figures
from gpt2atlas.viz.readings import read_neurons

ATLAS_NEURONS = 3  # the prompt's strongest neurons the report shows across the corpus, when it has an atlas


def strongest(findings: neurons.NeuronsFindings) -> list[tuple[int, int]]:
    """The prompt's strongest neurons, strongest first, as (layer, index)."""
    return [(n.layer, n.neuron) for n in findings.strongest_neurons[:ATLAS_NEURONS]]


SPEC = AreaSpec(
    "neurons",
    "MLP neurons",
    "Neurons",
    "how many neurons fire, which fire for each token, what they write",
    PerPrompt(neurons.analyze),
    figures.FIGURES,
    read_neurons,
    knobs=(
        Knob("layer", LAYER_OF_PICTURE, flags=("--layer", "-l")),
        Knob("neuron", "neuron of --layer to explain", flags=("--neuron", "-n")),
        Knob(
            "extra_prompts",
            "more text to search for the neuron's top tokens (repeatable)",
            str,
            ("--extra-prompt",),
            repeated=True,
        ),
    ),
    report=ReportPart(atlas=strongest),
    dashboard=DashboardPart(pickers=neuron),
    command=CommandPart("MLP neurons: share active per layer, top neurons per token, one neuron's keys and values."),
    inside_layers=True,
)
