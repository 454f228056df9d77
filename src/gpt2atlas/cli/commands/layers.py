"""`gpt2atlas layernorm`, `residual`, `journey`, and `layers` (all six inside-the-layers analyses at once)."""

from __future__ import annotations

import importlib
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from tqdm import tqdm

from gpt2atlas.analysis.areas import LAYER_AREAS, area
from gpt2atlas.analysis.base import AnalysisResult
from gpt2atlas.analysis.residual import OUTLIER_THRESHOLD
from gpt2atlas.cli.common import DeviceOption, ModelOption, OutOption, PngOption, PromptOption, check_prompt, load
from gpt2atlas.errors import InputError
from gpt2atlas.viz.export import browser_session, save_result

IncludeFirstOption = Annotated[
    bool,
    typer.Option("--include-first/--exclude-first", help="let position 0 (massive activations) into the statistics"),
]


def register(app: typer.Typer) -> None:
    app.command("layernorm")(layernorm)
    app.command("residual")(residual)
    app.command("journey")(journey)
    app.command("layers")(layers)


def _save(result: AnalysisResult, out: Path, png: bool) -> Path:
    folder = save_result(result, out, png=png)
    Console(highlight=False, soft_wrap=True).print(f"{result.area}: findings and figures written to {folder}")
    return folder


def _projections(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [n for n in names if n not in ("pca", "umap")]
    if unknown:
        raise InputError(f"unknown projection '{unknown[0]}': use pca, umap or pca,umap")
    return names


def layernorm(
    prompt: PromptOption,
    out: OutOption,
    model: ModelOption = "gpt2",
    layer: Annotated[
        Optional[int],
        typer.Option(
            "--layer",
            "-l",
            help="block whose ln1 is drawn in 3D and whose MLP shows GELU (default: the middle one)",
        ),
    ] = None,
    include_first: IncludeFirstOption = False,
    seed: Annotated[int, typer.Option(help="seed of the 3D toy and the superposition toy")] = 0,
    png: PngOption = True,
    device: DeviceOption = "cpu",
) -> None:
    """LayerNorm geometry: centring, the sphere of radius sqrt(d), the gain and shift, for every LayerNorm."""
    from gpt2atlas.analysis.layernorm import analyze

    check_prompt(prompt)
    gpt = load(model, device)
    _save(analyze(gpt, prompt, layer=layer, include_first=include_first, seed=seed), out, png)


def residual(
    prompt: PromptOption,
    out: OutOption,
    model: ModelOption = "gpt2",
    include_first: IncludeFirstOption = False,
    threshold: Annotated[
        float, typer.Option(help="outlier dim: peak |activation| at least this many x the median")
    ] = OUTLIER_THRESHOLD,
    png: PngOption = True,
    device: DeviceOption = "cpu",
) -> None:
    """Residual stream: norm growth, what attention and MLPs add, outlier (massive) dims."""
    from gpt2atlas.analysis.residual import analyze

    check_prompt(prompt)
    if threshold <= 1:
        raise InputError(f"--threshold must be above 1, got {threshold:g}")
    gpt = load(model, device)
    _save(analyze(gpt, prompt, include_first=include_first, threshold=threshold), out, png)


def journey(
    prompt: PromptOption,
    out: OutOption,
    model: ModelOption = "gpt2",
    position: Annotated[
        Optional[int],
        typer.Option(
            "--position", help="token whose trajectory is drawn (default: the last; negative counts from the end)"
        ),
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k", help="guesses kept per layer and position")] = 5,
    include_first: IncludeFirstOption = False,
    projections: Annotated[str, typer.Option(help="trajectory maps: pca, umap or pca,umap")] = "pca,umap",
    seed: Annotated[int, typer.Option(help="seed of the UMAP token sample and layout")] = 0,
    png: PngOption = True,
    device: DeviceOption = "cpu",
) -> None:
    """The token's journey: logit lens (top-k, rank, KL per layer), stream cosines, a token's trajectory."""
    from gpt2atlas.analysis.journey import analyze

    check_prompt(prompt)
    maps = _projections(projections)
    gpt = load(model, device)
    _save(
        analyze(gpt, prompt, position=position, top_k=top_k, include_first=include_first, projections=maps, seed=seed),
        out,
        png,
    )


def layers(
    prompt: PromptOption,
    out: OutOption,
    model: ModelOption = "gpt2",
    png: PngOption = True,
    device: DeviceOption = "cpu",
) -> None:
    """Run every inside-the-layers analysis at once (attention, neurons, layernorm, residual, journey, saliency)."""
    check_prompt(prompt)
    modules = {key: importlib.import_module(area(key).module) for key in LAYER_AREAS}
    gpt = load(model, device)
    console = Console(highlight=False, soft_wrap=True)
    start = time.perf_counter()
    written = []
    with browser_session(png), tqdm(total=len(modules), unit="area", desc="layers") as bar:
        for key, module in modules.items():
            bar.set_postfix_str(key)
            began = time.perf_counter()
            folder = save_result(module.analyze(gpt, prompt), out, png=png)
            written.append((key, folder, time.perf_counter() - began))
            bar.update()
    for key, folder, seconds in written:
        console.print(f"{key:>10}: {folder}  ({seconds:.1f} s)")
    console.print(f"all {len(written)} areas written under {out} in {time.perf_counter() - start:.1f} s")
