"""Geometry and intrinsic dimension, over a corpus; its command reads the corpus from a file, a folder, a dataset
or the default one, and prints where the intrinsic dimension peaks."""

import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

from gpt2atlas.analysis.base import AnalysisResult
from gpt2atlas.analysis.kinds import OverCorpus
from gpt2atlas.areas.spec import AreaSpec, CommandOption, CommandPart, DashboardPart, Knob, ReportContext, ReportPart
from gpt2atlas.errors import InputError
from gpt2atlas.geometry import analysis as geometry
from gpt2atlas.geometry.corpus import default_corpus, texts_from_dataset, texts_from_path
from gpt2atlas.model.gpt2 import GPT2
from gpt2atlas.viz import geometry as figures
from gpt2atlas.viz.readings import read_geometry


def report_options(ctx: ReportContext) -> dict[str, Any]:
    options: dict[str, Any] = {
        "max_texts": ctx.max_texts,
        "seed": ctx.seed,
        "progress": ctx.progress,
        "all_tokens_budget": ctx.all_tokens_budget,
    }
    if ctx.texts is not None:
        options["texts"] = ctx.texts[: ctx.max_texts]
    if ctx.quick:
        options.update(all_tokens_budget=1000, gride_max_rank=16)
    return options


def read_corpus(model: GPT2, prompt: str | None, options: dict[str, Any]) -> dict[str, Any]:
    """Check the settings, then read the corpus the command names (its seconds count in the findings' timing)."""
    texts, dataset = options.pop("texts"), options.pop("dataset")
    if texts is not None and dataset is not None:
        raise InputError(
            f"texts={texts} and dataset={dataset} were both given: give one of them", arguments=("texts", "dataset")
        )
    geometry.check_settings(
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
    if texts is not None:
        corpus = texts_from_path(texts, max_texts, seed)
    elif dataset is not None:
        corpus = texts_from_dataset(dataset, max_texts, seed)
    else:
        corpus = default_corpus(max_texts, seed)
    print(f"{len(corpus.texts)} texts from {corpus.info.name}", file=sys.stderr)
    return {**options, "corpus": replace(corpus, read_s=time.perf_counter() - started)}


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


SPEC = AreaSpec(
    "geometry",
    "Geometry and intrinsic dimension",
    "Geometry",
    "intrinsic dimension layer by layer",
    OverCorpus(geometry.start),
    figures.FIGURES,
    read_geometry,
    knobs=(
        Knob("max_texts", "at most this many texts (a seeded sample if there are more)"),
        Knob("max_tokens", "truncate each text to this many tokens"),
        Knob(
            "all_tokens_budget", "points in the all-tokens cloud (a uniform sample of all tokens)", flags=("--budget",)
        ),
        Knob("substeps", "also measure inside each block (ln1, attn_out, resid_mid, mlp_out)", bool, ("--substeps",)),
        Knob(
            "layer",
            "layer for the distance matrices and t-SNE, 0 to n_layer (default: the hidden layer where the "
            "last-token ID peaks)",
        ),
        Knob("include_first", "keep position 0 in the all-tokens cloud", bool, ("--include-first",)),
        Knob("seed", "seed for every random choice (sampling, bootstrap, t-SNE)"),
    ),
    report=ReportPart(report_options),
    dashboard=DashboardPart(
        (("max_texts", 100),),
        note="measuring the intrinsic dimension of every layer on 100 texts (about a minute on GPT-2 small) ...",
    ),
    command=CommandPart(
        "Intrinsic dimension (TwoNN, GRIDE, PCA, participation ratio), norm and anisotropy of the hidden "
        "representations at every layer, for the last token of each text and for all tokens.",
        prompt="optional",
        prompt_help="text for the Gram-volume profile (default: the first text)",
        options=(
            CommandOption("texts", Optional[Path], "a file with one text per line, or a folder of .txt files"),
            CommandOption("dataset", Optional[str], "a `datasets` dataset, NAME or NAME:CONFIG (needs network)"),
        ),
        prepare=read_corpus,
        preparing="reading texts",
        done=done,
        out=Path("atlas-out"),
    ),
    slow=True,
)
