"""`gpt2atlas layers`: every inside-the-layers area at once (each also has its own command), from their specs."""

from __future__ import annotations

import time

import typer
from rich.console import Console
from tqdm import tqdm

from gpt2atlas.analysis.kinds import Inputs
from gpt2atlas.areas import LAYER_AREAS
from gpt2atlas.cli.common import DeviceOption, ModelOption, OutOption, PngOption, PromptOption, check_prompt, load
from gpt2atlas.viz.export import browser_session, save_result


def register(app: typer.Typer) -> None:
    app.command("layers")(layers)


def layers(
    prompt: PromptOption,
    out: OutOption,
    model: ModelOption = "gpt2",
    png: PngOption = True,
    device: DeviceOption = "cpu",
) -> None:
    """Run every inside-the-layers analysis at once (attention, neurons, layernorm, residual, journey, saliency)."""
    check_prompt(prompt)
    gpt = load(model, device)
    console = Console(highlight=False, soft_wrap=True)
    start = time.perf_counter()
    written = []
    with browser_session(png), tqdm(total=len(LAYER_AREAS), unit="area", desc="layers") as bar:
        for spec in LAYER_AREAS:
            bar.set_postfix_str(spec.key)
            began = time.perf_counter()
            result = spec.run(gpt, Inputs(prompt))
            folder = save_result(result, spec.figures(result), out, png=png)
            written.append((spec.key, folder, time.perf_counter() - began))
            bar.update()
    for key, folder, seconds in written:
        console.print(f"{key:>10}: {folder}  ({seconds:.1f} s)")
    console.print(f"all {len(written)} areas written under {out} in {time.perf_counter() - start:.1f} s")
