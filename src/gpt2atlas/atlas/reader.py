"""What the views (viz, the report, the dashboard) read from an atlas: the `AtlasReader` protocol, which the
database's `Atlas` satisfies, and `MemoryAtlas`, the same answers from entries held in memory (a scan's
results before they are stored, tests, the screenshots of a made-up atlas).

The views read only the typed entries of atlas/entries.py through this protocol: they never scan again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

from gpt2atlas.atlas.entries import Example, HeadEntry, HeadExample, NeuronEntry, SearchHit
from gpt2atlas.errors import InputError
from gpt2atlas.model.config import GPT2Config
from gpt2atlas.tokenizer import Tokenizer


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
    corpus's count of each token (tokens absent from it are uncounted); `decode` turns one id into its text, for
    `search(text=...)`."""

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
        """Units whose top examples sit on `token` (a head's: its query or its key) or whose token means feature
        it (`text`: every token whose text contains it); the density bounds keep the neurons whose active share
        lies within them (and leave heads out), or without a token or text list those neurons. Highest score
        first, at most `limit` (as `Atlas.search` answers)."""
        if limit < 1:
            raise InputError(f"limit={limit} must be at least 1", arguments=("limit",))
        wanted = _wanted_tokens(token, text)
        dense = min_density is not None or max_density is not None
        if wanted is None and not dense:
            raise InputError("give a token, a text or a density bound to search for")
        low = -1.0 if min_density is None else min_density
        high = 2.0 if max_density is None else max_density
        hits: list[SearchHit] = []
        for (layer, index), n in sorted(self.neurons.items()):
            density = n.stats.active_share
            if not low <= density <= high:
                continue
            if wanted is None:
                hits.append(SearchHit("neuron", layer, index, "density", density))
            else:
                hits += _token_hits("neuron", layer, index, n.examples, n.token_means, wanted)
        if wanted is not None and not dense:
            for (layer, index), h in sorted(self.heads.items()):
                hits += _token_hits("head", layer, index, h.examples, (), wanted)
        hits.sort(key=lambda h: (-h.score, h.unit, h.layer, h.index, h.reason))
        return hits[:limit]


@lru_cache(maxsize=1)
def vocabulary() -> tuple[str, ...]:
    """Every token's text, by id (decoded once per process)."""
    return tuple(Tokenizer().vocab)


def tokens_containing(text: str) -> set[int]:
    """The ids of the tokens whose text, stripped of surrounding whitespace, contains `text` stripped."""
    needle = text.strip()
    if not needle:
        return set()
    return {i for i, piece in enumerate(vocabulary()) if needle in piece.strip()}


def _wanted_tokens(token: int | None, text: str | None) -> set[int] | None:
    if token is None and not text:
        return None
    return ({token} if token is not None else set()) | (tokens_containing(text) if text else set())


def _centre(example: Example | HeadExample) -> set[int]:
    """The tokens an example is about: a neuron example's own token; a head example's query and key."""
    about = {example.tokens[example.offset]}
    if isinstance(example, HeadExample) and 0 <= example.key - example.start < len(example.tokens):
        about.add(example.tokens[example.key - example.start])
    return about


def _token_hits(
    unit: str, layer: int, index: int, examples: Iterable, means: Sequence, wanted: set[int]
) -> list[SearchHit]:
    best = [e.activation for e in examples if _centre(e) & wanted]
    hits = [SearchHit(unit, layer, index, "example", max(best))] if best else []
    mean = [m.mean for m in means if m.token in wanted]
    return hits + ([SearchHit(unit, layer, index, "token_mean", max(mean))] if mean else [])


def open_atlas(path: str | Path) -> AtlasReader:
    """The atlas in folder `path` (or its .sqlite file): `gpt2atlas.atlas.atlas.Atlas.open`, InputError naming the
    path where there is none."""
    from gpt2atlas.atlas.atlas import Atlas  # the database reader imports this module's protocol types

    return Atlas.open(path)
