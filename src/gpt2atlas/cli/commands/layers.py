"""`gpt2atlas layers`: all six inside-the-layers analyses at once (each also has its own command)."""

from __future__ import annotations

import importlib
import time

import typer
from rich.console import Console
from tqdm import tqdm

from gpt2atlas.analysis.areas import LAYER_AREAS, area
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
