"""The scan's map step: one forward pass over a batch of windows, stopped after the last block, with read-only
hooks on each block's mlp.hook_post (and attn.hook_pattern for heads) that reduce it into a `ScanState`."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gpt2atlas.analysis.corpus import Batch
from gpt2atlas.atlas.state import (
    _FLAT_BITS,
    BINS,
    EDGES,
    FIRST_POSITIVE,
    NO_KEY,
    ScanPlan,
    ScanState,
    best_slots,
    priority,
)
from gpt2atlas.errors import InputError
from gpt2atlas.model.gpt2 import GPT2
from gpt2atlas.model.hooks import HookPoint
from gpt2atlas.model.names import act_name, parse_act_name


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
        cfg = model.cfg
        if (cfg.n_layer, cfg.d_mlp, cfg.n_head) != (scan.n_layer, scan.d_mlp, scan.n_head):
            raise InputError(
                f"the model ({cfg.n_layer} layers, {cfg.d_mlp} neurons, {cfg.n_head} heads) is not the one the scan "
                f"was planned for ({scan.n_layer}, {scan.d_mlp}, {scan.n_head})"
            )
        if rows * n >= 1 << _FLAT_BITS:
            raise InputError(f"a batch of {rows} windows of {n} tokens is too large for one scan step")
        state = ScanState.for_plan(scan)
        ids = torch.as_tensor(batch.ids, dtype=torch.long, device=model.device)
        windows = np.asarray(batch.texts, dtype=np.int64)
        # every (window, position) of the batch, row-major as the activations lie; position 0 is masked out
        flat_windows = np.repeat(windows, n)
        flat_pos = np.tile(np.arange(n), rows)
        scanned = flat_pos > 0
        keys = np.where(scanned, (priority(flat_windows, flat_pos) << _FLAT_BITS) | np.arange(rows * n), NO_KEY)
        tokens = batch.ids.reshape(-1)
        tracked = np.isin(tokens, scan.tracked) & scanned
        token_ids, token_rows = np.unique(tokens[tracked], return_inverse=True)
        state.token_ids = token_ids.astype(np.int64)
        state.token_counts = np.bincount(token_rows, minlength=len(token_ids)).astype(np.int64)
        state.token_sums = np.zeros((len(token_ids), scan.neurons), np.float64)
        state.positions[0] = rows * (n - 1)
        rows_all = np.full(rows * n, len(token_ids), dtype=np.int64)  # untracked positions: a dropped last row
        rows_all[tracked] = token_rows
        neurons = _NeuronStep(state, scan, model.device, windows, (flat_windows, flat_pos, scanned), keys, rows_all)
        hooks: list[tuple[str, Any]] = [(act_name("post", layer), neurons) for layer in range(scan.n_layer)]
        if scan.settings.heads:
            heads = _HeadStep(state, scan, ids, windows)
            hooks += [(act_name("pattern", layer), heads) for layer in range(scan.n_layer)]
        with torch.inference_mode(), _autocast(model, scan.settings.dtype):
            with model.hooks.attached(hooks, read_only=True):
                model(ids, stop_at_layer=scan.n_layer)
        return state


class _NeuronStep:
    """The hook on each block's mlp.hook_post: the batch's statistics of that layer's neurons, into `state`.

    It reads the activations as they lie, (rows * n) positions by neurons, without copying out position 0: a
    0/1 weight row leaves position 0 out of the sums, counts and means, and its band key is NO_KEY."""

    def __init__(self, state: ScanState, scan: ScanPlan, device: torch.device, windows: np.ndarray,
                 flat: tuple[np.ndarray, np.ndarray, np.ndarray], keys: np.ndarray, token_rows: np.ndarray) -> None:  # fmt: skip
        self.state, self.scan, self.windows = state, scan, windows
        self.flat_windows, self.flat_pos = flat[0], flat[1]
        self.keys = torch.as_tensor(keys, device=device)
        self.token_rows = torch.as_tensor(token_rows, device=device)
        self.weight = torch.as_tensor(flat[2], dtype=torch.float32, device=device)[None, :]
        self.count = torch.as_tensor(flat[2], dtype=torch.int64, device=device)[:, None]
        self.powers = torch.empty((len(keys), 5, scan.d_mlp), device=device)  # reused by every layer
        self.inner = torch.as_tensor(EDGES[1:-1], device=device)

    def __call__(self, post: torch.Tensor, hook: HookPoint) -> None:
        layer = parse_act_name(hook.name)[1] or 0
        m = self.scan.d_mlp
        cols = slice(layer * m, (layer + 1) * m)
        s = self.state
        whole = post.float().contiguous()  # (rows, n, m)
        rows, n = whole.shape[:2]
        acts = whole[:, 1:, :]  # a view: position 0 is the added separator
        best = acts.amax(dim=1)
        where = (acts == best[:, None, :]).view(torch.uint8).argmax(dim=1)  # the first maximum of each window
        k = self.scan.settings.candidates
        top = best_slots(best.T.cpu().numpy(), np.broadcast_to(self.windows, (m, rows)).copy(),
                    (where.T.cpu().numpy() + 1).astype(np.int32), k)  # fmt: skip
        s.top_act[cols], s.top_window[cols], s.top_pos[cols] = top[0], top[1], top[2]
        x = whole.view(rows * n, m)
        moments, active = _moments(x, self.weight, self.powers)
        s.moments[cols] = moments.numpy()
        s.active[cols] = active.numpy()
        s.minimum[cols] = acts.amin(dim=1).amin(0).cpu().numpy()  # amin over (0, 1) of the view is 25x slower
        s.maximum[cols] = best.amax(0).cpu().numpy()
        bins = torch.bucketize(x, self.inner, right=True)  # (positions, m) in 0..BINS-1
        unit = torch.arange(m, device=x.device)
        # (bin, neuron) tables by scattering along the positions: no (positions x m) index is materialised
        counts = torch.zeros((BINS, m), dtype=torch.int64, device=x.device)
        counts.scatter_add_(0, bins, self.count.expand(x.shape))
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
        if len(s.token_ids):  # float32 sums within the batch (one row per tracked token, a last row for the rest)
            sums_t = torch.zeros((len(s.token_ids) + 1, m), dtype=torch.float32, device=x.device)
            sums_t.index_add_(0, self.token_rows, x)
            s.token_sums[:, cols] = sums_t[:-1].cpu().numpy()


def _moments(x: torch.Tensor, ones: torch.Tensor, powers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per column of `x` (positions x neurons), over the positions whose weight in the 0/1 row `ones` is 1: (mean,
    and the sums of (x - mean)^2, ^3, ^4) in float64, and the count of x > 0. The powers are taken in float32 around
    the float32 mean (written into `powers`, reused) and summed by one matmul with `ones`; the float64 central
    sums are then corrected for the shift's offset from the mean."""
    with torch.autocast(device_type=x.device.type, enabled=False):  # a bf16 scan's autocast must not touch these
        return _central(x, ones, powers)


