"""Build the report: run every section (with a progress bar), then write HTML or Markdown atomically."""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path

from tqdm.auto import tqdm

import gpt2atlas.atomic as atomic
from gpt2atlas.analysis.base import DEFAULT_PROMPT, AreaUnavailable
from gpt2atlas.atlas.reader import AtlasReader, check_model
from gpt2atlas.errors import AtlasError, InputError, check_output, check_seed
from gpt2atlas.model.gpt2 import GPT2
from gpt2atlas.report.document import Report, Section
from gpt2atlas.report.html import render_html
from gpt2atlas.report.markdown import render_markdown, write_figures, write_findings
from gpt2atlas.report.provenance import provenance
from gpt2atlas.report.sections import (
    SECTION_KEYS,
    SECTIONS,
    ReportContext,
    SectionSpec,
)
from gpt2atlas.training.history import TrainingHistory

FORMATS = ("html", "md")


def run_section(spec: SectionSpec, ctx: ReportContext, warn: Callable[[str], None]) -> Section:
    """One section; a missing optional extra or a refused input becomes a skipped section with the reason, and an
    unexpected failure a skipped section marked `failed` (the page is still written, the command exits non-zero)."""
    start = time.perf_counter()
    section = Section(spec.key, spec.title)
    try:
        section.parts = spec.build(ctx)
    except AreaUnavailable as err:
        section.skipped = str(err)
    except AtlasError as err:
        section.skipped = f"the analysis refused the input: {err}"
    except Exception as err:  # one failing analysis must not cost the whole report
        section.skipped = f"the analysis failed: {type(err).__name__}: {err}"
        section.failed = True
        detail = (
            traceback.format_exc() if os.environ.get("GPT2ATLAS_DEBUG") else "set GPT2ATLAS_DEBUG=1 for the traceback"
        )
        warn(f"warning: section '{spec.key}' skipped: {type(err).__name__}: {err} ({detail})")
    section.seconds = time.perf_counter() - start
    return section


def collect_sections(
    ctx: ReportContext,
    keys: Iterable[str],
    *,
    progress: bool = True,
    warn: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr),
) -> list[Section]:
    specs = [spec for spec in SECTIONS if spec.key in set(keys)]
    sections = []
    with tqdm(specs, desc="report", unit="section", disable=not progress, file=sys.stderr) as bar:
        for spec in bar:
            bar.set_postfix_str(spec.key)
            sections.append(run_section(spec, ctx, warn))
    return sections


PROJECTIONS = ("pca", "tsne", "umap")


def check_options(
    prompts: list[str],
    fmt: str,
    skip: Iterable[str],
    max_texts: int,
    model: GPT2,
    projections: Iterable[str] = ("pca",),
) -> list[str]:
    """The prompts to analyse (the built-in one if none); InputError for anything the report cannot use."""
    projections = list(projections)
    unknown_projections = [p for p in projections if p not in PROJECTIONS]
    if unknown_projections:
        raise InputError(
            f"projections={','.join(projections)!r}: unknown projection '{unknown_projections[0]}': "
            f"use one or more of {', '.join(PROJECTIONS)}",
            arguments=("projections",),
        )
    if fmt not in FORMATS:
        raise InputError(f"fmt={fmt!r} is not a format: use html or md", arguments=("fmt",))
    unknown = sorted(set(skip) - set(SECTION_KEYS))
    if unknown:
        raise InputError(
            f"skip={unknown[0]!r} is not a section: sections are {', '.join(SECTION_KEYS)}", arguments=("skip",)
        )
    if max_texts < 1:
        raise InputError(f"max_texts={max_texts} must be at least 1", arguments=("max_texts",))
    prompts = list(prompts) or [DEFAULT_PROMPT]
    for prompt in prompts:
        if not prompt.strip():
            raise InputError("the prompt is empty: give at least one character of text")
        model.to_tokens(prompt)  # raises InputError for an empty or over-long prompt
    return prompts


def build_report(
    model: GPT2,
    out: str | Path,
    *,
    model_id: str | None = None,
    prompts: list[str] | None = None,
    texts: list[str] | None = None,
    texts_source: str | None = None,
    max_texts: int = 200,
    seed: int = 0,
    max_new_tokens: int = 40,
    num_samples: int = 2,
    fmt: str = "html",
    skip: Iterable[str] = (),
    quick: bool = False,
    projections: Iterable[str] = ("pca",),
    history: TrainingHistory | None = None,
    progress: bool = True,
    atlas: AtlasReader | None = None,
) -> tuple[Path, Report]:
    """Run every section on `model` and write the report to `out` (HTML, or Markdown + a PNG folder)."""
    skip = list(skip)
    projections = tuple(projections)
    prompts = check_options(list(prompts or []), fmt, skip, max_texts, model, projections)
    check_output(out, "out", folder=False)
    check_seed(seed)
    if atlas is not None:
        check_model(atlas, model.cfg)
    if fmt == "md":
        check_output(markdown_folder(Path(out)), "out", folder=True)
    ctx = ReportContext(
        model,
        prompts,
        seed=seed,
        texts=texts,
        max_texts=max_texts,
        max_new_tokens=max_new_tokens,
        num_samples=num_samples,
        quick=quick,
        projections=projections,
        history=history,
        progress=progress,
        atlas=atlas,
    )
    keys = [k for k in SECTION_KEYS if k not in skip]
    model_id = model_id or model.source
    info = provenance(
        model, model_id, prompts=prompts, seed=seed, texts=texts_source, max_texts=max_texts, device=str(model.device)
    )
    info.update(quick=quick, projections=list(projections))
    if atlas is not None:
        info["atlas"] = {"model": atlas.run.model, "tokens": atlas.run.tokens, "windows": atlas.run.windows}
    report = Report(f"gpt2atlas report: {model_id}", collect_sections(ctx, keys, progress=progress), info)
    out = Path(out)
    if fmt == "html":
        atomic.write_text(out, render_html(report))
    else:
        write_markdown(report, out)
    return out, report


def markdown_folder(path: Path) -> Path:
    """Where the PNG figures of `report.md` go: `report_files/`."""
    return path.with_name(f"{path.stem}_files")


def write_markdown(report: Report, path: Path) -> None:
    """Markdown + PNG folder: the folder is staged and swapped in, then the text is written atomically."""
    folder = markdown_folder(path)
    with atomic.replacing_folder(folder) as staging:
        write_figures(report, staging)
        write_findings(report, staging)
        text = render_markdown(report, folder.name)
    atomic.write_text(path, text)
