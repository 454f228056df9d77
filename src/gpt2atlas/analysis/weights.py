"""Any weight tensor, or a block of it: statistics, largest entries, singular values, heat map and histogram.

Also the model summary (parameters per component) and the 3D architecture view, which need no parameter name.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from gpt2atlas.analysis import chance
from gpt2atlas.analysis.base import FLATTENED, AnalysisResult
from gpt2atlas.analysis.summary import ConfigValues, ModelSummary, parameter_rows, summary
from gpt2atlas.errors import InputError
from gpt2atlas.model.config import GPT2Config
from gpt2atlas.model.gpt2 import GPT2
from gpt2atlas.model.loading import our_name
from gpt2atlas.numerics.threads import single_thread_lapack

MAX_SIDE = 2048  # heat maps longer than this, or with more cells than MAX_CELLS, are shown with a stride
MAX_CELLS = 1_000_000  # (PNG export time grows with the cell count)
HISTOGRAM_BINS = 100
TIED_NAMES = {
    "lm_head.weight": "embed.W_E",
    "transformer.lm_head.weight": "embed.W_E",
    "W_E": "embed.W_E",
    "W_pos": "pos_embed.W_pos",
    "wte": "embed.W_E",
    "wpe": "pos_embed.W_pos",
}
Span = tuple[int, int]


# ----- findings ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelInfo:
    """The model the weights belong to: its source, then its hyper-parameters (written beside it)."""

    source: str
    config: ConfigValues = field(metadata=FLATTENED)


@dataclass(frozen=True)
class BlockStats:
    mean: float
    std: float
    min: float
    max: float
    abs_max: float
    l2_norm: float
    fraction_near_zero: float  # share of entries with |value| < 1e-3


@dataclass(frozen=True)
class MatrixEntry:
    """An entry of a 2D weight, with its indices in the whole tensor."""

    row: int
    col: int
    value: float


@dataclass(frozen=True)
class VectorEntry:
    """An entry of a 1D weight, with its index in the whole tensor."""

    index: int
    value: float


@dataclass(frozen=True)
class WeightsFindings:
    """The model and its parameter counts: all there is when no weight was asked for (see WeightBlockFindings)."""

    model: ModelInfo
    parameter_counts: dict[str, int]  # component -> parameters, then "total"


@dataclass(frozen=True)
class Spectrum:
    """A 2D block's singular values (the 10 largest) and ranks."""

    singular_values: list[float]
    stable_rank: float  # sum sigma^2 / max sigma^2
    stable_rank_chance: float  # a matrix of i.i.d. entries of the same shape
    effective_rank: float  # exp(entropy of sigma / sum sigma) (Roy & Vetterli 2007)


@dataclass(frozen=True, kw_only=True)
class WeightBlockFindings(WeightsFindings):
    """A weight block's numbers; the spectrum fields only for a 2D block with both sides >= 2."""

    param: str  # our name of the parameter
    asked_for: str  # the name as given (ours or Hugging Face's)
    shape: list[int]  # of the whole tensor
    component: str
    layer: int | None
    rows: list[int] | None  # [start, stop]; None for a 1D tensor
    cols: list[int]  # [start, stop]
    block_shape: list[int]
    stats: BlockStats
    largest: list[MatrixEntry] | list[VectorEntry]  # largest in magnitude first
    spectrum: Spectrum | None = field(default=None, metadata=FLATTENED)  # its fields in its place, if any
    figure_stride: list[int]


def resolve_param(model: GPT2, name: str) -> str:
    """Our parameter name for `name`, which may be ours (`blocks.0.attn.W_QKV`) or Hugging Face's
    (`h.0.attn.c_attn.weight`, with or without `transformer.`). Unknown names raise InputError."""
    params = dict(model.named_parameters())
    text = name.strip()
    bare = text.removeprefix("transformer.")
    candidate = TIED_NAMES.get(text) or TIED_NAMES.get(bare) or our_name(text)
    if candidate in params:
        return candidate
    close = difflib.get_close_matches(candidate or text, list(params), n=3, cutoff=0.6)
    examples = close or ["embed.W_E", "pos_embed.W_pos", "blocks.0.attn.W_QKV", "blocks.0.mlp.W_in", "ln_final.w"]
    hint = "did you mean" if close else "e.g."
    raise InputError(
        f"param={name!r} is not a parameter of this model ({hint} {', '.join(examples)}; Hugging Face names like "
        f"h.0.attn.c_attn.weight work too; `gpt2atlas info` lists all {len(params)})",
        arguments=("param",),
    )