def _central(x: torch.Tensor, ones: torch.Tensor, powers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    count = int(ones.sum())
    shift = (ones @ x)[0] / count
    d = torch.sub(x, shift, out=powers[:, 0])
    torch.mul(d, d, out=powers[:, 1])
    torch.mul(powers[:, 1], d, out=powers[:, 2])
    torch.mul(powers[:, 1], powers[:, 1], out=powers[:, 3])
    torch.gt(x, 0, out=powers[:, 4])
    sums = (ones @ powers.view(x.shape[0], -1)).view(5, -1).cpu().double()
    s1, s2, s3, s4 = sums[0] / count, sums[1], sums[2], sums[3]  # s1: the mean's offset from the shift
    m2 = s2 - count * s1**2
    m3 = s3 - 3 * s1 * s2 + 2 * count * s1**3
    m4 = s4 - 4 * s1 * s3 + 6 * s1**2 * s2 - 3 * count * s1**4
    return torch.stack([shift.cpu().double() + s1, m2, m3, m4], 1), sums[4].round().long()


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
        top = best_slots(best.T.cpu().numpy(), np.broadcast_to(self.windows, (h, rows)).copy(),
                    (query.T.cpu().numpy() + 1).astype(np.int32), self.scan.settings.candidates,
                    key.T.cpu().numpy().astype(np.int32))  # fmt: skip
        s = self.state
        s.head_act[cols], s.head_window[cols], s.head_pos[cols], s.head_key[cols] = top
