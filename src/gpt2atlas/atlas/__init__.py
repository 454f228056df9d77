"""The atlas: what every MLP neuron and attention head does across a corpus, scanned once and kept in SQLite."""

from gpt2atlas.atlas.atlas import Atlas
from gpt2atlas.atlas.store import RunInfo

__all__ = ["Atlas", "RunInfo"]