def parse_span(span: str | Span | slice | None, length: int, axis: str) -> Span:
    """(start, stop) from "a:b" (either end may be left out), a pair, a slice or None (everything)."""
    if span is None:
        return 0, length
    try:
        if isinstance(span, str):
            if span.count(":") != 1:
                raise ValueError
            a, b = (part.strip() for part in span.split(":"))
            start, stop = int(a) if a else 0, int(b) if b else length
        elif isinstance(span, slice):
            if span.step not in (None, 1):
                raise ValueError
            start, stop = span.start or 0, length if span.stop is None else span.stop
        else:
            start, stop = (int(v) for v in span)
    except (TypeError, ValueError):
        raise InputError(f"{axis}={span!r} must look like a:b (e.g. 0:64)", arguments=(axis,)) from None
    if not 0 <= start < stop <= length:
        raise InputError(
            f"{axis}={start}:{stop} must be a non-empty range a:b with 0 <= a < b <= {length}", arguments=(axis,)
        )
    return start, stop


def axis_sections(name: str, cfg: GPT2Config) -> dict[str, list[tuple[int, str]]]:
    """Where the parts of a weight's rows/columns start: Q|K|V and heads in W_QKV, heads in W_O."""
    leaf = name.split(".")[-1]
    heads = [(h * cfg.d_head, f"head {h}") for h in range(cfg.n_head)]
    if leaf in ("W_QKV", "b_QKV"):
        cols = [
            (part * cfg.d_model + start, f"{qkv} {label}") for part, qkv in enumerate("QKV") for start, label in heads
        ]
        return {"rows": [], "cols": cols}  # b_QKV is drawn as one row too
    if leaf == "W_O":
        return {"rows": heads, "cols": []}
    return {"rows": [], "cols": []}


def singular_values(block: torch.Tensor) -> np.ndarray:
    """All singular values of a 2D block, from the eigenvalues of its smaller Gram matrix, in float64 (a float32
    product would blur singular values below ~3e-4 of the largest)."""
    b = block.double()
    gram = (b.T @ b if b.shape[1] <= b.shape[0] else b @ b.T).numpy()
    with single_thread_lapack():
        return np.sqrt(np.clip(np.linalg.eigvalsh(gram)[::-1], 0, None))


def _stats(block: torch.Tensor) -> BlockStats:
    values = block.double()
    return BlockStats(
        mean=float(values.mean()),
        std=float(values.std(unbiased=False)),
        min=float(values.min()),
        max=float(values.max()),
        abs_max=float(values.abs().max()),
        l2_norm=float(values.norm()),
        fraction_near_zero=float((values.abs() < 1e-3).double().mean()),
    )


