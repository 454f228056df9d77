"""The short written reading of each section, produced from its findings.

Each `read_<area>(findings)` (one module per area) returns plain-text sentences; the renderers escape them. A
sentence whose numbers are absent (checked in its builder) is left out, never invented; an exception in a reading
is a bug and propagates, it never falls back to another text.
"""

from __future__ import annotations

from gpt2atlas.viz.readings.attention import read_attention
from gpt2atlas.viz.readings.causes import read_causes
from gpt2atlas.viz.readings.dynamics import read_dynamics
from gpt2atlas.viz.readings.embeddings import read_embeddings
from gpt2atlas.viz.readings.geometry import read_geometry
from gpt2atlas.viz.readings.journey import first_stable_top1_layer, read_journey
from gpt2atlas.viz.readings.layernorm import read_layernorm
from gpt2atlas.viz.readings.neurons import read_neurons
from gpt2atlas.viz.readings.residual import read_residual
from gpt2atlas.viz.readings.saliency import read_saliency
from gpt2atlas.viz.readings.summary import read_samples, read_summary
from gpt2atlas.viz.readings.weights import read_weights
from gpt2atlas.viz.readings.words import num, pct, quoted, versus_chance

__all__ = [
    "first_stable_top1_layer",
    "num",
    "pct",
    "quoted",
    "read_attention",
    "read_causes",
    "read_dynamics",
    "read_embeddings",
    "read_geometry",
    "read_journey",
    "read_layernorm",
    "read_neurons",
    "read_residual",
    "read_saliency",
    "read_samples",
    "read_summary",
    "read_weights",
    "versus_chance",
]
