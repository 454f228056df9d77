"""The report as ONE self-contained HTML file: plotly.js embedded once, no network request at all.

All user text (prompts, tokens, readings, provenance) is escaped here; figures travel as gzipped, base64 plotly
JSON, which no text can break out of. A Content-Security-Policy forbids every network load.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from html import escape
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.io.json import to_json_plotly
from plotly.offline import get_plotlyjs

from gpt2atlas.report.document import Part, Report, Sample, Section, Table
from gpt2atlas.viz.atlas import CSS as ATLAS_CSS
from gpt2atlas.viz.readings import num
from gpt2atlas.viz.screen import as_array, fit_to_screen

CSP = (
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:; worker-src blob:; connect-src 'none'"
)
FIGURE_CONFIG = {"displaylogo": False, "responsive": True}

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1f2430; background: #fafbfc; }
header, main, footer { max-width: 1180px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 24px; }
h1 { margin-bottom: 4px; } h2 { border-bottom: 2px solid #d9dee7; padding-bottom: 4px; margin-top: 40px; }
.sub { color: #5b6478; margin-top: 0; }
nav.toc { background: #fff; border: 1px solid #d9dee7; border-radius: 8px; padding: 8px 24px; }
nav.toc li { margin: 4px 0; } .muted { color: #7a8396; }
.reading { background: #fff; border-left: 4px solid #4c78a8; padding: 8px 16px 8px 32px; margin: 12px 0; }
.skipped { background: #fff7e6; border-left: 4px solid #e4a11b; padding: 8px 16px; }
figure.plot { background: #fff; border: 1px solid #e3e7ee; border-radius: 8px; margin: 16px 0; padding: 8px;
              overflow-x: auto; }
figure.plot figcaption { color: #5b6478; font-size: 0.9em; }
table { border-collapse: collapse; margin: 12px 0; background: #fff; display: block; max-width: 100%; overflow-x: auto; }
th, td { border: 1px solid #d9dee7; padding: 3px 10px; text-align: left; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
.sample { background: #fff; border: 1px solid #e3e7ee; border-radius: 8px; padding: 10px 14px; line-height: 1.9;
          white-space: pre-wrap; font-family: ui-monospace, Menlo, Consolas, monospace; }
.sample .prompt { color: #5b6478; } .sample .tok { border-radius: 3px; }
.legend { font-size: 0.9em; color: #5b6478; }
"""
STYLE += ATLAS_CSS


