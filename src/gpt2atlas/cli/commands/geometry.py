"""What `gpt2atlas geometry` does beyond its area's plain command: it reads a corpus (a file, a folder, a dataset
or the default one) and prints where the intrinsic dimension peaks."""

from __future__ import annotations

import inspect
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from gpt2atlas.analysis.base import AnalysisResult
from gpt2atlas.cli.common import err_console
from gpt2atlas.errors import InputError
from gpt2atlas.model.gpt2 import GPT2

_KEYWORD = inspect.Parameter.KEYWORD_ONLY
OPTIONS = (
    inspect.Parameter(
        "texts",
        _KEYWORD,
        default=None,
        annotation=Annotated[
            Optional[Path], typer.Option(help="a file with one text per line, or a folder of .txt files")
        ],
    ),
    inspect.Parameter(
        "dataset",
        _KEYWORD,
        default=None,
        annotation=Annotated[
            Optional[str], typer.Option(help="a `datasets` dataset, NAME or NAME:CONFIG (needs network)")
        ],
    ),
)


def run(model: GPT2, prompt: str | None, options: dict[str, Any]) -> AnalysisResult:
    """Check the settings, read the corpus (timed: its seconds count in the findings' timing), then analyse."""
    from gpt2atlas.geometry.analysis import analyze, check_settings
    from gpt2atlas.geometry.corpus import default_corpus, texts_from_dataset, texts_from_path

    texts, dataset = options.pop("texts"), options.pop("dataset")
    if texts is not None and dataset is not None:
        raise InputError("give either --texts or --dataset, not both")
    check_settings(
        model,
        layer=options["layer"],
        max_tokens=options["max_tokens"],
        all_tokens_budget=options["all_tokens_budget"],
        prompt=prompt,
        include_first=options["include_first"],
        seed=options["seed"],
    )
    started = time.perf_counter()
    max_texts, seed = options["max_texts"], options["seed"]
    with err_console.status("reading texts ..."):
        if texts is not None:
            corpus = texts_from_path(texts, max_texts, seed)
        elif dataset is not None:
            corpus = texts_from_dataset(dataset, max_texts, seed)
        else:
            corpus = default_corpus(max_texts, seed)
    reading_s = time.perf_counter() - started
    err_console.print(f"{len(corpus.texts)} texts from {corpus.info.name}")
    result = analyze(model, prompt, corpus=corpus, **options)
    timing = replace(
        result.findings.timing,
        corpus_s=round(reading_s, 2),
        total_s=round(result.findings.timing.total_s + reading_s, 2),
    )
    result.findings = replace(result.findings, timing=timing)
    return result


def done(result: AnalysisResult, folder: Path) -> None:
    """Where the last-token ID starts, peaks and ends, and how long it all took."""
    findings = result.findings
    summary = findings.summary["last_token"]
    print(
        f"last-token TwoNN ID: {summary.first_twonn_id:.1f} at the embedding, peak {summary.peak_twonn_id:.1f} "
        f"at layer {summary.peak_layer}, {summary.last_twonn_id:.1f} at the last layer; "
        f"took {findings.timing.total_s:.0f} s"
    )
    print(f"wrote {folder}/findings.json and {len(list(folder.glob('*.html')))} figures")
