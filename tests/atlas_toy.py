"""A tiny but real scan for the atlas's driver, store and command, until the full scan is plugged in.

Per MLP neuron (`mlp.hook_post` of every layer): how many positions it saw, how many were active, the float64
sum, and its maximum with the (window, position) where it first reached it. Merging is exact and associative.
Run as a script, it is `gpt2atlas` with this scan in place of the real one (for tests that kill a subprocess).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gpt2atlas.analysis.corpus import Batch
from gpt2atlas.atlas.driver import ScanSteps
from gpt2atlas.atlas.entries import (
    Example,
    HeadEntry,
    HeadStats,
    Histogram,
    LogitEffect,
    NeuronEntry,
    NeuronStats,
)
from gpt2atlas.atlas.job import ScanRecipe
from gpt2atlas.model.gpt2 import GPT2
from gpt2atlas.tokenizer import ENDOFTEXT_ID


class ToyWindows(Sequence[np.ndarray]):
    """Window w: <|endoftext|> and the stream's tokens w*(n-1) .. (w+1)*(n-1)-1 (whole windows only)."""

    def __init__(self, stream: np.ndarray, context: int) -> None:
        self.stream, self.context = stream, context

    def __len__(self) -> int:
        return len(self.stream) // (self.context - 1)

    def __getitem__(self, w):  # type: ignore[override]
        if not 0 <= w < len(self):
            raise IndexError(w)
        step = self.context - 1
        return np.concatenate([[ENDOFTEXT_ID], self.stream[w * step : (w + 1) * step]]).astype(np.int64)


@dataclass(frozen=True)
class ToySettings:
    context: int
    top_k: int
    dtype: str
    kind: str = "toy"


@dataclass
class ToyState:
    count: np.ndarray  # (layers, d_mlp) int64
    active: np.ndarray  # int64
    total: np.ndarray  # float64
    best: np.ndarray  # float32
    where: np.ndarray  # (layers, d_mlp, 2) int64: window, position of `best` (the earliest on ties)


@dataclass(frozen=True)
class ToyCollect:
    def __call__(self, model: GPT2, batch: Batch) -> ToyState:
        names = [f"blocks.{layer}.mlp.hook_post" for layer in range(model.cfg.n_layer)]
        _, cache = model.run_with_cache(torch.as_tensor(batch.ids), names, stop_at_layer=model.cfg.n_layer)
        acts = torch.stack([cache[name].float() for name in names]).numpy()  # (layers, rows, pos, d_mlp)
        layers, rows, width, d_mlp = acts.shape
        flat = acts.transpose(0, 3, 1, 2).reshape(layers, d_mlp, rows * width)
        first = flat.argmax(axis=-1)  # the first maximum: the earliest window, then position
        row, position = np.divmod(first, width)
        return ToyState(
            count=np.full((layers, d_mlp), rows * width, np.int64),
            active=(flat > 0).sum(-1).astype(np.int64),
            total=flat.astype(np.float64).sum(-1),
            best=flat.max(-1).astype(np.float32),
            where=np.stack([batch.texts[row], position], axis=-1).astype(np.int64),
        )


def toy_merge(states: Sequence[ToyState]) -> ToyState:
    merged = states[0]
    for other in states[1:]:
        key_a = merged.where[..., 0] * 10**6 + merged.where[..., 1]
        key_b = other.where[..., 0] * 10**6 + other.where[..., 1]
        take = (other.best > merged.best) | ((other.best == merged.best) & (key_b < key_a))
        merged = ToyState(
            merged.count + other.count,
            merged.active + other.active,
            merged.total + other.total,
            np.where(take, other.best, merged.best),
            np.where(take[..., None], other.where, merged.where),
        )
    return merged


@dataclass(frozen=True)
class ToyContents:
    neurons: tuple[NeuronEntry, ...]
    heads: tuple[HeadEntry, ...]


def toy_finish(state: ToyState, windows: Sequence[np.ndarray]) -> ToyContents:
    layers, d_mlp = state.count.shape
    neurons = []
    for layer in range(layers):
        for index in range(d_mlp):
            w, p = (int(v) for v in state.where[layer, index])
            count = int(state.count[layer, index])
            best = float(state.best[layer, index])
            example = Example(w, p, best, p, (int(windows[w][p]),), (best,))
            active = int(state.active[layer, index])
            stats = NeuronStats(
                count, float(state.total[layer, index] / count), 0.0, 0.0, 0.0, 0.0, best, active / count, active == 0
            )
            neurons.append(
                NeuronEntry(
                    layer, index, (example,), stats, Histogram((0.0, 1.0), (count,)), (), (), LogitEffect((), ())
                )
            )
    head = HeadEntry(0, 0, (), HeadStats(0, 0.0, 0.0, 0.0, 0, 0.0, 0, 0.0))
    return ToyContents(tuple(neurons), (head,))


def toy_steps(model: GPT2, windows: Sequence[np.ndarray], settings: ToySettings) -> ScanSteps[ToyState]:
    return ScanSteps(ToyState, ToyCollect(), toy_merge, lambda state: toy_finish(state, windows))


TOY = ScanRecipe(
    windows=ToyWindows,
    settings=lambda options: ToySettings(options.context, options.top_k, options.dtype),
    steps=toy_steps,
)


if __name__ == "__main__":  # `python tests/atlas_toy.py atlas ...`: the command with the toy scan
    from gpt2atlas.cli.commands import atlas as command
    from gpt2atlas.cli.main import main

    command.RECIPE = lambda: TOY
    sys.exit(main(sys.argv[1:]))
