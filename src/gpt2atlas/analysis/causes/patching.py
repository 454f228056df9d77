"""Activation patching, batched: many patched copies of the corrupted run in one forward pass.

Every patch is a change to the corrupted run's residual stream at one point, and everything before that point
is the corrupted run's, cached once:
    resid_pre (l, p)       entering block l:        position p of resid_pre is the clean run's
    attn_out (l, p)        after l's attention:     resid_pre + clean attn_out at p
    mlp_out (l, p)         after block l:           resid_mid + clean mlp_out at p
    head_out (l, h)        after l's attention:     + (clean z_h - corrupted z_h) W_O_h, every position
    head_out_by_pos        the same at one position p
    head_pattern (l, h)    after l's attention:     + (clean pattern_h @ corrupted v_h - corrupted z_h) W_O_h
The copies enter the batch at their own point, and the batch runs on from there to the end (chunked to bound
memory). With the default metric only the last position is unembedded, onto one direction.
Values equal TransformerLens's `patching.get_act_patch_*` (one forward pass per patch, from the embedding).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import torch

from gpt2atlas.analysis.causes.inputs import SITE_AXES, Token, block_of, check_site
from gpt2atlas.analysis.causes.setup import Metric, PatchSetup, make_setup
from gpt2atlas.model.gpt2 import GPT2, ModelInput
from gpt2atlas.model.names import act_name

MAX_ELEMENTS = 1 << 24  # floats in the widest activation of one batch of copies (64 MB in float32)

# A start: (point, residual streams (n, pos, d_model)). Point 2l enters block l, 2l+1 follows its attention,
# 2 n_layer is the final residual stream.
Start = tuple[int, torch.Tensor]
Readout = Callable[[torch.Tensor], torch.Tensor]

# what each site needs cached: (from the clean run, from the corrupted run)
_NEEDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "resid_pre": (("resid_pre",), ("resid_pre",)),
    "attn_out": (("attn_out",), ("resid_pre", "resid_mid")),
    "mlp_out": (("mlp_out",), ("resid_mid", "resid_post")),
    "head_out": (("z",), ("z", "resid_mid")),
    "head_out_by_pos": (("z",), ("z", "resid_mid")),
    "head_pattern": (("pattern",), ("z", "v", "resid_mid")),
}


def cache_of(model: GPT2, tokens: torch.Tensor, short_names: Iterable[str]) -> dict[str, list[torch.Tensor]]:
    """Per short name, every layer's activation of one run (batch axis dropped)."""
    short_names = tuple(short_names)
    layers = range(model.cfg.n_layer)
    names = [act_name(n, l) for n in short_names for l in layers]
    if not names:
        return {}
    _, cache = model.run_with_cache(tokens, names=names, stop_at_layer=model.cfg.n_layer)  # no unembedding
    return {n: [cache[act_name(n, l)][0] for l in layers] for n in short_names}


