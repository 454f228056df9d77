"""`gpt2atlas attention`, `gpt2atlas neurons` and `gpt2atlas saliency`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from gpt2atlas.analysis.base import AnalysisResult
from gpt2atlas.cli.common import DeviceOption, ModelOption, OutOption, PngOption, PromptOption, check_prompt, load
from gpt2atlas.viz.export import save_result

LayerOption = Annotated[Optional[int], typer.Option("--layer", "-l", help="layer to show (default: chosen by score)")]
HeadOption = Annotated[Optional[int], typer.Option("--head", help="head to show (default: top previous-token head)")]


def register(app: typer.Typer) -> None:
    app.command("attention")(attention)
    app.command("neurons")(neurons)
    app.command("saliency")(saliency)


def _save(result: AnalysisResult, out: Path, png: bool) -> None:
    folder = save_result(result, out, png=png)
    Console(highlight=False, soft_wrap=True).print(f"{result.area}: findings and figures written to {folder}")


def attention(
    prompt: PromptOption,
    out: OutOption,
    model: ModelOption = "gpt2",
    layer: LayerOption = None,
    head: HeadOption = None,
    prepend_bos: Annotated[bool, typer.Option("--prepend-bos", help="put <|endoftext|> before the prompt")] = False,
    seed: Annotated[int, typer.Option(help="seed of the random sequences for the induction scores")] = 0,
    png: PngOption = True,
    device: DeviceOption = "cpu",
) -> None:
    """Score every attention head (previous-token, BOS, entropy, self, induction, duplicate) and name roles."""
    from gpt2atlas.analysis.attention import analyze

    check_prompt(prompt)
    gpt = load(model, device)
    _save(analyze(gpt, prompt, layer=layer, head=head, prepend_bos=prepend_bos, seed=seed), out, png)


def neurons(
    prompt: PromptOption,
    out: OutOption,
    model: ModelOption = "gpt2",
    layer: LayerOption = None,
    neuron: Annotated[Optional[int], typer.Option("--neuron", "-n", help="neuron of --layer to explain")] = None,
    extra_prompt: Annotated[
        Optional[list[str]],
        typer.Option("--extra-prompt", help="more text to search for the neuron's top tokens (repeatable)"),
    ] = None,
    png: PngOption = True,
    device: DeviceOption = "cpu",
) -> None:
    """MLP neurons: share active per layer, top neurons per token, one neuron's keys and values."""
    from gpt2atlas.analysis.neurons import analyze

    check_prompt(prompt)
    extras = [check_prompt(text) for text in extra_prompt or []]
    gpt = load(model, device)
    _save(analyze(gpt, prompt, layer=layer, neuron=neuron, extra_prompts=extras), out, png)


def saliency(
    prompt: PromptOption,
    out: OutOption,
    model: ModelOption = "gpt2",
    target: Annotated[
        Optional[str],
        typer.Option(
            "--target", "-t", help="one token to explain, e.g. ' Paris' (default: the model's top next token)"
        ),
    ] = None,
    steps: Annotated[int, typer.Option(help="integrated-gradients quadrature points")] = 16,
    png: PngOption = True,
    device: DeviceOption = "cpu",
) -> None:
    """Which prompt tokens drive the target's logit: gradient x input and integrated gradients."""
    from gpt2atlas.analysis.saliency import analyze

    check_prompt(prompt)
    gpt = load(model, device)
    _save(analyze(gpt, prompt, target=target, steps=steps), out, png)