# plotly.js and the figures travel gzipped (inert script elements, base64). The loader unpacks them with the
# browser's own DecompressionStream, then draws each figure when it comes near the viewport: the page is usable at
# once, however many figures it holds. A WebGL figure holds one context per 3-D scene (and each scene runs its own
# render loop, every frame, for as long as it lives) or two for a 2-D WebGL plot. So a WebGL figure is released
# (its contexts lost on purpose, not left to the garbage collector) as soon as it leaves the screen's neighbourhood,
# and never more than GL_CONTEXTS contexts are alive, well under the browser's limit of 16: a page scrolled past
# its 3-D figures keeps no context and no render loop running. (Counted by figure instead, four figures of four
# scenes each kept 13 contexts and 13 render loops, 720 animation frames a second, alive behind a page of heat maps.)
PACKED_SCRIPT = "application/gzip-base64"
GL_CONTEXTS = 8
PLOTLY_LOADER = (
    "(async () => {"
    "const unpack = async id => {"
    " const bytes = Uint8Array.from(atob(document.getElementById(id).textContent), c => c.charCodeAt(0));"
    " return new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'))).text(); };"
    "const contexts = new WeakMap(), getContext = HTMLCanvasElement.prototype.getContext;"
    "HTMLCanvasElement.prototype.getContext = function (...args) {"
    " const context = getContext.apply(this, args); if (context) contexts.set(this, context); return context; };"
    "const release = el => { for (const canvas of el.querySelectorAll('canvas')) {"
    " const lose = contexts.get(canvas)?.getExtension?.('WEBGL_lose_context'); if (lose) lose.loseContext(); } };"
    "(0, eval)(await unpack('plotly-js'));"
    "const packed = JSON.parse(await unpack('gpt2atlas-figures'));"
    "const figures = new Map(packed.figures.map(f => [f.id, f]));"
    "const live = [], near = new Set(), contextsOf = el => figures.get(el.id).gl;"
    "const alive = () => live.reduce((n, el) => n + contextsOf(el), 0);"
    "window.gpt2atlasFigures = {drawn: 0, maxLiveGL: 0, liveGL: alive, failures: []};"
    "const failed = (el, err) => { delete el.dataset.drawn;"
    " window.gpt2atlasFigures.failures.push(el.id + ': ' + (err && err.message || err)); };"
    "const forget = el => { release(el); Plotly.purge(el); delete el.dataset.drawn; delete el.dataset.rendered;"
    " live.splice(live.indexOf(el), 1); };"
    "const draw = el => {"
    " if (el.dataset.drawn) return; el.dataset.drawn = '1';"
    " const f = figures.get(el.id);"
    " try {"
    "  if (f.gl) { for (const old of live.filter(o => !near.has(o))) {"
    "    if (alive() + f.gl <= " + str(GL_CONTEXTS) + ") break; forget(old); }"
    "   live.push(el); }"
    "  window.gpt2atlasFigures.maxLiveGL = Math.max(window.gpt2atlasFigures.maxLiveGL, alive());"
    "  const layout = Object.assign(structuredClone(f.layout), {template: packed.templates[f.template]});"
    "  Plotly.newPlot(el, structuredClone(f.data), layout, packed.config).then(() => {"
    "   if (el.dataset.drawn) { window.gpt2atlasFigures.drawn += 1; el.dataset.rendered = '1'; } },"
    "   err => failed(el, err));"
    " } catch (err) { failed(el, err); } };"
    "const observer = new IntersectionObserver(entries => { for (const e of entries) {"
    " if (e.isIntersecting) { near.add(e.target); draw(e.target); }"
    " else { near.delete(e.target); if (live.includes(e.target)) forget(e.target); } } },"
    " {rootMargin: '800px 0px'});"
    # every second, a figure near the screen that is not drawn (a failed attempt, a missed event) is tried again
    "const all = Array.from(document.querySelectorAll('div.gpt2atlas-figure'));"
    "setInterval(() => { for (const el of all) { if (el.dataset.drawn) continue;"
    " const box = el.getBoundingClientRect();"
    " if (box.bottom > -800 && box.top < innerHeight + 800) { near.add(el); draw(el); } } }, 1000);"
    "for (const el of document.querySelectorAll('div.gpt2atlas-figure')) observer.observe(el);"
    "document.documentElement.dataset.figures = 'ready';"
    "})();"
)


def _table(table: Table) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in table.header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in table.rows)
    return f"<table><caption>{escape(table.title)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _tooltip(p: float, alternatives: list[tuple[str, float]]) -> str:
    likeliest = "; ".join(f"{t!r} {num(q)}" for t, q in alternatives)
    return f"p = {num(p)}" + (f" · likeliest: {likeliest}" if likeliest else "")


def _sample(sample: Sample) -> str:
    alternatives = sample.alternatives or [[] for _ in sample.tokens]
    spans = "".join(
        f'<span class="tok" style="background: rgba(76, 120, 168, {0.08 + 0.6 * p:.2f})" '
        f'title="{escape(_tooltip(p, alts))}">{escape(token)}</span>'
        for token, p, alts in zip(sample.tokens, sample.probs, alternatives)
    )
    return f'<p class="sample"><span class="prompt">{escape(sample.prompt)}</span>{spans}</p>'


def _gzip_base64(text: str) -> str:
    return base64.b64encode(gzip.compress(text.encode(), compresslevel=9, mtime=0)).decode()


