"""The atlas scan as a corpus job: `plan`, then `Collect` on every batch of windows, `merge`, `finish`.

One forward pass per batch, stopped after the last block (no ln_final, no unembedding), with read-only hooks on
each block's `mlp.hook_post` (and `attn.hook_pattern` when heads are scanned). Position 0 of every window is the
added `<|endoftext|>`, the same in every window: it is left out of every statistic and example, so each stream
token is counted once.

A `ScanState` is made of numpy arrays only (any store can persist it field by field) and its size depends on
the model and the settings, never on the corpus: per neuron the best `candidates` windows, the float64 mean and
central power sums, the range, the active count, a histogram on the fixed `EDGES`, one band sample per positive bin; per
tracked token and neuron a float64 sum. `merge` is associative and exact (float64 sums up to rounding).

Bands: every position (window, position) gets a pseudo-random priority (a hash of the two); per neuron and
positive histogram bin the state keeps the position of smallest priority (bottom-1 sampling, which merges
exactly). `finish` groups the bins into `bands` bands by the neuron's maximum (a bin joins the band its lower
edge falls in, so a band's bounds are bin edges and its count is exact) and shows each band's samples of
smallest priority: a reproducible random draw, one per bin, of the band's positions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, cast

import numpy as np
import torch

from gpt2atlas.analysis.corpus import Batch
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
from gpt2atlas.atlas.windows import Windows
from gpt2atlas.errors import InputError
from gpt2atlas.model.gpt2 import GPT2, Block
from gpt2atlas.model.hooks import HookPoint
from gpt2atlas.model.names import act_name, parse_act_name
from gpt2atlas.tokenizer import ENDOFTEXT_ID

# Histogram edges, the same for every run and shard (so histograms merge exactly), fit for GELU outputs (>= -0.17):
# 8 bins of 0.025 on [-0.2, 0), one bin [0, 2^-8), then 4 bins per octave from 2^-8 up to 2^8 (64 bins).
EDGES = np.concatenate([-0.2 + 0.025 * np.arange(9), 2.0 ** (-8 + np.arange(65) / 4)]).astype(np.float32)
EDGES[8] = 0.0
FIRST_POSITIVE = 8  # bins from here on ([0, 2^-8) and up) are the ones bands are made of
BINS = len(EDGES) - 1
POSITIVE_BINS = BINS - FIRST_POSITIVE
DTYPES = ("float32", "bfloat16")
NO_KEY = np.iinfo(np.int64).max  # an empty band slot
_FLAT_BITS = 22  # a batch's positions, encoded in the low bits of a band key (batches < 4M tokens)
HEAD_SCORES = ("previous_token", "first_token", "duplicate_token", "induction", "entropy")


@dataclass(frozen=True)
class ScanSettings:
    """What a scan keeps. `token_means_bytes` bounds the tracked tokens x neurons float64 table."""

    context: int
    top_k: int = 20
    bands: int = 5
    band_examples: int = 4
    min_token_count: int = 20
    token_means_bytes: int = 256 * 2**20
    top_tokens: int = 10  # token means and logit effects shown per neuron
    heads: bool = True
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise InputError(f"top_k={self.top_k} must be at least 1")
        if self.context < 2:
            raise InputError(f"context={self.context} is too short: a window needs at least 2 tokens")
        if self.bands < 1 or self.band_examples < 0 or self.min_token_count < 1 or self.top_tokens < 1:
            raise InputError("bands, min_token_count and top_tokens must be at least 1, band_examples at least 0")
        if self.token_means_bytes < 0:
            raise InputError(f"token_means_bytes={self.token_means_bytes} must not be negative")
        if self.dtype not in DTYPES:
            raise InputError(f"dtype={self.dtype!r} is not one of {', '.join(DTYPES)}")

    @property
    def candidates(self) -> int:
        """Windows kept per unit during the scan: k, or 2k in bfloat16 (re-ranked in float32 by `finish`)."""
        return self.top_k if self.dtype == "float32" else 2 * self.top_k


@dataclass(frozen=True)
class ScanPlan:
    """The settings, the model's shape, and the tokens whose per-neuron means are kept (most frequent first)."""

    settings: ScanSettings
    n_layer: int
    d_mlp: int
    n_head: int
    tracked: np.ndarray  # int64 token ids

    @property
    def neurons(self) -> int:
        return self.n_layer * self.d_mlp

    @property
    def heads(self) -> int:
        return self.n_layer * self.n_head if self.settings.heads else 0