def _repeat_with(base: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """pos copies of base (pos, d); copy i has row i replaced by rows[i]."""
    n_pos = base.shape[0]
    x = base.expand(n_pos, *base.shape).clone()
    index = torch.arange(n_pos, device=base.device)
    x[index, index] = rows
    return x


def head_deltas(model: GPT2, layer: int, new_z: torch.Tensor, old_z: torch.Tensor) -> torch.Tensor:
    """(head, pos, d_model): what replacing each head's z (pos, head, d_head) adds to the attention output."""
    W_O = block_of(model, layer).attn.W_O_per_head.detach()
    return torch.einsum("phd,hdm->hpm", new_z - old_z, W_O)


def starts(model: GPT2, site: str, clean: dict, corrupted: dict) -> Iterator[Start]:
    """The patched residual streams of `site`, in TransformerLens's order, each at the point it differs from."""
    n_layer = model.cfg.n_layer
    for layer in range(n_layer):
        if site == "resid_pre":
            yield 2 * layer, _repeat_with(corrupted["resid_pre"][layer], clean["resid_pre"][layer])
        elif site == "attn_out":
            rows = corrupted["resid_pre"][layer] + clean["attn_out"][layer]
            yield 2 * layer + 1, _repeat_with(corrupted["resid_mid"][layer], rows)
        elif site == "mlp_out":
            rows = corrupted["resid_mid"][layer] + clean["mlp_out"][layer]
            yield 2 * layer + 2, _repeat_with(corrupted["resid_post"][layer], rows)
        elif site in ("head_out", "head_out_by_pos", "head_pattern"):
            old_z = corrupted["z"][layer]
            if site == "head_pattern":
                new_z = torch.einsum("hqk,khd->qhd", clean["pattern"][layer], corrupted["v"][layer])
            else:
                new_z = clean["z"][layer]
            deltas = head_deltas(model, layer, new_z, old_z)  # (head, pos, d)
            mid = corrupted["resid_mid"][layer]
            if site == "head_out_by_pos":
                n_pos, n_head = mid.shape[0], deltas.shape[0]
                x = mid.expand(n_pos, n_head, *mid.shape).clone()  # (pos patched, head, pos, d)
                index = torch.arange(n_pos, device=mid.device)
                x[index, :, index] += deltas.transpose(0, 1)
                yield 2 * layer + 1, x.flatten(0, 1)
            else:
                yield 2 * layer + 1, mid + deltas


def chunks(items: Iterable[Start], max_copies: int) -> Iterator[list[Start]]:
    """Starts regrouped into batches of at most max_copies copies, order kept."""
    chunk: list[Start] = []
    size = 0
    for point, x in items:
        for piece in x.split(max_copies):
            if chunk and size + len(piece) > max_copies:
                yield chunk
                chunk, size = [], 0
            chunk.append((point, piece))
            size += len(piece)
    if chunk:
        yield chunk


def run_from(model: GPT2, chunk: list[Start], readout: Readout) -> torch.Tensor:
    """Run copies that start at different points (in order) to the end; readout of the final residual streams.

    A copy joins the batch at its own point, so no block runs for a copy before the point where it changes.
    """
    x: torch.Tensor | None = None
    end = 2 * model.cfg.n_layer
    first = chunk[0][0]
    for point in range(first, end + 1):
        joining = [piece for p, piece in chunk if p == point]
        if joining:
            x = torch.cat([x, *joining]) if x is not None else torch.cat(joining)
        if point == end:
            break
        assert x is not None
        block = block_of(model, point // 2)
        if point % 2 == 0:
            x = x + block.attn(block.ln1(x))
        else:
            x = x + block.mlp(block.ln2(x))
    assert x is not None
    return readout(x)


def readout_of(setup: PatchSetup) -> Readout:
    """Final residual streams (n, pos, d) -> the metric of each copy (n,)."""
    model = setup.model
    if setup.metric is None:
        direction = setup.pair.direction(model).detach()
        return lambda x: setup.normalised(model.ln_final(x[:, -1]) @ direction)
    return lambda x: setup.of_logits(model.unembed(model.ln_final(x)))


def max_copies(setup: PatchSetup) -> int:
    """How many copies one batch holds under MAX_ELEMENTS (the widest activation per copy bounds it)."""
    cfg = setup.model.cfg
    n_pos = setup.n_pos
    widest = max(cfg.d_mlp, cfg.n_head * n_pos, cfg.d_vocab if setup.metric is not None else 0) * n_pos
    return max(1, MAX_ELEMENTS // widest)


def sweep(setup: PatchSetup, site: str) -> torch.Tensor:
    """The metric after every patch of `site`, shaped as TransformerLens's result for it."""
    model = setup.model
    clean_names, corrupted_names = _NEEDS[site]
    with torch.inference_mode():
        clean = cache_of(model, setup.clean, clean_names)
        corrupted = cache_of(model, setup.corrupted, corrupted_names)
        readout = readout_of(setup)
        values = [run_from(model, c, readout) for c in chunks(starts(model, site, clean, corrupted), max_copies(setup))]
        flat = torch.cat(values).float()
    return flat.reshape(shape_of(model, site, setup.n_pos))


def shape_of(model: GPT2, site: str, n_pos: int) -> tuple[int, ...]:
    size = {"layer": model.cfg.n_layer, "pos": n_pos, "head": model.cfg.n_head}
    return tuple(size[axis] for axis in SITE_AXES[site])


def patch(
    model: GPT2,
    clean: ModelInput,
    corrupted: ModelInput,
    site: str,
    answer: Token | None = None,
    other: Token | None = None,
    metric: Metric | None = None,
) -> torch.Tensor:
    """Patch each component of `site` from the clean run into the corrupted run; the metric after each patch.

    The result has TransformerLens's shape for the site: resid_pre, attn_out, mlp_out (layer, pos); head_out
    and head_pattern (layer, head); head_out_by_pos (layer, pos, head). By default the metric is the logit
    difference of `answer` (default: the clean run's top prediction) and `other` (default: the corrupted run's
    top prediction) at the last position, normalised to 0 at the corrupted run and 1 at the clean run.
    """
    check_site(site)
    return sweep(make_setup(model, clean, corrupted, answer, other, metric), site)
