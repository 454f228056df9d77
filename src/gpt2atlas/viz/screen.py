"""Figures cut to what a screen can show: heat maps pooled to screen resolution, huge scatters sampled.

A page never shows more than ~1,000 pixels a side, but GPT-2 small's weight block is 768 × 768 values (3 MB of
JSON) and the vocabulary 50,257 points. Pooling keeps, in each block, the value of largest magnitude (so an outlier
row or column stays visible); sampling keeps every outlying point and a uniform random sample of the rest.
The full data stays in the findings and in the PNG export; each figure cut here says so in its note.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

MAX_HEATMAP_SIDE = 256  # cells per axis, roughly the pixels a heat map gets on a report page
MAX_SCATTER_POINTS = 5_000
TITLE_WIDTH = 80  # characters per title line: about what an 800 px page has room for
PLOT_PX_AT_800 = 560  # the plotting area of a figure on an 800 px page (its margins, legend and colour bars aside)
TITLE_CHAR_PX = 8  # the width of a subplot title's character (plotly's 16 px font)
TITLE_LINE_PX = 20  # the height of one more line of a subplot title
DEFAULT_TOP_MARGIN = 100  # plotly's, when a figure sets none
OUTLIER_Z = 4.0  # points this many robust standard deviations out in any coordinate are always kept


@dataclass(frozen=True)
class Cut:
    """What was cut from one trace, in words a reader understands."""

    trace: str
    note: str


def pool_signed_max(z: np.ndarray, factors: tuple[int, int]) -> np.ndarray:
    """Each `factors[0]` × `factors[1]` block of `z` as its value of largest magnitude (sign kept; NaN ignored)."""
    fr, fc = factors
    rows, cols = z.shape
    padded = np.full((math.ceil(rows / fr) * fr, math.ceil(cols / fc) * fc), np.nan, dtype=np.float64)
    padded[:rows, :cols] = z
    grid = padded.reshape(padded.shape[0] // fr, fr, padded.shape[1] // fc, fc).transpose(0, 2, 1, 3)
    blocks = grid.reshape(grid.shape[0], grid.shape[1], fr * fc)
    magnitude = np.where(np.isnan(blocks), -1.0, np.abs(blocks))
    picked = np.take_along_axis(blocks, magnitude.argmax(axis=-1)[..., None], axis=-1)[..., 0]
    return picked


def sample_indices(columns: list[np.ndarray], limit: int, seed: int = 0) -> np.ndarray:
    """Indices of at most `limit` points: every outlier (robust z > OUTLIER_Z in any coordinate), then a random
    sample of the rest, so the cloud keeps its density and the points far out are never lost.

    (Keeping a fixed share of each tail instead drew a dense false frame around a Gaussian cloud.)
    """
    n = len(columns[0])
    z = np.zeros(n)
    for values in columns:
        finite = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0)
        centre = np.median(finite)
        spread = 1.4826 * np.median(np.abs(finite - centre)) or float(np.std(finite)) or 1.0
        z = np.maximum(z, np.abs(finite - centre) / spread)
    outliers = np.flatnonzero(z > OUTLIER_Z)
    outliers = outliers[np.argsort(-z[outliers])][: limit // 5]  # the furthest first, a fifth of the room at most
    keep = np.zeros(n, dtype=bool)
    keep[outliers] = True
    rest = np.flatnonzero(~keep)
    room = max(0, limit - len(outliers))
    if room < len(rest):
        rest = np.random.default_rng(seed).choice(rest, size=room, replace=False)
    keep[rest] = True
    return np.flatnonzero(keep)


def as_array(values) -> np.ndarray:
    """A trace's array as numpy, also when plotly holds it as a typed-array spec (`{"dtype", "bdata", "shape"}`)."""
    if isinstance(values, dict) and "bdata" in values:
        array = np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"]).newbyteorder("<"))
        shape = values.get("shape")
        return array.reshape([int(n) for n in str(shape).split(",")]) if shape else array
    return np.asarray(values)


def _axis_values(values, n: int) -> np.ndarray:
    return np.arange(n) if values is None else as_array(values)


def _pool_heatmap(trace: go.Heatmap, max_side: int) -> Cut | None:
    z = as_array(trace.z).astype(np.float64) if trace.z is not None else None
    if z is None or z.ndim != 2 or max(z.shape) <= max_side:
        return None
    factors = (math.ceil(z.shape[0] / max_side), math.ceil(z.shape[1] / max_side))
    x = _axis_values(trace.x, z.shape[1])[:: factors[1]]
    y = _axis_values(trace.y, z.shape[0])[:: factors[0]]
    trace.update(z=pool_signed_max(z, factors), x=x, y=y, text=None, customdata=None)
    return Cut(
        trace.name or "heat map",
        f"Heat map shown at 1/{factors[0]} × 1/{factors[1]} resolution ({z.shape[0]} × {z.shape[1]} values): "
        "each cell is the largest-magnitude value of its block, labelled by the block's first row and column",
    )