def plan(model: GPT2, windows: Windows, settings: ScanSettings) -> ScanPlan:
    """Check the settings against the model and choose the tracked tokens: seen at least `min_token_count` times,
    most frequent first (ties by id), as many as `token_means_bytes` holds at 8 bytes per neuron."""
    cfg = model.cfg
    if settings.context > cfg.n_ctx:
        raise InputError(f"context={settings.context} is longer than the model's context of {cfg.n_ctx}")
    if settings.context != windows.context:
        raise InputError(f"context={settings.context} differs from the windows' {windows.context}")
    counts = windows.count_tokens(cfg.d_vocab)
    cap = settings.token_means_bytes // (8 * cfg.n_layer * cfg.d_mlp)
    frequent = np.flatnonzero(counts >= settings.min_token_count)
    order = np.lexsort((frequent, -counts[frequent]))[:cap]
    return ScanPlan(settings, cfg.n_layer, cfg.d_mlp, cfg.n_head, frequent[order].astype(np.int64))


@dataclass
class ScanState:
    """A partial scan (see the module's docstring); neurons are numbered layer-major (layer * d_mlp + index),
    heads likewise. Top lists are sorted by activation desc, window asc, position asc; empty slots have window -1."""

    positions: np.ndarray  # (1,) int64: positions scanned (per neuron and head)
    top_act: np.ndarray  # (N, C) float32
    top_window: np.ndarray  # (N, C) int64
    top_pos: np.ndarray  # (N, C) int32
    moments: np.ndarray  # (N, 4) float64: mean, and the sums of (x - mean)^2, ^3, ^4 (merged by Pebay's formulas)
    minimum: np.ndarray  # (N,) float32
    maximum: np.ndarray  # (N,) float32
    active: np.ndarray  # (N,) int64: positions > 0
    histogram: np.ndarray  # (N, BINS) int64
    band_key: np.ndarray  # (N, POSITIVE_BINS) int64 priority (NO_KEY: empty)
    band_window: np.ndarray  # (N, POSITIVE_BINS) int64
    band_pos: np.ndarray  # (N, POSITIVE_BINS) int32
    band_act: np.ndarray  # (N, POSITIVE_BINS) float32
    token_ids: np.ndarray  # (T,) int64, sorted: tracked tokens seen so far
    token_counts: np.ndarray  # (T,) int64
    token_sums: np.ndarray  # (T, N) float64
    head_counts: np.ndarray  # (3,) int64: queries, queries with an earlier copy, queries with an induction target
    head_sums: np.ndarray  # (H, 5) float64: sums of the HEAD_SCORES
    head_act: np.ndarray  # (H, C) float32
    head_window: np.ndarray  # (H, C) int64
    head_pos: np.ndarray  # (H, C) int32
    head_key: np.ndarray  # (H, C) int32

    @classmethod
    def empty(cls, neurons: int, heads: int, candidates: int) -> ScanState:
        """The state of a scan of nothing (merge's identity)."""
        return cls(
            positions=np.zeros(1, np.int64),
            top_act=np.full((neurons, candidates), -np.inf, np.float32),
            top_window=np.full((neurons, candidates), -1, np.int64),
            top_pos=np.zeros((neurons, candidates), np.int32),
            moments=np.zeros((neurons, 4), np.float64),
            minimum=np.full(neurons, np.inf, np.float32),
            maximum=np.full(neurons, -np.inf, np.float32),
            active=np.zeros(neurons, np.int64),
            histogram=np.zeros((neurons, BINS), np.int64),
            band_key=np.full((neurons, POSITIVE_BINS), NO_KEY, np.int64),
            band_window=np.full((neurons, POSITIVE_BINS), -1, np.int64),
            band_pos=np.zeros((neurons, POSITIVE_BINS), np.int32),
            band_act=np.zeros((neurons, POSITIVE_BINS), np.float32),
            token_ids=np.zeros(0, np.int64),
            token_counts=np.zeros(0, np.int64),
            token_sums=np.zeros((0, neurons), np.float64),
            head_counts=np.zeros(3, np.int64),
            head_sums=np.zeros((heads, len(HEAD_SCORES)), np.float64),
            head_act=np.full((heads, candidates), -np.inf, np.float32),
            head_window=np.full((heads, candidates), -1, np.int64),
            head_pos=np.zeros((heads, candidates), np.int32),
            head_key=np.zeros((heads, candidates), np.int32),
        )

    @classmethod
    def for_plan(cls, scan: ScanPlan) -> ScanState:
        return cls.empty(scan.neurons, scan.heads, scan.settings.candidates)