@lru_cache(maxsize=1)
def plotly_js_packed() -> str:
    """plotly.js gzipped and in base64: 2.0 MB in the page instead of 4.8 MB (the browser unpacks it natively)."""
    return _gzip_base64(get_plotlyjs())


GL_3D = ("scatter3d", "surface", "mesh3d", "cone", "streamtube", "volume", "isosurface")
GL_2D = ("scattergl", "splom")


def webgl_contexts(data: list[dict[str, Any]]) -> int:
    """How many WebGL contexts plotly opens for these traces: one per 3-D scene, two for any 2-D WebGL plot."""
    scenes = {trace.get("scene", "scene") for trace in data if trace.get("type") in GL_3D}
    return len(scenes) + (2 if any(trace.get("type") in GL_2D for trace in data) else 0)


def _narrower(spec: dict) -> dict:
    """A plotly typed array (`{"dtype", "bdata"}`) in float32 / int32 when it was float64 / int64 (half the bytes).

    float32 keeps ~7 significant digits, far beyond what a figure or its hover shows; integers are narrowed only
    when they fit.
    """
    dtype = spec["dtype"]
    if dtype not in ("f8", "i8"):
        return spec
    values = as_array(spec).ravel()
    if dtype == "f8":
        values = values.astype("<f4")
    elif values.size and (values.min() < np.iinfo(np.int32).min or values.max() > np.iinfo(np.int32).max):
        return spec
    else:
        values = values.astype("<i4")
    return {**spec, "dtype": values.dtype.str[1:], "bdata": base64.b64encode(values.tobytes()).decode()}