def _largest(
    block: torch.Tensor, r: Span, c: Span, one_axis: bool, n: int = 5
) -> list[MatrixEntry] | list[VectorEntry]:
    """The n entries of largest magnitude, with their indices in the whole tensor."""
    flat = block.reshape(-1)
    top = flat.abs().topk(min(n, flat.numel())).indices.tolist()
    if one_axis:
        return [VectorEntry(c[0] + i, float(flat[i])) for i in top]
    width = block.shape[1]
    return [MatrixEntry(r[0] + i // width, c[0] + i % width, float(flat[i])) for i in top]


def _spectrum(block: torch.Tensor) -> Spectrum | None:
    """The spectrum of a 2D block (None for a block with a side < 2)."""
    if min(block.shape) < 2:
        return None
    s = singular_values(block)
    energy = s**2
    p = s / s.sum() if s.sum() > 0 else s  # effective rank (Roy & Vetterli 2007): exp(entropy of sigma / sum sigma)
    entropy = -float(np.sum(p[p > 0] * np.log(p[p > 0])))
    return Spectrum(
        singular_values=s[:10].tolist(),
        stable_rank=float(energy.sum() / energy[0]) if energy[0] > 0 else 0.0,
        stable_rank_chance=chance.stable_rank(*block.shape),
        effective_rank=math.exp(entropy) if s.sum() > 0 else 0.0,
    )


@dataclass
class WeightView:
    """What the heat map and histogram are drawn from."""

    name: str
    values: np.ndarray  # the (strided) block shown in the heat map, float32
    row_index: np.ndarray  # tensor row of each heat-map row
    col_index: np.ndarray
    counts: np.ndarray  # histogram of every value in the block
    edges: np.ndarray
    sections: dict[str, list[tuple[int, str]]]
    strides: list[int]  # heat-map rows/columns show every n-th row/column of the block


class WeightReport(AnalysisResult[WeightsFindings]):
    """A weight block's numbers, plus the model summary; figures: heat map + histogram, summary, 3D view."""

    area = "weights"

    def __init__(self, findings: WeightsFindings, view: WeightView | None, model_summary: ModelSummary) -> None:
        super().__init__(findings)
        self.view = view
        self.model_summary = model_summary


def _block(model: GPT2, name: str, rows: Any, cols: Any) -> tuple[torch.Tensor, Span, Span]:
    """The selected block as a 2D float tensor; a 1D tensor is one row, its entries picked by rows or cols."""
    tensor = dict(model.named_parameters())[name].detach().float().cpu()
    if tensor.ndim == 1:
        if rows is not None and cols is not None:
            raise InputError(
                f"{name} has one axis ({tensor.shape[0]} entries): give rows= or cols=, not both",
                arguments=("rows", "cols"),
            )
        span = parse_span(rows if rows is not None else cols, tensor.shape[0], "rows" if cols is None else "cols")
        return tensor[span[0] : span[1]][None], (0, 1), span
    r, c = parse_span(rows, tensor.shape[0], "rows"), parse_span(cols, tensor.shape[1], "cols")
    return tensor[r[0] : r[1], c[0] : c[1]], r, c


def heatmap_strides(n_rows: int, n_cols: int) -> list[int]:
    """Show every n-th row/column so the heat map stays within MAX_SIDE per axis and MAX_CELLS in all."""
    strides = [max(1, math.ceil(n_rows / MAX_SIDE)), max(1, math.ceil(n_cols / MAX_SIDE))]
    while math.ceil(n_rows / strides[0]) * math.ceil(n_cols / strides[1]) > MAX_CELLS:
        longer = 0 if math.ceil(n_rows / strides[0]) >= math.ceil(n_cols / strides[1]) else 1
        strides[longer] += 1
    return strides


def _view(name: str, block: torch.Tensor, r: Span, c: Span, cfg: GPT2Config) -> WeightView:
    strides = heatmap_strides(*block.shape)
    shown = block[:: strides[0], :: strides[1]].contiguous().numpy().astype(np.float32)
    counts, edges = np.histogram(block.numpy(), bins=HISTOGRAM_BINS)
    return WeightView(
        name,
        shown,
        np.arange(r[0], r[1], strides[0]),
        np.arange(c[0], c[1], strides[1]),
        counts,
        edges,
        axis_sections(name, cfg),
        strides,
    )


def analyze(model: GPT2, param: str | None = None, rows: Any = None, cols: Any = None) -> WeightReport:
    """Look at weight tensor `param` (ours or its Hugging Face name), or its block `rows` x `cols` ("a:b").

    Without `param`, only the model summary and the 3D architecture view are made.
    """
    model_summary = summary(model)
    findings = WeightsFindings(
        model=ModelInfo(model.source, ConfigValues.of(model.cfg)),
        parameter_counts=model_summary.parameter_counts,
    )
    if param is None:
        if rows is not None or cols is not None:
            raise InputError(
                "rows= and cols= select a block of a parameter: give param= too", arguments=("rows", "cols", "param")
            )
        return WeightReport(findings, None, model_summary)

    name = resolve_param(model, param)
    row = next(r for r in parameter_rows(model) if r.name == name)
    block, r, c = _block(model, name, rows, cols)
    one_axis = len(row.shape) == 1
    view = _view(name, block, r, c, model.cfg)
    block_findings = WeightBlockFindings(
        model=findings.model,
        parameter_counts=findings.parameter_counts,
        param=name,
        asked_for=param,
        shape=list(row.shape),
        component=row.component,
        layer=row.layer,
        rows=None if one_axis else list(r),
        cols=list(c),
        block_shape=[c[1] - c[0]] if one_axis else [r[1] - r[0], c[1] - c[0]],
        stats=_stats(block),
        largest=_largest(block, r, c, one_axis),
        spectrum=None if one_axis else _spectrum(block),
        figure_stride=view.strides,
    )
    return WeightReport(block_findings, view, model_summary)
