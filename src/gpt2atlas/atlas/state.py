"""The atlas scan's settings, plan and state: a `ScanState` is numpy arrays only, sized by the model and the
settings (never by the corpus), and `merge` joins states exactly (see atlas/scan.py for what each part keeps)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from gpt2atlas.atlas.windows import Windows
from gpt2atlas.errors import InputError
from gpt2atlas.model.gpt2 import GPT2

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
MAX_TOP_K = 1000  # the state holds (units x top_k) slots from the start: 2**31 asked for terabytes
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
        if not 1 <= self.top_k <= MAX_TOP_K:
            raise InputError(f"top_k={self.top_k} must be between 1 and {MAX_TOP_K}", arguments=("top_k",))
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


def best_slots(
    act: np.ndarray, window: np.ndarray, pos: np.ndarray, k: int, *extra: np.ndarray
) -> tuple[np.ndarray, ...]:
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
    top = best_slots(joined["top_act"], joined["top_window"], joined["top_pos"], k)
    heads = best_slots(joined["head_act"], joined["head_window"], joined["head_pos"], k, joined["head_key"])
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
