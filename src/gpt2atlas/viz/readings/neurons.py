"""The reading of the MLP neurons."""

from __future__ import annotations

from gpt2atlas.analysis.neurons import NeuronsFindings
from gpt2atlas.viz.readings.words import (
    num,
    pct,
    quoted,
    sentences_from,
)


def read_neurons(f: NeuronsFindings) -> list[str]:
    def active() -> str:
        fractions = f.fraction_active_by_layer
        lo, hi = min(fractions), max(fractions)
        return (
            f"Share of GELU outputs above 0: from {pct(lo)} (layer {fractions.index(lo)}) to {pct(hi)} "
            f"(layer {fractions.index(hi)}); pre-activations symmetric around 0, as at initialisation, give 50%"
            + (": sparser than chance." if lo < 0.4 else ".")
        )

    def strongest() -> str:
        rows = f.strongest_neurons[:3]
        return (
            "Strongest neurons on the prompt: "
            + ", ".join(f"L{r.layer}N{r.neuron} ({num(r.max_activation)})" for r in rows)
            + "."
        )

    def chosen() -> str:
        n = f.neuron
        fires = ", ".join(quoted(t.token) for t in n.top_tokens[:3])
        promotes = ", ".join(quoted(t.token) for t in n.promotes[:4])
        suppresses = ", ".join(quoted(t.token) for t in n.suppresses[:4])
        return (
            f"Neuron L{n.layer}N{n.neuron} fires most on {fires}; through the unembedding it promotes "
            f"{promotes} and suppresses {suppresses} (the key–value memory view)."
        )

    return sentences_from(active, strongest, chosen)