PER_POINT = ("text", "hovertext", "customdata")


def _sample_scatter(trace, limit: int) -> Cut | None:
    if trace.x is None or trace.y is None or len(as_array(trace.x)) <= limit:
        return None
    columns = [as_array(trace.x), as_array(trace.y)] + ([as_array(trace.z)] if trace.type == "scatter3d" else [])
    kept = sample_indices(columns, limit)
    n = len(columns[0])
    update = {axis: values[kept] for axis, values in zip(("x", "y", "z"), columns, strict=False)}
    for attribute in PER_POINT:
        values = getattr(trace, attribute)
        if values is not None and not isinstance(values, str) and len(values) == n:
            update[attribute] = [values[i] for i in kept]
    colour = trace.marker.color if trace.marker is not None else None
    if colour is not None and not isinstance(colour, str) and len(as_array(colour)) == n:
        update["marker_color"] = as_array(colour)[kept]
    trace.update(**update)
    return Cut(
        trace.name or "scatter",
        f"{(trace.name or 'scatter').capitalize()}: {len(kept):,} of {n:,} points shown "
        f"(every point over {OUTLIER_Z:g} robust standard deviations out kept, the rest sampled at random)",
    )


def wrap_line(text: str, width: int = TITLE_WIDTH) -> str:
    """`text` broken with <br> at spaces so that no line is longer than `width` characters (where it can be)."""
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return "<br>".join([*lines, line])


def wrap_title(title: str, width: int = TITLE_WIDTH) -> str:
    """A plotly title whose plain lines are wrapped (lines with markup such as <sup> are left as they are)."""
    return "<br>".join(wrap_line(line, width) if "<" not in line else line for line in title.split("<br>"))


def _column_widths(fig: go.Figure) -> dict[float, float]:
    """The centre of each x axis's domain (where make_subplots puts the subplot's title) and the domain's width."""
    widths = {}
    for name in fig.layout:
        if name.startswith("xaxis") and fig.layout[name].domain:
            lo, hi = fig.layout[name].domain
            widths[round((lo + hi) / 2, 6)] = hi - lo
    return widths


def wrap_subplot_titles(fig: go.Figure) -> None:
    """Break each subplot title so it fits its column on an 800 px page (side by side, long ones ran together)."""
    widths = _column_widths(fig)
    top_row_lines = 0  # lines added to the titles of the top row, which grow up into the figure's title
    top = max((n.y for n in fig.layout.annotations if n.y is not None), default=None)
    for note in fig.layout.annotations:
        if note.showarrow is not False or note.xref != "paper" or note.x is None or not note.text:
            continue
        width = widths.get(round(note.x, 6))
        if width is None:
            continue
        wrapped = wrap_title(note.text, max(12, int(width * PLOT_PX_AT_800 / TITLE_CHAR_PX)))
        if note.y == top:
            top_row_lines = max(top_row_lines, wrapped.count("<br>") - note.text.count("<br>"))
        note.text = wrapped
    if top_row_lines:
        extra = TITLE_LINE_PX * top_row_lines
        fig.layout.margin.t = (fig.layout.margin.t if fig.layout.margin.t is not None else DEFAULT_TOP_MARGIN) + extra
        if fig.layout.height:
            fig.layout.height += extra


def fit_to_screen(
    fig: go.Figure, max_side: int = MAX_HEATMAP_SIDE, max_points: int = MAX_SCATTER_POINTS
) -> tuple[go.Figure, list[Cut]]:
    """A copy of `fig` with heat maps pooled and scatters sampled to what a page shows, and what was cut.

    Long titles are wrapped too, the figure's and its subplots': plotly never wraps them, and at 800 px they ran
    off the figure or into each other.
    """
    fig = go.Figure(fig)
    if fig.layout.title.text:
        fig.update_layout(title_text=wrap_title(fig.layout.title.text))
    wrap_subplot_titles(fig)
    cuts = []
    for trace in fig.data:
        if trace.type == "heatmap":
            cut = _pool_heatmap(trace, max_side)
        elif trace.type in ("scatter", "scattergl", "scatter3d"):
            cut = _sample_scatter(trace, max_points)
        else:
            cut = None
        if cut is not None:
            cuts.append(cut)
    return fig, cuts
