"""`gpt2atlas geometry`: intrinsic dimension of the hidden representations, layer by layer."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from gpt2atlas.cli.common import DeviceOption, ModelOption, OutOption, PngOption, err_console, load
from gpt2atlas.errors import InputError
from gpt2atlas.geometry.analysis import DEFAULTS
from gpt2atlas.viz.export import save_result


def register(app: typer.Typer) -> None:
    app.command("geometry")(geometry)


def geometry(
    model: ModelOption = "gpt2",
    texts: Annotated[
        Optional[Path], typer.Option(help="a file with one text per line, or a folder of .txt files")
    ] = None,
    dataset: Annotated[
        Optional[str], typer.Option(help="a `datasets` dataset, NAME or NAME:CONFIG (needs network)")
    ] = None,
    max_texts: Annotated[
        int, typer.Option(help="at most this many texts (a seeded sample if there are more)")
    ] = DEFAULTS["max_texts"],
    max_tokens: Annotated[int, typer.Option(help="truncate each text to this many tokens")] = DEFAULTS["max_tokens"],
    budget: Annotated[
        int, typer.Option(help="points in the all-tokens cloud (a uniform sample of all tokens)")
    ] = DEFAULTS["all_tokens_budget"],
    substeps: Annotated[
        bool, typer.Option("--substeps", help="also measure inside each block (ln1, attn_out, resid_mid, mlp_out)")
    ] = False,
    layer: Annotated[
        Optional[int],
        typer.Option(
            help="layer for the distance matrices and t-SNE, 0 to n_layer (default: the hidden layer where the "
            "last-token ID peaks)"
        ),
    ] = None,
    prompt: Annotated[
        Optional[str], typer.Option("--prompt", "-p", help="text for the Gram-volume profile (default: the first text)")
    ] = None,
    include_first: Annotated[
        bool, typer.Option("--include-first", help="keep position 0 in the all-tokens cloud")
    ] = False,
    seed: Annotated[int, typer.Option(help="seed for every random choice (sampling, bootstrap, t-SNE)")] = 0,
    out: OutOption = Path("atlas-out"),
    png: PngOption = True,
    device: DeviceOption = "cpu",
) -> None:
    """Intrinsic dimension (TwoNN, GRIDE, PCA, participation ratio), norm and anisotropy of the hidden
    representations at every layer, for the last token of each text and for all tokens."""
    from gpt2atlas.geometry.analysis import analyze, check_settings
    from gpt2atlas.geometry.corpus import default_corpus, texts_from_dataset, texts_from_path

    if texts is not None and dataset is not None:
        raise InputError("give either --texts or --dataset, not both")
    if prompt is not None and not prompt.strip():
        raise InputError("the prompt is empty: give at least one character of text")
    gpt = load(model, device)
    check_settings(
        gpt, layer=layer, max_tokens=max_tokens, all_tokens_budget=budget, prompt=prompt, include_first=include_first
    )
    started = time.perf_counter()
    with err_console.status("reading texts ..."):
        if texts is not None:
            corpus = texts_from_path(texts, max_texts, seed)
        elif dataset is not None:
            corpus = texts_from_dataset(dataset, max_texts, seed)
        else:
            corpus = default_corpus(max_texts, seed)
    reading_s = time.perf_counter() - started
    err_console.print(f"{len(corpus.texts)} texts from {corpus.info['name']}")
    result = analyze(
        gpt,
        prompt,
        corpus=corpus,
        max_texts=max_texts,
        max_tokens=max_tokens,
        all_tokens_budget=budget,
        substeps=substeps,
        layer=layer,
        include_first=include_first,
        seed=seed,
    )
    timing = result.findings["timing"]
    timing["corpus_s"], timing["total_s"] = round(reading_s, 2), round(timing["total_s"] + reading_s, 2)
    with err_console.status("writing figures ..."):
        folder = save_result(result, out, png=png)
    summary = result.findings["summary"]["last_token"]
    print(
        f"last-token TwoNN ID: {summary['first_twonn_id']:.1f} at the embedding, peak {summary['peak_twonn_id']:.1f} "
        f"at layer {summary['peak_layer']}, {summary['last_twonn_id']:.1f} at the last layer; "
        f"took {result.findings['timing']['total_s']:.0f} s"
    )
    print(f"wrote {folder}/findings.json and {len(list(folder.glob('*.html')))} figures")
