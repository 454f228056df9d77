"""The atlas drawn: corpus examples with every token shaded by activation (as Neuroscope does), the activation
histogram, the examples of each activation band, the logit effect, a head's examples shaded by its attention.

Everything here reads the typed entries of gpt2atlas.atlas.entries (through an `AtlasReader`) and gives escaped
HTML, plotly figures and small tables. Every token text is HTML-escaped (quotes too: it also goes into `title`
attributes) and its whitespace shown (a space as a faint '·', a newline as '↵').
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from html import escape

import numpy as np
import plotly.graph_objects as go

from gpt2atlas.atlas.entries import Band, Example, HeadEntry, HeadExample, NeuronEntry
from gpt2atlas.atlas.reader import AtlasReader
from gpt2atlas.tokenizer import Tokenizer
from gpt2atlas.viz.labels import md_escape
from gpt2atlas.viz.readings.atlas import read_head_entry, read_neuron_entry
from gpt2atlas.viz.readings.words import num, pct, quoted
from gpt2atlas.viz.tables import Table

Decode = Callable[[int], str]
WHITESPACE = {" ": "·", "\n": "↵", "\t": "⇥", "\r": "␍"}
POSITIVE = (230, 110, 20)  # shading of a positive activation (orange)
NEGATIVE = (60, 110, 190)  # and of a negative one (blue)
OWN = "atlas-own"  # the class of the example's own token (outlined)
KEY = "atlas-key"  # and of a head example's key (dashed)
CSS = """
.atlas-text { font-family: ui-monospace, Menlo, Consolas, monospace; line-height: 1.9; white-space: pre-wrap; }
.atlas-tok { border-radius: 3px; } .atlas-ws { color: #9aa3b5; }
.atlas-own { outline: 2px solid #1f2430; } .atlas-key { outline: 2px dashed #2a9d4b; }
.atlas-example { margin: 6px 0; padding: 4px 8px; background: #fff; border: 1px solid #e3e7ee; border-radius: 6px; }
.atlas-where { font-size: 0.85em; color: #5b6478; }
.atlas details > summary { cursor: pointer; color: #4c78a8; font-size: 0.9em; }
"""  # the page that shows these pieces includes it once (the report's style, the dashboard's st.html)


@lru_cache(maxsize=1)
def _tokenizer() -> Tokenizer:
    return Tokenizer()


def decode_token(token: int) -> str:
    """One token's text, by our tokenizer (invalid UTF-8 pieces as U+FFFD)."""
    return _tokenizer().decode_token(token)


def visible(text: str) -> str:
    """`text` HTML-escaped (quotes included), its whitespace drawn as faint marks (never an empty string)."""
    if not text:
        return '<span class="atlas-ws">∅</span>'
    return "".join(f'<span class="atlas-ws">{WHITESPACE[c]}</span>' if c in WHITESPACE else escape(c) for c in text)


def shade(value: float, scale: float) -> str:
    """A CSS background for `value` on a scale whose top is `scale` (positive orange, negative blue)."""
    if not np.isfinite(value) or scale <= 0:
        return "transparent"
    alpha = min(1.0, abs(value) / scale) * 0.85
    r, g, b = POSITIVE if value >= 0 else NEGATIVE
    return f"rgba({r}, {g}, {b}, {alpha:.2f})"


def token_spans(
    tokens: Sequence[int],
    values: Sequence[float | None],
    scale: float,
    decode: Decode,
    marks: dict[int, str] | None = None,
    unit: str = "activation",
) -> str:
    """Each token with a value as a shaded <span> (the value in its title), a token without one as plain text;
    `marks` gives some positions a class of their own (OWN, KEY)."""
    marks = marks or {}
    spans = []
    for i, (token, value) in enumerate(zip(tokens, values)):
        text = decode(int(token))
        if value is None and i not in marks:
            spans.append(visible(text))
            continue
        cls = " ".join(["atlas-tok", *([marks[i]] if i in marks else [])])
        title = f"{text!r} (id {int(token)})" + (f" {unit} {num(value)}" if value is not None else "")
        style = f' style="background: {shade(value, scale)}"' if value is not None else ""
        spans.append(f'<span class="{cls}"{style} title="{escape(title)}">{visible(text)}</span>')
    return "<wbr>".join(spans)  # a line may break between any two tokens (their spaces are drawn as '·')


def whole_window(
    window: np.ndarray | None, start: int, values: Sequence[float], scale: float, decode: Decode, marks: dict[int, str]
) -> str:
    """The example's whole window in a <details> (shaded where the entry kept the values), or nothing."""
    if window is None:
        return ""
    full: list[float | None] = [None] * len(window)
    for i, v in enumerate(values):
        if 0 <= start + i < len(full):
            full[start + i] = v
    shifted = {start + i: style for i, style in marks.items()}
    spans = token_spans([int(t) for t in window], full, scale, decode, shifted)
    return (
        f'<details class="atlas-window"><summary>the whole window ({len(window)} tokens)</summary>'
        f'<div class="atlas-text">{spans}</div></details>'
    )


def example_html(example: Example, decode: Decode, scale: float, window: np.ndarray | None = None) -> str:
    """One neuron example: its activation and place, the tokens around it shaded, its own token outlined, and
    the whole window on expand (when `window`, its ids, is given)."""
    marks = {example.offset: OWN}
    spans = token_spans(example.tokens, example.activations, scale, decode, marks)
    return (
        f'<div class="atlas-example" data-window="{example.window}" data-position="{example.position}">'
        f'<div class="atlas-where">{escape(num(example.activation))} · window '
        f"{example.window:,}, token {example.position}</div>"
        f'<div class="atlas-text">{spans}</div>'
        f"{whole_window(window, example.start, example.activations, scale, decode, marks)}</div>"
    )


def head_example_html(example: HeadExample, decode: Decode, window: np.ndarray | None = None) -> str:
    """One head example: the query outlined, the key it looks at dashed, every token shaded by the query's
    attention on it."""
    marks = {example.offset: OWN}
    key = example.key - example.start
    if 0 <= key < len(example.tokens):
        marks[key] = KEY if key != example.offset else OWN
    query_text = decode(example.tokens[example.offset])
    key_text = decode(example.tokens[key]) if 0 <= key < len(example.tokens) else "?"
    spans = token_spans(example.tokens, example.activations, 1.0, decode, marks, unit="attention")
    return (
        f'<div class="atlas-example atlas-head-example" data-window="{example.window}" '
        f'data-position="{example.position}" data-key="{example.key}">'
        f'<div class="atlas-where">weight {escape(num(example.activation))} · query '
        f"{escape(quoted(query_text))} (token {example.position}) → key {escape(quoted(key_text))} (token "
        f"{example.key}) · window {example.window:,}</div>"
        f'<div class="atlas-text">{spans}</div>'
        f"{whole_window(window, example.start, example.activations, 1.0, decode, marks)}</div>"
    )


def _windows(reader: AtlasReader | None, windows: Sequence[int]) -> dict[int, np.ndarray]:
    return {w: reader.window(w) for w in dict.fromkeys(windows)} if reader is not None else {}


def examples_html(
    entry: NeuronEntry, decode: Decode, reader: AtlasReader | None = None, limit: int | None = None
) -> str:
    """The neuron's top examples, highest first, shaded on the scale of its maximum."""
    shown = entry.examples[:limit]
    windows = _windows(reader, [e.window for e in shown])
    scale = max(entry.stats.maximum, 1e-12)
    body = "".join(example_html(e, decode, scale, windows.get(e.window)) for e in shown)
    return f'<div class="atlas-examples" data-unit="{entry.name}">{body}</div>'


def band_html(band: Band, entry: NeuronEntry, decode: Decode) -> str:
    """One activation band: its range, how many positions fell there, and its examples."""
    scale = max(entry.stats.maximum, 1e-12)
    share = band.count / entry.stats.count if entry.stats.count else 0.0
    body = "".join(example_html(e, decode, scale) for e in band.examples)
    return (
        f'<div class="atlas-band"><div style="font-weight: 600">activations {num(band.low * scale)} to '
        f"{num(band.high * scale)} ({num(band.low)} to {num(band.high)} of the maximum): {band.count:,} positions "
        f"({pct(share)})</div>{body or '<p>no examples kept</p>'}</div>"
    )


def bands_html(entry: NeuronEntry, decode: Decode) -> str:
    """Every band, highest first, behind one <details>: what a medium activation looks like."""
    bands = "".join(band_html(b, entry, decode) for b in sorted(entry.bands, key=lambda b: -b.low))
    return f'<details class="atlas-bands"><summary>examples drawn at random from each activation band</summary>{bands}</details>'


def head_examples_html(
    entry: HeadEntry, decode: Decode, reader: AtlasReader | None = None, limit: int | None = None
) -> str:
    shown = entry.examples[:limit]
    windows = _windows(reader, [e.window for e in shown])
    body = "".join(head_example_html(e, decode, windows.get(e.window)) for e in shown)
    return f'<div class="atlas-examples" data-unit="{entry.name}">{body}</div>'


def histogram_figure(entry: NeuronEntry) -> go.Figure:
    """The neuron's activations over the corpus: counts per bin on a log axis."""
    edges = np.asarray(entry.histogram.edges, dtype=float)
    counts = np.asarray(entry.histogram.counts, dtype=float)
    centres, widths = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    seen = np.flatnonzero(counts)  # the axis spans the bins that hold something, not the fixed edges' whole reach
    span = [float(edges[seen[0]]), float(edges[seen[-1] + 1])] if len(seen) else None
    fig = go.Figure(
        go.Bar(
            x=centres,
            y=np.where(counts > 0, counts, np.nan),
            width=widths,
            marker={"color": ["#e66e14" if c > 0 else "#3c6ebe" for c in centres]},
            hovertemplate="%{x:.3g}: %{y:,} positions<extra></extra>",
        )
    )
    fig.update_layout(
        title={"text": f"{entry.name}: activation histogram", "font": {"size": 14}},  # short: it fits a column
        xaxis={"title": "activation (GELU output)", "range": span},
        yaxis={"title": "positions (log)", "type": "log"},
        bargap=0,
        width=700,
        height=360,
        showlegend=False,
    )
    return fig


def logit_table(entry: NeuronEntry, decode: Decode, rows: int = 10) -> Table:
    """Promoted and suppressed tokens side by side, strongest first."""
    up, down = entry.logit_effect.promoted[:rows], entry.logit_effect.suppressed[:rows]
    body = []
    for i in range(max(len(up), len(down))):
        cells = [str(i + 1)]
        for side in (up, down):
            cells += [quoted(decode(side[i].token)), num(side[i].logit)] if i < len(side) else ["", ""]
        body.append(cells)
    return Table(
        f"{entry.name}'s logit effect: the logit change per unit of its output (through ln_final's gain and W_U)",
        ["#", "promoted", "logit up", "suppressed", "logit down"],
        body,
    )


def token_means_table(entry: NeuronEntry, decode: Decode, rows: int = 10) -> Table:
    return Table(
        f"{entry.name}'s highest mean activation by token (tokens seen often enough)",
        ["token", "mean", "seen"],
        [[quoted(decode(m.token)), num(m.mean), f"{m.count:,}"] for m in entry.token_means[:rows]],
    )


def head_stats_table(entry: HeadEntry) -> Table:
    s = entry.stats
    return Table(
        f"{entry.name} averaged over the corpus",
        ["score", "value", "over queries"],
        [
            ["previous token", pct(s.previous_token), f"{s.queries:,}"],
            ["first token", pct(s.first_token), f"{s.queries:,}"],
            ["duplicate token", pct(s.duplicate_token), f"{s.duplicate_queries:,}"],
            ["induction", pct(s.induction), f"{s.induction_queries:,}"],
            ["entropy (nats)", num(s.entropy), f"{s.queries:,}"],
        ],
    )


def examples_text(examples: Sequence[Example | HeadExample], decode: Decode) -> list[str]:
    """The examples as Markdown lines, the example's own token in bold (for the Markdown report)."""
    lines = []
    for e in examples:
        pieces = [md_escape(decode(t)) for t in e.tokens]
        pieces[e.offset] = f"**{pieces[e.offset] or '∅'}**"
        lines.append(f"`{num(e.activation)}` (window {e.window:,}, token {e.position}): " + "".join(pieces))
    return lines


@dataclass(frozen=True)
class AtlasBlock:
    """A block of escaped HTML (examples, bands) and its Markdown twin, drawn from atlas entries."""

    name: str
    html: str
    markdown: str


@dataclass(frozen=True)
class UnitView:
    """One neuron or head as the report and the dashboard show it."""

    title: str
    reading: tuple[str, ...]
    blocks: tuple[AtlasBlock, ...]
    tables: tuple[Table, ...]
    figures: dict[str, go.Figure]
    captions: dict[str, str]
    entry: NeuronEntry | HeadEntry


CAPTIONS = {
    "atlas_histogram": "The neuron's activations over every scanned position (log count): how often it fires, and "
    "how strongly.",
}


def neuron_view(
    reader: AtlasReader, layer: int, index: int, decode: Decode = decode_token, examples: int = 10
) -> UnitView:
    """What the atlas says about neuron `index` of `layer`: reading, top examples, bands, logit effect, histogram."""
    entry = reader.neuron(layer, index)
    reading = read_neuron_entry(entry, decode, reader.token_count)
    shown = entry.examples[:examples]
    blocks = (
        AtlasBlock(
            "examples",
            f'<p class="legend">{entry.name}\'s top {len(shown)} of {len(entry.examples)} examples in the corpus '
            f"({reader.run.tokens:,} tokens of {escape(reader.run.model)}): each token shaded by the neuron's "
            f"activation on it, the example's own token outlined; open one for its whole window.</p>"
            + examples_html(entry, decode, reader, examples),
            "\n".join(f"- {line}" for line in examples_text(shown, decode)),
        ),
        AtlasBlock("bands", bands_html(entry, decode), ""),
    )
    return UnitView(
        f"{entry.name} across the corpus",
        tuple(reading),
        blocks,
        (logit_table(entry, decode), token_means_table(entry, decode)),
        {"atlas_histogram": histogram_figure(entry)},
        dict(CAPTIONS),
        entry,
    )


def head_view(
    reader: AtlasReader, layer: int, index: int, decode: Decode = decode_token, examples: int = 10
) -> UnitView:
    """What the atlas says about head `index` of `layer`: reading, scores, top examples."""
    entry = reader.head(layer, index)
    shown = entry.examples[:examples]
    windows = [reader.window(e.window) for e in shown[:1]]  # its length is the context
    blocks = (
        AtlasBlock(
            "examples",
            f'<p class="legend">{entry.name}\'s top {len(shown)} examples: the query outlined, the key it looks at '
            "dashed, every token shaded by the query's attention on it.</p>"
            + head_examples_html(entry, decode, reader, examples),
            "\n".join(f"- {line}" for line in examples_text(shown, decode)),
        ),
    )
    return UnitView(
        f"{entry.name} across the corpus",
        tuple(read_head_entry(entry, decode, len(windows[0]) if windows else None)),
        blocks,
        (head_stats_table(entry),),
        {},
        {},
        entry,
    )
