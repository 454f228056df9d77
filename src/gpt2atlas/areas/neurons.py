"""MLP neurons."""

from gpt2atlas.analysis import neurons
from gpt2atlas.analysis.kinds import PerPrompt
from gpt2atlas.areas.pickers import neuron
from gpt2atlas.areas.spec import LAYER_OF_PICTURE, AreaSpec, CommandPart, DashboardPart, Knob
from gpt2atlas.viz import neurons as figures
from gpt2atlas.viz.readings import read_neurons

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
    dashboard=DashboardPart(pickers=neuron),
    command=CommandPart("MLP neurons: share active per layer, top neurons per token, one neuron's keys and values."),
    inside_layers=True,
)
