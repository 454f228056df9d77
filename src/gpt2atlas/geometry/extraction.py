"""Streaming extraction of the point clouds whose geometry we measure.

Two clouds per measurement site: the **last token** of each text (the one that predicts the next word) and
**all tokens** (every position of every text, position 0 left out by default, uniformly subsampled to a budget;
the same sampled tokens at every site, so layers are compared on the same inputs). The points are planned
first; then the texts go through the shared corpus runner (analysis/corpus.py: padded batches, longest first),
whose map step here is a forward pass whose hooks copy out only the sampled rows. The forward pass stops before
the unembedding and nothing else is kept, so memory is bounded by the budgets, not by the number of texts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from gpt2atlas.analysis.base import ProgressCallback
from gpt2atlas.analysis.corpus import BATCH_TOKENS, Batch, CorpusJob, stream
from gpt2atlas.errors import InputError
from gpt2atlas.model.gpt2 import GPT2
from gpt2atlas.model.names import act_name

RESID = "resid"
# (substep, its depth offset inside block l; the substep is its activation's name, see model.names):
# resid_pre of block l is the residual at depth l and its resid_post the residual at depth l + 1, so those two
# are the `resid` sites.
SUBSTEPS = (
    ("ln1_normalized", 0.2),
    ("attn_out", 0.4),
    ("resid_mid", 0.6),
    ("mlp_out", 0.8),
)
CLOUDS = ("last_token", "all_tokens")
R = TypeVar("R")


@dataclass(frozen=True)
class Site:
    """Where a cloud is read: `layer` is the residual stream after that many blocks (substep 'resid'), or the
    block a substep belongs to; `depth` orders every site along the forward pass."""

    hook: str
    layer: int
    substep: str
    depth: float


def measurement_sites(n_layer: int, substeps: bool = False) -> list[Site]:
    """The embedding output and every block's resid_post, plus the inside of each block with `substeps`."""
    sites = [Site(act_name("resid_pre", 0), 0, RESID, 0.0)]
    sites += [Site(act_name("resid_post", l), l + 1, RESID, float(l + 1)) for l in range(n_layer)]
    if substeps:
        sites += [
            Site(act_name(name, l), l, name, round(l + offset, 3)) for l in range(n_layer) for name, offset in SUBSTEPS
        ]
    return sorted(sites, key=lambda s: s.depth)


@dataclass
class Clouds:
    """Sampled vectors per site: `points[cloud]` is (n_sites, n_points, d_model) float32, and
    `origins[cloud]` (n_points, 2) holds each point's text index and token position."""

    sites: list[Site]
    points: dict[str, np.ndarray]
    origins: dict[str, np.ndarray]
    token_counts: np.ndarray  # tokens of each text after truncation
    n_skipped_short: int

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in self.points.values())


def check_max_tokens(model: GPT2, max_tokens: int) -> None:
    if not 2 <= max_tokens <= model.cfg.n_ctx:
        raise InputError(
            f"max_tokens={max_tokens} must be between 2 and the model's context of {model.cfg.n_ctx}",
            arguments=("max_tokens",),
        )


def tokenize_texts(model: GPT2, texts: list[str], max_tokens: int) -> list[list[int]]:
    """Token ids of every text, truncated to `max_tokens` (texts of fewer than 2 tokens give an empty list)."""
    check_max_tokens(model, max_tokens)
    rows = [model.tokenizer.encode(text)[:max_tokens] for text in texts]
    return [row if len(row) >= 2 else [] for row in rows]


@dataclass(frozen=True)
class CloudPlan:
    """Which points the clouds hold, decided before any forward pass: `origins[cloud]` (n_points, 2) is each
    point's text index and token position; `order` the texts to read, longest first, so batches need little
    padding."""

    sites: list[Site]
    tokens: list[list[int]]
    lengths: np.ndarray
    origins: dict[str, np.ndarray]
    order: np.ndarray
    n_skipped_short: int


def plan_clouds(
    model: GPT2,
    texts: list[str],
    sites: list[Site],
    *,
    max_tokens: int,
    all_tokens_budget: int,
    last_token_budget: int | None = None,
    include_first: bool = False,
    seed: int = 0,
) -> CloudPlan:
    """Tokenize `texts` and sample the points of both clouds (the same points at every site)."""
    tokens = tokenize_texts(model, texts, max_tokens)
    lengths = np.array([len(t) for t in tokens])
    usable = np.flatnonzero(lengths)
    if len(usable) == 0:
        raise InputError(
            f"texts= holds {len(texts)} texts, all shorter than 2 tokens: give texts of 2 tokens or more",
            arguments=("texts",),
        )
    rng = np.random.default_rng(seed)
    origins = {
        "last_token": _sample_last_tokens(usable, lengths, last_token_budget, rng),
        "all_tokens": _sample_all_tokens(lengths, 0 if include_first else 1, all_tokens_budget, rng),
    }
    # texts that contribute at least one point, longest first
    needed = np.union1d(origins["last_token"][:, 0], origins["all_tokens"][:, 0])
    order = needed[np.argsort(-lengths[needed], kind="stable")]
    return CloudPlan(sites, tokens, lengths, origins, order, int(len(texts) - len(usable)))


@dataclass(frozen=True)
class CloudRows:
    """A share of the clouds (the corpus runner's partial): chunks of (point indices, vectors (n_sites, points,
    d_model)) per cloud, as batches copied them. Merging only joins the chunk lists; `assemble` places them."""

    chunks: list[dict[str, tuple[np.ndarray, np.ndarray]]]


