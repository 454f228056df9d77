"""Examples recomputed from their windows: the activations around a position, in the model's own dtype (float32
for a float32 model, whatever dtype the scan used), and, where asked, the window's best position found again.

`finish` asks for every example it shows; each window is run once, in batches, stopped after the last block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gpt2atlas.analysis.corpus import BATCH_TOKENS
from gpt2atlas.atlas.entries import CONTEXT_AFTER, CONTEXT_BEFORE
from gpt2atlas.atlas.windows import Windows
from gpt2atlas.model.gpt2 import GPT2
from gpt2atlas.model.hooks import HookPoint
from gpt2atlas.model.names import act_name, parse_act_name

SPAN = CONTEXT_BEFORE + 1 + CONTEXT_AFTER
NEURON, HEAD = 0, 1


@dataclass(frozen=True)
class Requests:
    """One row per example: a neuron (`kind` NEURON, `unit` its index in the layer) or a head, its window, and
    its position (the query for a head), or -1 for the window's best (its first maximum past position 0)."""

    kind: np.ndarray
    layer: np.ndarray
    unit: np.ndarray
    window: np.ndarray
    position: np.ndarray


@dataclass(frozen=True)
class Recomputed:
    """Per request: the position, a head's key (the largest weight past position 0; -1 for a neuron), the
    activation there, and the activations from `start` on (SPAN columns, NaN past the window's end)."""

    position: np.ndarray
    key: np.ndarray
    activation: np.ndarray
    start: np.ndarray
    context: np.ndarray

    def activations(self, row: int) -> tuple[float, ...]:
        values = self.context[row]
        return tuple(float(v) for v in values[~np.isnan(values)])


def requests(kind: int, layer: np.ndarray, unit: np.ndarray, window: np.ndarray, position: np.ndarray) -> Requests:
    """Requests of one kind, from flat arrays."""
    size = len(window)
    return Requests(np.full(size, kind), layer.astype(np.int64), unit.astype(np.int64),
                    window.astype(np.int64), position.astype(np.int64))  # fmt: skip


def join(parts: list[Requests]) -> Requests:
    return Requests(*(np.concatenate([getattr(p, f) for p in parts]) for f in Requests.__dataclass_fields__))


def recompute(model: GPT2, windows: Windows, req: Requests, batch_tokens: int = BATCH_TOKENS) -> Recomputed:
    """Run every requested window once and read each request's values (see `Requests`)."""
    total = len(req.window)
    out = Recomputed(np.zeros(total, np.int64), np.full(total, -1, np.int64), np.zeros(total, np.float32),
                     np.zeros(total, np.int64), np.full((total, SPAN), np.nan, np.float32))  # fmt: skip
    if total == 0:
        return out
    order = np.argsort(req.window, kind="stable")
    by_window = req.window[order]
    unique = np.unique(req.window)
    size = max(1, batch_tokens // windows.context)
    n_layer = model.cfg.n_layer
    for first in range(0, len(unique), size):
        part = unique[first : first + size]
        lo, hi = np.searchsorted(by_window, [part[0], part[-1] + 1])
        chosen = order[lo:hi]
        rows = np.searchsorted(part, by_window[lo:hi])
        hook = _Reader(req, out, chosen, rows)
        names = [act_name("post", layer) for layer in range(n_layer)]
        if (req.kind[chosen] == HEAD).any():
            names += [act_name("pattern", layer) for layer in range(n_layer)]
        ids = torch.as_tensor(windows.ids(part), device=model.device)
        with torch.inference_mode(), model.hooks.attached([(names, hook)], read_only=True):
            model(ids, stop_at_layer=n_layer)
    return out


class _Reader:
    """The hook that reads one batch's requests at every layer."""

    def __init__(self, req: Requests, out: Recomputed, chosen: np.ndarray, rows: np.ndarray) -> None:
        self.req, self.out, self.chosen, self.rows = req, out, chosen, rows

    def __call__(self, activation: torch.Tensor, hook: HookPoint) -> None:
        kind_name, layer = parse_act_name(hook.name)
        kind = NEURON if kind_name == "post" else HEAD
        mine = (self.req.layer[self.chosen] == layer) & (self.req.kind[self.chosen] == kind)
        if not mine.any():
            return
        idx = self.chosen[mine]
        rows = torch.as_tensor(self.rows[mine], device=activation.device)
        units = torch.as_tensor(self.req.unit[idx], device=activation.device)
        given = torch.as_tensor(self.req.position[idx], device=activation.device)
        x = activation.float()
        if kind == NEURON:
            values = x[rows, :, units]  # (R, n): the neuron over the whole window
            best = values[:, 1:].argmax(dim=1) + 1
            pos = torch.where(given >= 0, given, best)
        else:
            weight = x[rows, units, 1:, 1:].amax(dim=-1)  # (R, n-1): each query's largest weight past position 0
            best = weight.argmax(dim=1) + 1
            pos = torch.where(given >= 0, given, best)
            values = x[rows, units, pos, :]  # (R, n): the query's attention over the window
            key = values[:, 1:].argmax(dim=1) + 1
            self.out.key[idx] = key.cpu().numpy()
            self.out.activation[idx] = values.gather(1, key[:, None])[:, 0].cpu().numpy()
        n = values.shape[1]
        start = (pos - CONTEXT_BEFORE).clamp(min=0)
        span = start[:, None] + torch.arange(SPAN, device=x.device)
        padded = torch.cat([values, values.new_full((len(idx), SPAN), float("nan"))], dim=1)
        context = padded.gather(1, span)
        context[span > (pos[:, None] + CONTEXT_AFTER)] = float("nan")
        context[span >= n] = float("nan")
        self.out.position[idx] = pos.cpu().numpy()
        self.out.start[idx] = start.cpu().numpy()
        self.out.context[idx] = context.cpu().numpy()
        if kind == NEURON:
            self.out.activation[idx] = values.gather(1, pos[:, None])[:, 0].cpu().numpy()