def priority(windows: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """A 41-bit pseudo-random priority per (window, position) (splitmix64 of both): the band samples' draw."""
    z = (windows.astype(np.uint64) << np.uint64(20)) | positions.astype(np.uint64)
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(23)).astype(np.int64)


def _best(act: np.ndarray, window: np.ndarray, pos: np.ndarray, k: int, *extra: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per row, the k best (activation desc, window asc, position asc; empty slots last), padded to k."""
    rows, width = act.shape
    if width < k:
        pad = k - width
        act = np.concatenate([act, np.full((rows, pad), -np.inf, act.dtype)], 1)
        window = np.concatenate([window, np.full((rows, pad), -1, window.dtype)], 1)
        pos = np.concatenate([pos, np.zeros((rows, pad), pos.dtype)], 1)
        extra = tuple(np.concatenate([e, np.zeros((rows, pad), e.dtype)], 1) for e in extra)
    empty = window < 0
    order = np.lexsort((pos, window, -act.astype(np.float64), empty), axis=-1)[:, :k]
    return tuple(np.take_along_axis(a, order, 1) for a in (act, window, pos, *extra))


def _merge_moments(counts: Sequence[np.ndarray], moments: Sequence[np.ndarray]) -> np.ndarray:
    """(mean, M2, M3, M4) of the union of disjoint sets, folded pairwise (Pebay 2008, eq. 3.1 and 2.1)."""
    na, a = 0, np.zeros_like(moments[0])
    for count, b in zip(counts, moments, strict=True):
        nb = int(count[0])
        if nb == 0:
            continue
        if na == 0:
            na, a = nb, b.copy()
            continue
        n = na + nb
        delta = b[:, 0] - a[:, 0]
        m2a, m3a, m2b, m3b = a[:, 1], a[:, 2], b[:, 1], b[:, 2]
        out = np.empty_like(a)
        out[:, 0] = a[:, 0] + delta * nb / n
        out[:, 1] = m2a + m2b + delta**2 * na * nb / n
        out[:, 2] = m3a + m3b + delta**3 * na * nb * (na - nb) / n**2 + 3 * delta * (na * m2b - nb * m2a) / n
        out[:, 3] = (a[:, 3] + b[:, 3] + delta**4 * na * nb * (na * na - na * nb + nb * nb) / n**3
                     + 6 * delta**2 * (na * na * m2b + nb * nb * m2a) / n**2 + 4 * delta * (na * m3b - nb * m3a) / n)  # fmt: skip
        na, a = n, out
    return a


def merge(states: Sequence[ScanState]) -> ScanState:
    """One state for all of `states` (associative; exact but for float64 rounding of the sums)."""
    if not states:
        raise InputError("nothing to merge: give at least one scan state")
    if len(states) == 1:
        return states[0]
    cat = {f.name: [getattr(s, f.name) for s in states] for f in fields(ScanState)}
    k = states[0].top_act.shape[1]
    joined = {n: np.concatenate(cat[n], 1) for n in ("top_act", "top_window", "top_pos", "head_act", "head_window",
                                                       "head_pos", "head_key")}  # fmt: skip
    top = _best(joined["top_act"], joined["top_window"], joined["top_pos"], k)
    heads = _best(joined["head_act"], joined["head_window"], joined["head_pos"], k, joined["head_key"])
    keys = np.stack(cat["band_key"])
    wins = np.stack(cat["band_window"])
    poss = np.stack(cat["band_pos"])
    first = np.lexsort((poss, wins, keys), axis=0)[:1]
    pick = lambda a: np.take_along_axis(a, first, 0)[0]  # noqa: E731
    ids = np.concatenate(cat["token_ids"])
    uniq, inverse = np.unique(ids, return_inverse=True)
    sums = np.zeros((len(uniq), states[0].token_sums.shape[1]), np.float64)
    offset = 0
    for part in cat["token_sums"]:  # each state's tokens are distinct, so a plain indexed add is exact
        sums[inverse[offset : offset + len(part)]] += part
        offset += len(part)
    return ScanState(
        positions=sum(cat["positions"]),
        top_act=top[0],
        top_window=top[1],
        top_pos=top[2],
        moments=_merge_moments(cat["positions"], cat["moments"]),
        minimum=np.minimum.reduce(cat["minimum"]),
        maximum=np.maximum.reduce(cat["maximum"]),
        active=sum(cat["active"]),
        histogram=sum(cat["histogram"]),
        band_key=pick(keys),
        band_window=pick(wins),
        band_pos=pick(poss),
        band_act=pick(np.stack(cat["band_act"])),
        token_ids=uniq,
        token_counts=np.bincount(inverse, np.concatenate(cat["token_counts"]), len(uniq)).astype(np.int64),
        token_sums=sums,
        head_counts=sum(cat["head_counts"]),
        head_sums=sum(cat["head_sums"]),
        head_act=heads[0],
        head_window=heads[1],
        head_pos=heads[2],
        head_key=heads[3],
    )


def _autocast(model: GPT2, dtype: str) -> contextlib.AbstractContextManager[Any]:
    if dtype == "bfloat16" and model.dtype != torch.bfloat16:
        return torch.autocast(device_type=model.device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@dataclass
class Collect:
    """The map step: one batch of windows (`batch.texts` their indices, `batch.ids` their tokens) to a ScanState."""

    plan: ScanPlan

    def __call__(self, model: GPT2, batch: Batch) -> ScanState:
        scan = self.plan
        rows, n = batch.ids.shape
        if rows * (n - 1) >= 1 << _FLAT_BITS:
            raise InputError(f"a batch of {rows} windows of {n} tokens is too large for one scan step")
        state = ScanState.for_plan(scan)
        ids = torch.as_tensor(batch.ids, dtype=torch.long, device=model.device)
        windows = np.asarray(batch.texts, dtype=np.int64)
        flat_windows = np.repeat(windows, n - 1)
        flat_pos = np.tile(np.arange(1, n), rows)
        keys = (priority(flat_windows, flat_pos) << _FLAT_BITS) | np.arange(rows * (n - 1))
        tokens = batch.ids[:, 1:].reshape(-1)
        tracked = np.isin(tokens, scan.tracked)
        token_ids, token_rows = np.unique(tokens[tracked], return_inverse=True)
        state.token_ids = token_ids.astype(np.int64)
        state.token_counts = np.bincount(token_rows, minlength=len(token_ids)).astype(np.int64)
        state.token_sums = np.zeros((len(token_ids), scan.neurons), np.float64)
        state.positions[0] = rows * (n - 1)
        neurons = _NeuronStep(state, scan, model.device, windows, flat_windows, flat_pos, keys, tracked, token_rows)
        hooks: list[tuple[str, Any]] = [(act_name("post", layer), neurons) for layer in range(scan.n_layer)]
        if scan.settings.heads:
            heads = _HeadStep(state, scan, ids, windows)
            hooks += [(act_name("pattern", layer), heads) for layer in range(scan.n_layer)]
        with torch.inference_mode(), _autocast(model, scan.settings.dtype):
            with model.hooks.attached(hooks, read_only=True):
                model(ids, stop_at_layer=scan.n_layer)
        return state


class _NeuronStep:
    """The hook on each block's mlp.hook_post: the batch's statistics of that layer's neurons, into `state`."""

    def __init__(self, state: ScanState, scan: ScanPlan, device: torch.device, windows: np.ndarray,
                 flat_windows: np.ndarray, flat_pos: np.ndarray, keys: np.ndarray, tracked: np.ndarray,
                 token_rows: np.ndarray) -> None:  # fmt: skip
        self.state, self.scan, self.windows = state, scan, windows
        self.flat_windows, self.flat_pos = flat_windows, flat_pos
        self.keys = torch.as_tensor(keys, device=device)
        self.tracked = torch.as_tensor(tracked, device=device)
        self.token_rows = torch.as_tensor(token_rows, device=device)
        self.inner = torch.as_tensor(EDGES[1:-1], device=device)
        self.one = torch.ones((1, 1), dtype=torch.int64, device=device)

    def __call__(self, post: torch.Tensor, hook: HookPoint) -> None:
        layer = parse_act_name(hook.name)[1] or 0
        m = self.scan.d_mlp
        cols = slice(layer * m, (layer + 1) * m)
        s = self.state
        acts = post[:, 1:, :].float()  # (rows, n-1, m): position 0 is the added separator
        rows = acts.shape[0]
        best, where = acts.max(dim=1)  # the first maximum of each window
        k = self.scan.settings.candidates
        top = _best(best.T.cpu().numpy(), np.broadcast_to(self.windows, (m, rows)).copy(),
                    (where.T.cpu().numpy() + 1).astype(np.int32), k)  # fmt: skip
        s.top_act[cols], s.top_window[cols], s.top_pos[cols] = top[0], top[1], top[2]
        x = acts.reshape(-1, m)
        d = x.double()
        mean = d.mean(0)
        d -= mean
        d2 = d * d
        sums = [mean, d2.sum(0), (d2 * d).sum(0), (d2 * d2).sum(0)]
        s.moments[cols] = torch.stack(sums, 1).cpu().numpy()
        s.minimum[cols] = x.amin(0).cpu().numpy()
        s.maximum[cols] = best.amax(0).cpu().numpy()
        s.active[cols] = (x > 0).sum(0).cpu().numpy()
        bins = torch.bucketize(x, self.inner, right=True)  # (positions, m) in 0..BINS-1
        unit = torch.arange(m, device=x.device)
        # (bin, neuron) tables by scattering along the positions: no (positions x m) index is materialised
        counts = torch.zeros((BINS, m), dtype=torch.int64, device=x.device)
        counts.scatter_add_(0, bins, self.one.expand(x.shape))
        s.histogram[cols] = counts.T.cpu().numpy()
        chosen = torch.full((BINS, m), NO_KEY, dtype=torch.int64, device=x.device)
        chosen.scatter_reduce_(0, bins, self.keys[:, None].expand(x.shape), "amin")
        chosen = chosen[FIRST_POSITIVE:].T  # (m, POSITIVE_BINS): bands are made of the positive bins
        found = chosen != NO_KEY
        flat = torch.where(found, chosen & ((1 << _FLAT_BITS) - 1), 0)
        band_act = x[flat, unit[:, None]]
        flat_np, found_np = flat.cpu().numpy(), found.cpu().numpy()
        s.band_key[cols] = np.where(found_np, chosen.cpu().numpy() >> _FLAT_BITS, NO_KEY)
        s.band_window[cols] = np.where(found_np, self.flat_windows[flat_np], -1)
        s.band_pos[cols] = np.where(found_np, self.flat_pos[flat_np], 0)
        s.band_act[cols] = np.where(found_np, band_act.cpu().numpy(), 0)
        if len(s.token_ids):
            sums_t = torch.zeros((len(s.token_ids), m), dtype=torch.float64, device=x.device)
            sums_t.index_add_(0, self.token_rows, x[self.tracked].double())
            s.token_sums[:, cols] = sums_t.cpu().numpy()


class _HeadStep:
    """The hook on each block's attn.hook_pattern: the batch's head scores and best queries of that layer."""

    def __init__(self, state: ScanState, scan: ScanPlan, ids: torch.Tensor, windows: np.ndarray) -> None:
        self.state, self.scan, self.windows = state, scan, windows
        n = ids.shape[1]
        same = ids[:, :, None] == ids[:, None, :]  # (rows, query, key)
        q = torch.arange(n, device=ids.device)
        earlier = (q[None, :] < q[:, None]) & (q[None, :] >= 1)  # key j with 1 <= j < query
        self.duplicate = (same & earlier).float()
        copy = same & (q[None, :] <= q[:, None] - 2) & (q[None, :] >= 1)  # an earlier copy at i, 1 <= i <= q-2
        self.induction = torch.zeros_like(self.duplicate)
        self.induction[:, :, 1:] = copy[:, :, :-1].float()  # attention on i + 1
        has_dup = self.duplicate.amax(-1)[:, 1:]
        has_ind = self.induction.amax(-1)[:, 1:]
        state.head_counts[:] = [ids.shape[0] * (n - 1), int(has_dup.sum()), int(has_ind.sum())]

    def __call__(self, pattern: torch.Tensor, hook: HookPoint) -> None:
        layer = parse_act_name(hook.name)[1] or 0
        h = self.scan.n_head
        cols = slice(layer * h, (layer + 1) * h)
        p = pattern.float()
        rows = p.shape[0]
        sums = torch.stack([
            torch.diagonal(p, offset=-1, dim1=2, dim2=3).sum((0, 2), dtype=torch.float64),
            p[:, :, 1:, 0].sum((0, 2), dtype=torch.float64),
            torch.einsum("rhqk,rqk->h", p, self.duplicate).double(),
            torch.einsum("rhqk,rqk->h", p, self.induction).double(),
            torch.special.entr(p[:, :, 1:, :]).sum((0, 2, 3), dtype=torch.float64),
        ], 1)  # fmt: skip
        self.state.head_sums[cols] = sums.cpu().numpy()
        weight, key = p[:, :, 1:, 1:].max(dim=-1)  # (rows, head, query - 1): the best key other than the first
        best, query = weight.max(dim=-1)  # (rows, head)
        key = torch.gather(key, 2, query[..., None])[..., 0] + 1
        top = _best(best.T.cpu().numpy(), np.broadcast_to(self.windows, (h, rows)).copy(),
                    (query.T.cpu().numpy() + 1).astype(np.int32), self.scan.settings.candidates,
                    key.T.cpu().numpy().astype(np.int32))  # fmt: skip
        s = self.state
        s.head_act[cols], s.head_window[cols], s.head_pos[cols], s.head_key[cols] = top


@dataclass(frozen=True)
class AtlasContents:
    """What a finished scan knows: every neuron (layer-major) and every head (none when heads were off)."""

    neurons: tuple[NeuronEntry, ...]
    heads: tuple[HeadEntry, ...]


@dataclass(frozen=True)
class _BandPlan:
    """One band of one neuron before its examples are recomputed: bounds, count, and its samples' (neuron, bin)."""

    neuron: int
    low: float
    high: float
    count: int
    samples: tuple[int, ...]  # positive bins whose sample is shown, smallest priority first


def _band_plans(state: ScanState, settings: ScanSettings) -> list[_BandPlan]:
    """Group each neuron's positive bins into `settings.bands` bands of its maximum: a bin joins the band its
    lower edge falls in (bins above the maximum hold nothing and are left out)."""
    plans = []
    lower, upper = EDGES[FIRST_POSITIVE:-1].astype(np.float64), EDGES[FIRST_POSITIVE + 1 :].astype(np.float64)
    for n in np.flatnonzero(state.maximum > 0):
        top = float(state.maximum[n])
        inside = lower <= top
        band = np.minimum((lower / top * settings.bands).astype(np.int64), settings.bands - 1)
        for j in range(settings.bands):
            bins = np.flatnonzero(inside & (band == j))
            if not len(bins):
                continue
            counts = state.histogram[n, FIRST_POSITIVE + bins]
            sampled = bins[state.band_key[n, bins] != NO_KEY]
            rank = np.lexsort((state.band_pos[n, sampled], state.band_window[n, sampled], state.band_key[n, sampled]))
            shown = tuple(int(b) for b in sampled[rank][: settings.band_examples])
            low = 0.0 if j == 0 else lower[bins[0]] / top
            plans.append(_BandPlan(int(n), float(low), float(upper[bins[-1]] / top), int(counts.sum()), shown))
    return plans


def _neuron_stats(state: ScanState) -> list[NeuronStats]:
    """The four moments from the float64 central sums, the range, and the active share."""
    count = int(state.positions[0])
    mean = state.moments[:, 0]
    m2, m3, m4 = (state.moments[:, i] / max(count, 1) for i in (1, 2, 3))
    flat = m2 <= 1e-30
    with np.errstate(divide="ignore", invalid="ignore"):
        skew = np.where(flat, 0.0, m3 / np.where(flat, 1, m2) ** 1.5)
        kurt = np.where(flat, 0.0, m4 / np.where(flat, 1, m2) ** 2 - 3)
    return [
        NeuronStats(
            count,
            float(mean[n]),
            float(np.sqrt(m2[n])),
            float(skew[n]),
            float(kurt[n]),
            float(state.minimum[n]),
            float(state.maximum[n]),
            float(state.active[n] / max(count, 1)),
            bool(state.active[n] == 0),
        )  # fmt: skip
        for n in range(len(mean))
    ]


def _token_means(state: ScanState, settings: ScanSettings) -> list[tuple[TokenMean, ...]]:
    """Each neuron's `top_tokens` highest mean activations over the tracked tokens seen `min_token_count` times."""
    seen = state.token_counts >= settings.min_token_count
    tokens, counts = state.token_ids[seen], state.token_counts[seen]
    neurons = state.token_sums.shape[1]
    if not len(tokens):
        return [() for _ in range(neurons)]
    means = state.token_sums[seen] / counts[:, None]
    order = np.lexsort((np.broadcast_to(tokens[:, None], means.shape), -means), axis=0)[: settings.top_tokens]
    return [tuple(TokenMean(int(tokens[t]), float(means[t, n]), int(counts[t])) for t in order[:, n])
            for n in range(neurons)]  # fmt: skip


def _logit_effects(model: GPT2, top: int, chunk: int = 256) -> list[LogitEffect]:
    """Each neuron's output row through ln_final's gain and W_U: the `top` tokens it promotes and suppresses."""
    vocab = min(model.cfg.d_vocab, ENDOFTEXT_ID + 1)  # a padded vocabulary's extra rows are no text
    effects = []
    with torch.inference_mode():
        W_U = model.W_U[:, :vocab].float()
        gain = model.ln_final.w.float()
        for block in model.blocks:
            W_out = cast(Block, block).mlp.W_out.float()
            for first in range(0, W_out.shape[0], chunk):
                logits = (W_out[first : first + chunk] * gain) @ W_U
                up = logits.topk(top, dim=1)
                down = (-logits).topk(top, dim=1)
                for i in range(logits.shape[0]):
                    effects.append(LogitEffect(
                        tuple(TokenLogit(int(t), float(v)) for t, v in zip(up.indices[i], up.values[i], strict=True)),
                        tuple(TokenLogit(int(t), -float(v)) for t, v in zip(down.indices[i], down.values[i], strict=True)),
                    ))  # fmt: skip
    return effects


def _head_stats(state: ScanState) -> list[HeadStats]:
    queries, dup, ind = (int(c) for c in state.head_counts)
    out = []
    for sums in state.head_sums:
        prev, first, dup_sum, ind_sum, entropy = (float(v) for v in sums)
        out.append(HeadStats(queries, prev / max(queries, 1), first / max(queries, 1), dup_sum / max(dup, 1), dup,
                             ind_sum / max(ind, 1), ind, entropy / max(queries, 1)))  # fmt: skip
    return out


def finish(state: ScanState, model: GPT2, windows: Windows, scan: ScanPlan) -> AtlasContents:
    """The entries of a merged scan: examples recomputed from their windows for their context (and, in bfloat16,
    re-ranked on their float32 values), moments, bands, token means and logit effects."""
    settings = scan.settings
    m, h = scan.d_mlp, scan.n_head
    bf16 = settings.dtype != "float32"
    top = np.argwhere(state.top_window >= 0)  # (slot's neuron, slot)
    bands = _band_plans(state, settings)
    band_n = np.asarray([b.neuron for b in bands for _ in b.samples], np.int64)
    band_bin = np.asarray([s for b in bands for s in b.samples], np.int64)
    heads = np.argwhere(state.head_window >= 0)
    wanted = -1 if bf16 else None  # bfloat16: find each window's best again in float32
    req = rc.join([
        rc.requests(rc.NEURON, top[:, 0] // m, top[:, 0] % m, state.top_window[top[:, 0], top[:, 1]],
                    state.top_pos[top[:, 0], top[:, 1]] if wanted is None else np.full(len(top), -1)),
        rc.requests(rc.NEURON, band_n // m, band_n % m, state.band_window[band_n, band_bin],
                    state.band_pos[band_n, band_bin]),
        rc.requests(rc.HEAD, heads[:, 0] // h, heads[:, 0] % h, state.head_window[heads[:, 0], heads[:, 1]],
                    state.head_pos[heads[:, 0], heads[:, 1]] if wanted is None else np.full(len(heads), -1)),
    ])  # fmt: skip
    got = rc.recompute(model, windows, req)
    window_ids = {int(w): windows[int(w)] for w in np.unique(req.window)}

    def example(row: int, activation: float) -> Example:
        start, values, window = int(got.start[row]), got.activations(row), int(req.window[row])
        tokens = tuple(int(t) for t in window_ids[window][start : start + len(values)])
        return Example(window, int(got.position[row]), activation, start, tokens, values)

    # top examples: ranked on the scan's float32 values, or (bfloat16) on the float32 recomputation
    n_top, n_band = len(top), len(band_n)
    act = np.full(state.top_act.shape, -np.inf, np.float32)
    act[top[:, 0], top[:, 1]] = got.activation[:n_top] if bf16 else state.top_act[top[:, 0], top[:, 1]]
    row = np.full(state.top_act.shape, -1, np.int64)
    row[top[:, 0], top[:, 1]] = np.arange(n_top)
    pos = np.zeros(state.top_pos.shape, np.int32)
    pos[top[:, 0], top[:, 1]] = got.position[:n_top]
    win = np.where(row >= 0, state.top_window, -1)
    best_act, _, _, best_row = _best(act, win, pos, settings.top_k, row)
    band_value = got.activation[n_top : n_top + n_band] if bf16 else state.band_act[band_n, band_bin]
    band_entries: dict[int, list[Band]] = {}
    first = n_top
    for b in bands:
        rows = range(first, first + len(b.samples))
        shown = tuple(example(r, float(band_value[r - n_top])) for r in rows)
        band_entries.setdefault(b.neuron, []).append(Band(b.low, b.high, b.count, shown))
        first += len(b.samples)
    stats, means, logits = (
        _neuron_stats(state),
        _token_means(state, settings),
        _logit_effects(model, settings.top_tokens),
    )
    edges = tuple(float(e) for e in EDGES)
    neurons = tuple(
        NeuronEntry(
            n // m,
            n % m,
            tuple(example(int(r), float(a)) for a, r in zip(best_act[n], best_row[n], strict=True) if r >= 0),
            stats[n],
            Histogram(edges, tuple(int(c) for c in state.histogram[n])),
            tuple(band_entries.get(n, ())),
            means[n],
            logits[n],
        )  # fmt: skip
        for n in range(scan.neurons)
    )
    return AtlasContents(neurons, _head_entries(state, scan, req, got, n_top + n_band, example, bf16))


def _head_entries(state: ScanState, scan: ScanPlan, req: rc.Requests, got: rc.Recomputed, first: int,
                  example: Any, bf16: bool) -> tuple[HeadEntry, ...]:  # fmt: skip
    """Each head's scores and its top queries (their key, weight and attention over the context)."""
    if not scan.heads:
        return ()
    slots = np.argwhere(state.head_window >= 0)
    shape = state.head_act.shape
    act = np.full(shape, -np.inf, np.float32)
    act[slots[:, 0], slots[:, 1]] = got.activation[first:] if bf16 else state.head_act[slots[:, 0], slots[:, 1]]
    row = np.full(shape, -1, np.int64)
    row[slots[:, 0], slots[:, 1]] = np.arange(first, first + len(slots))
    pos = np.zeros(shape, np.int32)
    pos[slots[:, 0], slots[:, 1]] = got.position[first:]
    best_act, _, _, best_row = _best(act, np.where(row >= 0, state.head_window, -1), pos, scan.settings.top_k, row)
    stats = _head_stats(state)
    h = scan.n_head
    entries = []
    for unit in range(scan.heads):
        examples = []
        for a, r in zip(best_act[unit], best_row[unit], strict=True):
            if r < 0:
                continue
            e = example(int(r), float(a))
            examples.append(HeadExample(e.window, e.position, int(got.key[r]), e.activation, e.start, e.tokens,
                                        e.activations))  # fmt: skip
        entries.append(HeadEntry(unit // h, unit % h, tuple(examples), stats[unit]))
    return tuple(entries)
