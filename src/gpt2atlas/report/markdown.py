"""The report as Markdown with its figures as PNG files in a folder beside it."""

from __future__ import annotations

import json
from pathlib import Path

import gpt2atlas.atomic as atomic
from gpt2atlas.report.document import Part, Report, Sample, Section, Table
from gpt2atlas.viz.export import write_pngs
from gpt2atlas.viz.labels import md_escape
from gpt2atlas.viz.readings import num


def _table(table: Table) -> str:
    lines = [
        f"**{md_escape(table.title)}**",
        "",
        "| " + " | ".join(md_escape(h) for h in table.header) + " |",
        "|" + "---|" * len(table.header),
    ]
    lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines)


def _sample(sample: Sample) -> str:
    text = "".join(sample.tokens)
    probs = ", ".join(f"{md_escape(repr(t))} {num(p, 2)}" for t, p in zip(sample.tokens, sample.probs))
    return f"> *{md_escape(sample.prompt)}* **{md_escape(text)}**\n>\n> per-token probabilities: {probs}"


def figure_file(section: Section, index: int, name: str) -> str:
    return f"{section.key}-{index}-{name}.png"


def _part(section: Section, index: int, part: Part, folder_name: str) -> str:
    out = [f"### {md_escape(part.title)}"] if part.title else []
    out += [f"- {md_escape(s)}" for s in part.reading]
    out += [b.markdown for b in part.blocks if b.markdown]  # escaped in viz
    out += [_table(t) for t in part.tables]
    out += [_sample(s) for s in part.samples]
    out += [
        f"![{md_escape(part.captions[name])}]({folder_name}/{figure_file(section, index, name)})\n\n"
        f"*{md_escape(part.captions[name])}*"
        for name in part.figures
    ]
    return "\n\n".join(out)


def render_markdown(report: Report, folder_name: str) -> str:
    """The Markdown text; figures are referenced as `<folder_name>/<section>-<part>-<figure>.png`."""
    p = report.provenance
    lines = [
        f"# {md_escape(report.title)}",
        "",
        f"{md_escape(str(p.get('model')))} · {md_escape(str(p.get('date')))} · seed {p.get('seed')}",
        "",
        "## Contents",
        "",
    ]
    for i, s in enumerate(report.sections, 1):
        lines.append(f"{i}. [{md_escape(s.title)}](#{s.key})" + (" (skipped)" if s.skipped else ""))
    lines.append(f"{len(report.sections) + 1}. [Provenance](#provenance)")
    for s in report.sections:
        lines += ["", f'<a id="{s.key}"></a>', "", f"## {md_escape(s.title)}", ""]
        if s.skipped:
            lines.append(f"*Section skipped: {md_escape(s.skipped)}*")
            continue
        lines.append("\n\n".join(_part(s, i, part, folder_name) for i, part in enumerate(s.parts)))
    rows = [[k, v if isinstance(v, str) else json.dumps(v)] for k, v in p.items()]
    lines += [
        "",
        '<a id="provenance"></a>',
        "",
        "## Provenance",
        "",
        _table(Table("Model, inputs and run", ["item", "value"], rows)),
        "",
    ]
    return "\n".join(lines)


def write_figures(report: Report, folder: Path) -> list[Path]:
    """Every figure of the report as PNG, in one batched kaleido session."""
    figures, paths = [], []
    for s in report.sections:
        for i, part in enumerate(s.parts):
            for name, fig in part.figures.items():
                figures.append(fig)
                paths.append(folder / figure_file(s, i, name))
    write_pngs(figures, paths, hint="use --format html")
    return paths


def write_findings(report: Report, folder: Path) -> Path:
    path = folder / "findings.json"
    return atomic.write_text(path, json.dumps(report.findings_data(), indent=1, default=str))
