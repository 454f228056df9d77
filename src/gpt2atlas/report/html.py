"""The report as ONE self-contained HTML file: plotly.js embedded once, no network request at all.

All user text (prompts, tokens, readings, provenance) is escaped here; figures are plotly JSON, where plotly
already writes `<`, `>` and `/` as \\u escapes. A Content-Security-Policy forbids every network load.
"""

from __future__ import annotations

import base64
import gzip
import json
from functools import lru_cache
from html import escape

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from gpt2atlas.report.document import Part, Report, Sample, Section, Table
from gpt2atlas.viz.readings import num

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


# plotly.js travels gzipped (an inert script element); the loader unpacks it with the browser's own
# DecompressionStream, runs it, then draws every figure in page order. Figures wait in inert script elements.
PACKED_SCRIPT = "application/gzip-base64"
FIGURE_SCRIPT = "text/x-gpt2atlas-figure"
PLOTLY_LOADER = (
    "(async () => {"
    "const packed = Uint8Array.from(atob(document.getElementById('plotly-js').textContent), c => c.charCodeAt(0));"
    "const stream = new Blob([packed]).stream().pipeThrough(new DecompressionStream('gzip'));"
    "(0, eval)(await new Response(stream).text());"
    f"for (const figure of document.querySelectorAll('script[type=\"{FIGURE_SCRIPT}\"]')) (0, eval)(figure.textContent);"
    "})();"
)


def _table(table: Table) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in table.header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in table.rows)
    return f"<table><caption>{escape(table.title)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _sample(sample: Sample) -> str:
    spans = "".join(
        f'<span class="tok" style="background: rgba(76, 120, 168, {0.08 + 0.6 * p:.2f})" '
        f'title="p = {escape(num(p))}">{escape(token)}</span>'
        for token, p in zip(sample.tokens, sample.probs)
    )
    return f'<p class="sample"><span class="prompt">{escape(sample.prompt)}</span>{spans}</p>'


def figure_html(fig: go.Figure, div_id: str) -> str:
    """One figure as a <div> and its script, which runs once plotly.js is unpacked (see PLOTLY_LOADER)."""
    height = fig.layout.height or 480
    fig = go.Figure(fig).update_layout(width=None, autosize=True)  # the page's width, not the PNG's
    html = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        config=FIGURE_CONFIG,
        default_height=f"{height}px",
        default_width="100%",
    )
    scripts = html.count("<script>")
    if scripts != 1:
        raise RuntimeError(f"plotly wrote {scripts} script elements for one figure, expected 1")
    return html.replace("<script>", f'<script type="{FIGURE_SCRIPT}">')


@lru_cache(maxsize=1)
def plotly_js_packed() -> str:
    """plotly.js gzipped and in base64: 2.0 MB in the page instead of 4.8 MB (the browser unpacks it natively)."""
    return base64.b64encode(gzip.compress(get_plotlyjs().encode(), compresslevel=9, mtime=0)).decode()


def _part(section: Section, index: int, part: Part) -> str:
    out = [f"<h3>{escape(part.title)}</h3>" if part.title else ""]
    if part.reading:
        out.append('<ul class="reading">' + "".join(f"<li>{escape(s)}</li>" for s in part.reading) + "</ul>")
    out += [_table(t) for t in part.tables]
    if part.samples:
        out.append(
            '<p class="legend">Each new token is shaded by the probability the model gave it (hover for the number).</p>'
        )
        out += [_sample(s) for s in part.samples]
    for name, fig in part.figures.items():
        div_id = f"fig-{section.key}-{index}-{name}"
        out.append(
            f'<figure class="plot" data-name="{escape(name)}">{figure_html(fig, div_id)}'
            f"<figcaption>{escape(name.replace('_', ' '))}</figcaption></figure>"
        )
    return "\n".join(out)


def _section(section: Section) -> str:
    head = f'<section id="{escape(section.key)}" data-section="{escape(section.key)}"><h2>{escape(section.title)}</h2>'
    if section.skipped:
        return head + f'<p class="skipped">Section skipped: {escape(section.skipped)}</p></section>'
    body = "\n".join(_part(section, i, part) for i, part in enumerate(section.parts))
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
            *(_section(s) for s in report.sections),
            _provenance(report),
            "</main>",
            f'<script type="application/json" id="gpt2atlas-findings">{_findings_json(report)}</script>',
            '<footer><p class="muted">Made with gpt2atlas.</p></footer>',
            f"<script>{PLOTLY_LOADER}</script>",
            "</body></html>",
        ]
    )
