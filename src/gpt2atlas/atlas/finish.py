"""The scan's last step: a merged `ScanState` made into typed entries, its examples recomputed from their windows.

`FinishedScan` recomputes every shown example once (arrays, a few hundred bytes per example) and makes each entry
when asked, so a large model's entries can be written one at a time; `finish` makes them all at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch

from gpt2atlas.atlas import recompute as rc
from gpt2atlas.atlas.entries import (
    Band,
    Example,
    HeadEntry,
    HeadExample,
    HeadStats,
    Histogram,
    LogitEffect,
    NeuronEntry,
    NeuronStats,
    TokenLogit,
    TokenMean,
)
from gpt2atlas.atlas.state import EDGES, FIRST_POSITIVE, NO_KEY, ScanPlan, ScanSettings, ScanState, best_slots
from gpt2atlas.atlas.windows import Windows
from gpt2atlas.model.gpt2 import GPT2, Block
from gpt2atlas.tokenizer import ENDOFTEXT_ID


@dataclass(frozen=True)
class AtlasContents:
    """What a finished scan knows: every neuron (layer-major) and every head (none when heads were off)."""

    neurons: tuple[NeuronEntry, ...]
    heads: tuple[HeadEntry, ...]


@dataclass(frozen=True)
class _BandPlan:
    """One band of one neuron before its examples are recomputed: bounds, count, and the bins whose samples show."""

    low: float
    high: float
    count: int
    samples: tuple[int, ...]  # positive bins, the sample of smallest priority first


def _band_plans(state: ScanState, settings: ScanSettings, n: int) -> list[_BandPlan]:
    """Group neuron `n`'s positive bins into `settings.bands` bands of its maximum: a bin joins the band its
    lower edge falls in (bins above the maximum hold nothing and are left out)."""
    top = float(state.maximum[n])
    if not top > 0:
        return []
    lower, upper = EDGES[FIRST_POSITIVE:-1].astype(np.float64), EDGES[FIRST_POSITIVE + 1 :].astype(np.float64)
    band = np.minimum((lower / top * settings.bands).astype(np.int64), settings.bands - 1)
    plans = []
    for j in range(settings.bands):
        bins = np.flatnonzero((lower <= top) & (band == j))
        if not len(bins):
            continue
        sampled = bins[state.band_key[n, bins] != NO_KEY]
        rank = np.lexsort((state.band_pos[n, sampled], state.band_window[n, sampled], state.band_key[n, sampled]))
        shown = tuple(int(b) for b in sampled[rank][: settings.band_examples])
        count = int(state.histogram[n, FIRST_POSITIVE + bins].sum())
        plans.append(_BandPlan(0.0 if j == 0 else lower[bins[0]] / top, upper[bins[-1]] / top, count, shown))
    return plans


def _moments(state: ScanState) -> np.ndarray:
    """(N, 4): mean, standard deviation, skewness and excess kurtosis from the float64 central sums."""
    count = max(int(state.positions[0]), 1)
    m2, m3, m4 = (state.moments[:, i] / count for i in (1, 2, 3))
    flat = m2 <= 1e-30
    safe = np.where(flat, 1.0, m2)
    skew = np.where(flat, 0.0, m3 / safe**1.5)
    kurt = np.where(flat, 0.0, m4 / safe**2 - 3)
    return np.stack([state.moments[:, 0], np.sqrt(m2), skew, kurt], axis=1)


def logit_effects(model: GPT2, top: int, chunk: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each neuron's output row through ln_final's gain and W_U: the `top` tokens it promotes (ids, logits) and
    suppresses (ids, logits), each (neurons, top), layer-major."""
    vocab = min(model.cfg.d_vocab, ENDOFTEXT_ID + 1)  # a padded vocabulary's extra rows are no text
    parts: list[list[torch.Tensor]] = [[], [], [], []]
    with torch.inference_mode():
        W_U = model.W_U[:, :vocab].float()
        gain = model.ln_final.w.float()
        for block in model.blocks:
            W_out = cast(Block, block).mlp.W_out.float()
            for first in range(0, W_out.shape[0], chunk):
                logits = (W_out[first : first + chunk] * gain) @ W_U
                up, down = logits.topk(top, dim=1), (-logits).topk(top, dim=1)
                for out, t in zip(parts, (up.indices, up.values, down.indices, -down.values), strict=True):
                    out.append(t.cpu())
    up_ids, up_values, down_ids, down_values = (torch.cat(p).numpy() for p in parts)
    return up_ids, up_values, down_ids, down_values


