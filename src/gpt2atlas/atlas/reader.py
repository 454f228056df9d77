"""What the views (viz, the report, the dashboard) read from an atlas: the `AtlasReader` protocol, which the
database's `Atlas` satisfies, and `MemoryAtlas`, the same answers from entries held in memory (a scan's
results before they are stored, tests, the screenshots of a made-up atlas).

The views read only the typed entries of atlas/entries.py through this protocol: they never scan again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from gpt2atlas.atlas.entries import HeadEntry, NeuronEntry, SearchHit
from gpt2atlas.atlas.search import ranked, search_query
from gpt2atlas.errors import InputError
from gpt2atlas.model.config import GPT2Config


class RunFacts(Protocol):
    """The least a view says about the scan behind an atlas."""

    @property
    def model(self) -> str: ...

    @property
    def tokens(self) -> int: ...

    @property
    def windows(self) -> int: ...

    @property
    def top_k(self) -> int: ...


@dataclass(frozen=True)
class RunSummary:
    """The scan behind an atlas: which model, how many tokens and windows, how many top examples per unit."""

    model: str
    tokens: int
    windows: int
    top_k: int


class AtlasReader(Protocol):
    """An atlas, read: one entry per neuron and head, a window's token ids, search, and how the corpus's tokens
    were counted (`token_count`: how many scanned positions held `token`, None where the atlas did not count it)."""

    @property
    def run(self) -> RunFacts: ...

    @property
    def layers(self) -> int: ...

    @property
    def neurons_per_layer(self) -> int: ...

    @property
    def heads_per_layer(self) -> int: ...

    def neuron(self, layer: int, index: int) -> NeuronEntry: ...

    def head(self, layer: int, index: int) -> HeadEntry: ...

    def window(self, w: int) -> np.ndarray: ...

    def token_count(self, token: int) -> int | None: ...

    def search(
        self,
        token: int | None = None,
        text: str | None = None,
        min_density: float | None = None,
        max_density: float | None = None,
        limit: int = 50,
    ) -> list[SearchHit]: ...


def check_model(atlas: AtlasReader, cfg: GPT2Config) -> None:
    """InputError when the atlas was not made of a model of this shape (its neurons would be another's)."""
    have = (atlas.layers, atlas.neurons_per_layer, atlas.heads_per_layer)
    want = (cfg.n_layer, cfg.d_mlp, cfg.n_head)
    if have != want:
        raise InputError(
            f"the atlas (of {atlas.run.model}) has {have[0]} layers of {have[1]} neurons and {have[2]} heads; this "
            f"model has {want[0]} layers of {want[1]} neurons and {want[2]} heads: give the atlas of this model"
        )


def check_unit(kind: str, layer: int, index: int, layers: int, per_layer: int) -> None:
    """InputError naming the unit when `layer` or `index` is outside the atlas."""
    if not (0 <= layer < layers and 0 <= index < per_layer):
        raise InputError(
            f"there is no {kind} L{layer}{kind[0].upper()}{index} in this atlas: layers 0 to {layers - 1}, "
            f"{kind}s 0 to {per_layer - 1}"
        )


@dataclass(frozen=True)
class MemoryAtlas:
    """An `AtlasReader` over entries held in memory. `windows` maps window index to its ids; `token_counts` the
    corpus's count of each token (tokens absent from it are uncounted)."""

    run: RunSummary
    neurons: Mapping[tuple[int, int], NeuronEntry]
    heads: Mapping[tuple[int, int], HeadEntry] = field(default_factory=dict)
    windows: Mapping[int, np.ndarray] = field(default_factory=dict)
    token_counts: Mapping[int, int] = field(default_factory=dict)
    n_layers: int = 0
    n_neurons: int = 0
    n_heads: int = 0

    @property
    def layers(self) -> int:
        return self.n_layers

    @property
    def neurons_per_layer(self) -> int:
        return self.n_neurons

    @property
    def heads_per_layer(self) -> int:
        return self.n_heads

    def neuron(self, layer: int, index: int) -> NeuronEntry:
        check_unit("neuron", layer, index, self.n_layers, self.n_neurons)
        if (layer, index) not in self.neurons:
            raise InputError(f"neuron L{layer}N{index} was not kept in this atlas")
        return self.neurons[layer, index]

    def head(self, layer: int, index: int) -> HeadEntry:
        check_unit("head", layer, index, self.n_layers, self.n_heads)
        if (layer, index) not in self.heads:
            raise InputError(f"head L{layer}H{index} was not kept in this atlas")
        return self.heads[layer, index]

    def window(self, w: int) -> np.ndarray:
        if w not in self.windows:
            raise InputError(f"window {w} is not in this atlas ({self.run.windows:,} windows)")
        return np.asarray(self.windows[w], dtype=np.int64)

    def token_count(self, token: int) -> int | None:
        return self.token_counts.get(token)

    def search(
        self,
        token: int | None = None,
        text: str | None = None,
        min_density: float | None = None,
        max_density: float | None = None,
        limit: int = 50,
    ) -> list[SearchHit]:
        """The rule of atlas/search.py, as `Atlas.search` answers it."""
        query = search_query(token, text, min_density, max_density, limit)
        wanted = set(query.tokens)
        hits: list[SearchHit] = []
        for (layer, index), n in self.neurons.items():
            density = n.stats.active_share
            if not query.low <= density <= query.high:
                continue
            if not wanted:
                hits.append(SearchHit("neuron", layer, index, "density", density))
                continue
            best = [e.activation for e in n.examples if e.tokens[e.offset] in wanted]
            hits += [SearchHit("neuron", layer, index, "example", max(best))] if best else []
            mean = [m.mean for m in n.token_means if m.token in wanted]
            hits += [SearchHit("neuron", layer, index, "token_mean", max(mean))] if mean else []
        if wanted and not query.dense:
            for (layer, index), h in self.heads.items():
                best = [e.activation for e in h.examples if e.tokens[e.offset] in wanted]
                hits += [SearchHit("head", layer, index, "example", max(best))] if best else []
        return ranked(hits, limit)


def open_atlas(path: str | Path) -> AtlasReader:
    """The atlas in folder `path` (or its .sqlite file): `gpt2atlas.atlas.atlas.Atlas.open`, InputError naming the
    path where there is none."""
    from gpt2atlas.atlas.atlas import Atlas  # the database reader imports this module's protocol types

    return Atlas.open(path)
