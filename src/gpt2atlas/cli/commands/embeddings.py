"""`gpt2atlas embeddings` and `gpt2atlas weights`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from gpt2atlas.analysis.base import AnalysisResult
from gpt2atlas.cli.common import (
    DeviceOption,
    ModelOption,
    OutOption,
    PngOption,
    check_prompt,
    err_console,
    load,
)
from gpt2atlas.errors import InputError
from gpt2atlas.viz.export import save_result


def register(app: typer.Typer) -> None:
    app.command("embeddings")(embeddings)
    app.command("weights")(weights)


def _save(result: AnalysisResult, out: Path, png: bool) -> None:
    with err_console.status(f"writing {result.area} figures{' (HTML + PNG)' if png else ''} ..."):
        folder = save_result(result, out, png=png)
    Console(highlight=False, soft_wrap=True).print(f"{result.area}: findings and figures written to {folder}")


def _dim_pair(text: str) -> tuple[int, int]:
    try:
        a, b = (int(part) for part in text.split(":"))
    except ValueError:
        raise InputError(f"--dim-pair must look like 87:138, got '{text}'") from None
    return a, b


def embeddings(
    out: OutOption,
    model: ModelOption = "gpt2",
    prompt: Annotated[
        str | None,
        typer.Option(
            "--prompt", "-p", help="text whose tokens get nearest neighbours and labels (default: a few words)"
        ),
    ] = None,
    projections: Annotated[
        str, typer.Option(help="comma-separated projections of the token sample: pca, tsne, umap")
    ] = "pca,tsne,umap",
    sample_size: Annotated[int, typer.Option(help="tokens in the PCA and dimension-pair scatters")] = 2000,
    manifold_size: Annotated[int, typer.Option(help="tokens embedded by t-SNE and UMAP (the sample's first)")] = 1000,
    dim_pair: Annotated[
        list[str] | None,
        typer.Option("--dim-pair", help="two dims to scatter tokens and positions in, e.g. 87:138 (repeatable)"),
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of the token sample, t-SNE and UMAP")] = 0,
    png: PngOption = True,
    device: DeviceOption = "cpu",
) -> None:
    """Token and position embeddings: offset dims, norms, PCA, periodicity, smoothness, neighbours, projections."""
    from gpt2atlas.analysis.embeddings import analyze

    if prompt is not None:
        check_prompt(prompt)
    methods = tuple(m.strip() for m in projections.split(",") if m.strip())
    pairs = [_dim_pair(text) for text in dim_pair] if dim_pair else None
    gpt = load(model, device)
    result = analyze(
        gpt,
        prompt,
        sample_size=sample_size,
        manifold_size=manifold_size,
        projections=methods,
        dim_pairs=pairs,
        seed=seed,
    )
    _save(result, out, png)


def weights(
    out: OutOption,
    model: ModelOption = "gpt2",
    param: Annotated[
        str | None,
        typer.Option(
            "--param",
            help="weight to show, ours (blocks.0.attn.W_QKV) or Hugging Face's (h.0.attn.c_attn.weight); "
            "omit for only the model summary and 3D architecture",
        ),
    ] = None,
    rows: Annotated[str | None, typer.Option("--rows", help="row range a:b (default: all)")] = None,
    cols: Annotated[str | None, typer.Option("--cols", help="column range a:b (default: all)")] = None,
    png: PngOption = True,
    device: DeviceOption = "cpu",
) -> None:
    """A weight tensor (or a block of it) as a heat map with its histogram; the model summary and 3D view."""
    from gpt2atlas.analysis.weights import analyze

    gpt = load(model, device)
    _save(analyze(gpt, param, rows=rows, cols=cols), out, png)