def _slim(value: Any) -> Any:
    if isinstance(value, dict):
        if "bdata" in value and "dtype" in value:
            return _narrower(value)
        return {k: _slim(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_slim(v) for v in value]
    return value


@dataclass
class FigurePack:
    """Every figure of a page, each once, with the plotly templates they share stored once."""

    figures: list[dict[str, Any]] = field(default_factory=list)
    templates: dict[str, Any] = field(default_factory=dict)

    def add(self, fig: go.Figure, div_id: str) -> tuple[str, list[str]]:
        """Keep `fig` for drawing into a <div id=div_id>; return that <div> (the page's width) and what was cut.

        Heat maps are pooled and huge scatters sampled to screen size (viz.screen): the page stays light.
        """
        fig, cuts = fit_to_screen(fig)
        height = fig.layout.height or 480  # after fitting: wrapped subplot titles may have made it taller
        spec = fig.update_layout(width=None, autosize=True).to_plotly_json()
        layout = dict(spec.get("layout", {}))
        template = layout.pop("template", {})
        key = hashlib.sha1(json.dumps(template, sort_keys=True, default=str).encode()).hexdigest()[:12]
        self.templates.setdefault(key, template)
        data = _slim(spec.get("data", []))
        gl = webgl_contexts(data)
        self.figures.append({"id": div_id, "data": data, "layout": _slim(layout), "template": key, "gl": gl})
        div = f'<div class="gpt2atlas-figure" id="{escape(div_id)}" style="height: {int(height)}px; width: 100%"></div>'
        return div, [cut.note for cut in cuts]

    def packed(self) -> str:
        """The figures as gzipped, base64 JSON (plotly's own encoder: numpy arrays stay compact typed arrays)."""
        payload = {"figures": self.figures, "templates": self.templates, "config": FIGURE_CONFIG}
        return _gzip_base64(to_json_plotly(payload))


def _part(section: Section, index: int, part: Part, pack: FigurePack) -> str:
    out = [f"<h3>{escape(part.title)}</h3>" if part.title else ""]
    if part.reading:
        out.append('<ul class="reading">' + "".join(f"<li>{escape(s)}</li>" for s in part.reading) + "</ul>")
    out += [f'<div class="atlas" data-block="{escape(b.name)}">{b.html}</div>' for b in part.blocks]  # escaped in viz
    if part.samples:
        out.append(
            '<p class="legend">Each new token is shaded by the probability the model gave it (hover for the number '
            "and the likeliest tokens at that step).</p>"
        )
        out += [_sample(s) for s in part.samples]
    out += [_table(t) for t in part.tables]
    for name, fig in part.figures.items():
        div, cuts = pack.add(fig, f"fig-{section.key}-{index}-{name}")
        caption = " ".join([part.captions[name], *(f"{cut}." for cut in cuts)])
        out.append(
            f'<figure class="plot" data-name="{escape(name)}">{div}<figcaption>{escape(caption)}</figcaption></figure>'
        )
    return "\n".join(out)


def _section(section: Section, pack: FigurePack) -> str:
    head = f'<section id="{escape(section.key)}" data-section="{escape(section.key)}"><h2>{escape(section.title)}</h2>'
    if section.skipped:
        return head + f'<p class="skipped">Section skipped: {escape(section.skipped)}</p></section>'
    body = "\n".join(_part(section, i, part, pack) for i, part in enumerate(section.parts))
    return head + body + "</section>"


def _toc(report: Report) -> str:
    items = []
    for s in report.sections:
        note = (
            ' <span class="muted">(skipped)</span>'
            if s.skipped
            else (f' <span class="muted">({s.figure_count} figures)</span>' if s.figure_count else "")
        )
        items.append(f'<li><a href="#{escape(s.key)}">{escape(s.title)}</a>{note}</li>')
    items.append('<li><a href="#provenance">Provenance</a></li>')
    return '<nav class="toc"><h2>Contents</h2><ol>' + "".join(items) + "</ol></nav>"


def _provenance(report: Report) -> str:
    p = report.provenance
    rows = [
        [k, v if isinstance(v, str) else json.dumps(v)]
        for k, v in p.items()
        if k not in ("packages", "config", "prompts")
    ]
    rows += [[f"prompt {i + 1}", prompt] for i, prompt in enumerate(p.get("prompts", []))]
    rows.append(["config", json.dumps(p.get("config", {}))])
    timing = [[s.title, f"{s.seconds:.1f} s", s.skipped or "ok"] for s in report.sections]
    packages = [[k, v] for k, v in p.get("packages", {}).items()]
    return (
        '<section id="provenance"><h2>Provenance</h2>'
        + _table(Table("Model, inputs and run", ["item", "value"], [[k, str(v)] for k, v in rows]))
        + _table(Table("Package versions", ["package", "version"], packages))
        + _table(Table("Time per section", ["section", "time", "status"], timing))
        + "</section>"
    )


def _findings_json(report: Report) -> str:
    """All findings as inert JSON (`<`, `>`, `&` escaped so no text can close the script element)."""
    text = json.dumps(report.findings_data(), default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_html(report: Report) -> str:
    """The whole report as one HTML document."""
    p = report.provenance
    subtitle = f"{p.get('model')} · {p.get('date')} · seed {p.get('seed')}"
    pack = FigurePack()
    sections = [_section(s, pack) for s in report.sections]  # fills `pack`
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(report.title)}</title><style>{STYLE}</style>",
            f'<script type="{PACKED_SCRIPT}" id="plotly-js">{plotly_js_packed()}</script>',
            "</head><body>",
            f'<header><h1>{escape(report.title)}</h1><p class="sub">{escape(subtitle)}</p></header>',
            "<main>",
            _toc(report),
            *sections,
            _provenance(report),
            "</main>",
            f'<script type="application/json" id="gpt2atlas-findings">{_findings_json(report)}</script>',
            f'<script type="{PACKED_SCRIPT}" id="gpt2atlas-figures">{pack.packed()}</script>',
            '<footer><p class="muted">Made with gpt2atlas.</p></footer>',
            f"<script>{PLOTLY_LOADER}</script>",
            "</body></html>",
        ]
    )