class FinishedScan:
    """The entries of a merged scan, made one at a time: examples recomputed from their windows for their context
    (and, in bfloat16, re-ranked on their float32 values), moments, bands, token means and logit effects."""

    def __init__(self, state: ScanState, model: GPT2, windows: Windows, scan: ScanPlan) -> None:
        self.state, self.scan, self.settings = state, scan, scan.settings
        bf16 = self.settings.dtype != "float32"
        m, h = scan.d_mlp, scan.n_head
        top = np.argwhere(state.top_window >= 0)  # (neuron, slot) of every kept window
        self.bands = [_band_plans(state, self.settings, n) for n in range(scan.neurons)]
        band_n = np.asarray([n for n, plans in enumerate(self.bands) for b in plans for _ in b.samples], np.int64)
        band_bin = np.asarray([s for plans in self.bands for b in plans for s in b.samples], np.int64)
        heads = np.argwhere(state.head_window >= 0)

        def given(positions: np.ndarray) -> np.ndarray:  # bfloat16: each window's best found again in float32
            return np.full(len(positions), -1) if bf16 else positions

        self.req = rc.join([
            rc.requests(rc.NEURON, top[:, 0] // m, top[:, 0] % m, state.top_window[top[:, 0], top[:, 1]],
                        given(state.top_pos[top[:, 0], top[:, 1]])),
            rc.requests(rc.NEURON, band_n // m, band_n % m, state.band_window[band_n, band_bin],
                        state.band_pos[band_n, band_bin]),
            rc.requests(rc.HEAD, heads[:, 0] // h, heads[:, 0] % h, state.head_window[heads[:, 0], heads[:, 1]],
                        given(state.head_pos[heads[:, 0], heads[:, 1]])),
        ])  # fmt: skip
        self.got = rc.recompute(model, windows, self.req)
        self.window_ids = {int(w): windows[int(w)] for w in np.unique(self.req.window)}
        n_top, n_band = len(top), len(band_n)
        self.top_act, self.top_row = self._ranked(top, state.top_act, state.top_window, 0, bf16)
        self.head_act, self.head_row = self._ranked(heads, state.head_act, state.head_window, n_top + n_band, bf16)
        self.band_value = self.got.activation[n_top : n_top + n_band] if bf16 else state.band_act[band_n, band_bin]
        self.band_first = n_top + np.concatenate([[0], np.cumsum([sum(len(b.samples) for b in p) for p in self.bands])])
        self.moments = _moments(state)
        self.logits = logit_effects(model, self.settings.top_tokens)
        seen = state.token_counts >= self.settings.min_token_count
        self.tokens, self.token_counts = state.token_ids[seen], state.token_counts[seen]
        self.token_means = state.token_sums[seen] / np.maximum(self.token_counts, 1)[:, None]
        self.edges = tuple(float(e) for e in EDGES)

    def _ranked(
        self, slots: np.ndarray, act: np.ndarray, window: np.ndarray, first: int, bf16: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per unit, the top_k kept windows' (activation, request row): the scan's float32 values, or (bfloat16)
        the float32 recomputation's, ranked by activation desc, window asc, position asc."""
        values = np.full(act.shape, -np.inf, np.float32)
        rows = np.full(act.shape, -1, np.int64)
        pos = np.zeros(act.shape, np.int32)
        picked = slice(first, first + len(slots))
        values[slots[:, 0], slots[:, 1]] = self.got.activation[picked] if bf16 else act[slots[:, 0], slots[:, 1]]
        rows[slots[:, 0], slots[:, 1]] = np.arange(first, first + len(slots))
        pos[slots[:, 0], slots[:, 1]] = self.got.position[picked]
        best = best_slots(values, np.where(rows >= 0, window, -1), pos, self.settings.top_k, rows)
        return best[0], best[3]

    def _example(self, row: int, activation: float) -> Example:
        start, values, window = int(self.got.start[row]), self.got.activations(row), int(self.req.window[row])
        tokens = tuple(int(t) for t in self.window_ids[window][start : start + len(values)])
        return Example(window, int(self.got.position[row]), activation, start, tokens, values)

    @property
    def neurons(self) -> int:
        return self.scan.neurons

    @property
    def heads(self) -> int:
        return self.scan.heads

    def neuron(self, n: int) -> NeuronEntry:
        """Neuron `n` (layer-major: layer * d_mlp + index)."""
        s, count = self.state, int(self.state.positions[0])
        mean, std, skew, kurt = (float(v) for v in self.moments[n])
        stats = NeuronStats(count, mean, std, skew, kurt, float(s.minimum[n]), float(s.maximum[n]),
                            float(s.active[n] / max(count, 1)), bool(s.active[n] == 0))  # fmt: skip
        examples = tuple(
            self._example(int(r), float(a)) for a, r in zip(self.top_act[n], self.top_row[n], strict=True) if r >= 0
        )
        bands, row = [], int(self.band_first[n])
        for b in self.bands[n]:
            shown = tuple(self._example(r, float(self.band_value[r - self.band_first[0]]))
                          for r in range(row, row + len(b.samples)))  # fmt: skip
            bands.append(Band(float(b.low), float(b.high), b.count, shown))
            row += len(b.samples)
        means: tuple[TokenMean, ...] = ()
        if len(self.tokens):
            column = self.token_means[:, n]
            order = np.lexsort((self.tokens, -column))[: self.settings.top_tokens]
            means = tuple(TokenMean(int(self.tokens[t]), float(column[t]), int(self.token_counts[t])) for t in order)
        up_ids, up_values, down_ids, down_values = (a[n] for a in self.logits)
        effect = LogitEffect(
            tuple(TokenLogit(int(t), float(v)) for t, v in zip(up_ids, up_values, strict=True)),
            tuple(TokenLogit(int(t), float(v)) for t, v in zip(down_ids, down_values, strict=True)),
        )
        histogram = Histogram(self.edges, tuple(int(c) for c in s.histogram[n]))
        m = self.scan.d_mlp
        return NeuronEntry(n // m, n % m, examples, stats, histogram, tuple(bands), means, effect)

    def head(self, unit: int) -> HeadEntry:
        """Head `unit` (layer-major: layer * n_head + index): its scores and top queries with their keys."""
        queries, dup, ind = (int(c) for c in self.state.head_counts)
        prev, first, dup_sum, ind_sum, entropy = (float(v) for v in self.state.head_sums[unit])
        stats = HeadStats(queries, prev / max(queries, 1), first / max(queries, 1), dup_sum / max(dup, 1), dup,
                          ind_sum / max(ind, 1), ind, entropy / max(queries, 1))  # fmt: skip
        examples = []
        for a, r in zip(self.head_act[unit], self.head_row[unit], strict=True):
            if r >= 0:
                e = self._example(int(r), float(a))
                key = int(self.got.key[r])
                examples.append(HeadExample(e.window, e.position, key, e.activation, e.start, e.tokens, e.activations))
        h = self.scan.n_head
        return HeadEntry(unit // h, unit % h, tuple(examples), stats)

    def iter_neurons(self) -> Iterator[NeuronEntry]:
        return (self.neuron(n) for n in range(self.neurons))

    def iter_heads(self) -> Iterator[HeadEntry]:
        return (self.head(u) for u in range(self.heads))


def finish(state: ScanState, model: GPT2, windows: Windows, scan: ScanPlan) -> AtlasContents:
    """Every entry of a merged scan at once (see `FinishedScan` to make them one at a time)."""
    done = FinishedScan(state, model, windows, scan)
    return AtlasContents(tuple(done.iter_neurons()), tuple(done.iter_heads()))