def merge_rows(parts: Sequence[CloudRows]) -> CloudRows:
    """The partials joined (associative: any grouping gives the same chunks in the same order)."""
    return CloudRows([chunk for part in parts for chunk in part.chunks])


@dataclass(frozen=True)
class CollectClouds:
    """The map step over one batch: a forward pass (stopped before the unembedding) whose hooks copy the sampled
    rows of every site. Plain data, so it pickles (an engine may run it elsewhere, on its own model)."""

    hooks: tuple[str, ...]
    origins: dict[str, np.ndarray]

    def __call__(self, model: GPT2, batch: Batch) -> CloudRows:
        copies = {c: _rows_in_batch(o, batch.texts, batch.width) for c, o in self.origins.items()}
        d_model = model.cfg.d_model
        vectors = {c: np.zeros((len(self.hooks), len(d), d_model), dtype=np.float32) for c, (d, _) in copies.items()}
        _forward_and_copy(model, batch, {h: i for i, h in enumerate(self.hooks)}, copies, vectors)
        return CloudRows([{c: (dest, vectors[c]) for c, (dest, _) in copies.items()}])


def assemble(plan: CloudPlan, rows: CloudRows, d_model: int) -> Clouds:
    """The clouds from the merged rows (each chunk is released as soon as it is placed)."""
    points = {c: np.zeros((len(plan.sites), len(o), d_model), dtype=np.float32) for c, o in plan.origins.items()}
    while rows.chunks:
        for cloud, (dest, vectors) in rows.chunks.pop(0).items():
            if len(dest):
                points[cloud][:, dest] = vectors
    return Clouds(plan.sites, points, plan.origins, plan.lengths, plan.n_skipped_short)


def cloud_job(
    model: GPT2,
    plan: CloudPlan,
    finish: Callable[[CloudRows], R],
    *,
    batch_tokens: int = BATCH_TOKENS,
    progress: bool = False,
    on_progress: ProgressCallback | None = None,
) -> CorpusJob[CloudRows, R]:
    """The corpus runner's job that reads `plan`'s points; `finish` gets the merged rows."""
    collect = CollectClouds(tuple(s.hook for s in plan.sites), plan.origins)
    eot = model.tokenizer.eot_token_id
    return CorpusJob(plan.tokens, plan.order, collect, merge_rows, finish, eot, batch_tokens, progress, on_progress)


def extract_clouds(
    model: GPT2,
    texts: list[str],
    sites: list[Site],
    *,
    max_tokens: int,
    all_tokens_budget: int,
    last_token_budget: int | None = None,
    include_first: bool = False,
    batch_tokens: int = BATCH_TOKENS,
    seed: int = 0,
    progress: bool = True,
    on_progress: ProgressCallback | None = None,
) -> Clouds:
    """Stream `texts` through the model (the shared corpus runner) and keep the sampled vectors of both clouds
    at every site. `on_progress("extracting", texts done, texts)` is called after each batch."""
    plan = plan_clouds(
        model,
        texts,
        sites,
        max_tokens=max_tokens,
        all_tokens_budget=all_tokens_budget,
        last_token_budget=last_token_budget,
        include_first=include_first,
        seed=seed,
    )
    job = cloud_job(
        model, plan, lambda rows: rows, batch_tokens=batch_tokens, progress=progress, on_progress=on_progress
    )
    return assemble(plan, stream(model, job), model.cfg.d_model)


def _forward_and_copy(
    model: GPT2,
    batch: Batch,
    site_index: dict[str, int],
    copies: dict[str, tuple[np.ndarray, torch.Tensor]],
    vectors: dict[str, np.ndarray],
) -> None:
    """One forward pass (stopped before the unembedding) whose hooks copy the sampled rows into `vectors`."""

    def keep(activation: torch.Tensor, hook) -> None:
        flat = activation.reshape(-1, activation.shape[-1])
        for cloud, (dest, src) in copies.items():
            if len(dest):
                vectors[cloud][site_index[hook.name]] = flat[src].float().cpu().numpy()

    ids = torch.from_numpy(batch.ids)
    with torch.inference_mode(), model.hooks.attached([(list(site_index), keep)], read_only=True):
        model(ids.to(model.device), stop_at_layer=model.cfg.n_layer)


def _sample_last_tokens(usable: np.ndarray, lengths: np.ndarray, budget: int | None, rng) -> np.ndarray:
    chosen = usable if budget is None or budget >= len(usable) else np.sort(rng.choice(usable, budget, replace=False))
    return np.stack([chosen, lengths[chosen] - 1], axis=1)


def _sample_all_tokens(lengths: np.ndarray, first: int, budget: int, rng) -> np.ndarray:
    """(text, position) of a uniform sample without replacement of all positions >= `first` of all texts."""
    per_text = np.where(lengths > 0, lengths - first, 0)
    total = int(per_text.sum())
    slots = np.arange(total) if budget >= total else np.sort(rng.choice(total, budget, replace=False))
    starts = np.cumsum(per_text) - per_text
    text = np.searchsorted(np.cumsum(per_text), slots, side="right")
    return np.stack([text, slots - starts[text] + first], axis=1)


def _rows_in_batch(origins: np.ndarray, batch: np.ndarray, width: int) -> tuple[np.ndarray, torch.Tensor]:
    """For the sampled points whose text is in `batch`: their index in the cloud, and their flat row in
    the (batch x width) activation."""
    row_of_text = {int(t): r for r, t in enumerate(batch)}
    dest = np.flatnonzero(np.isin(origins[:, 0], batch))
    rows = np.array([row_of_text[int(t)] for t in origins[dest, 0]], dtype=np.int64)
    return dest, torch.from_numpy(rows * width + origins[dest, 1])
