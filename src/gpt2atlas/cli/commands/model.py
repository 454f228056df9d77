"""`gpt2atlas generate` and `gpt2atlas info`."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from gpt2atlas.cli.common import (
    DeviceOption,
    DtypeOption,
    ModelOption,
    RevisionOption,
    check_prompt,
    err_console,
    load,
)


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
    app.command("info")(info)


def generate(
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="text to continue")],
    model: ModelOption = "gpt2",
    revision: RevisionOption = None,
    max_new_tokens: Annotated[int, typer.Option(help="tokens to add to each sample")] = 30,
    num_samples: Annotated[int, typer.Option(help="samples, generated as one batch")] = 1,
    temperature: Annotated[float, typer.Option(help="0 for greedy decoding")] = 1.0,
    top_k: Annotated[Optional[int], typer.Option(help="keep only the k most likely tokens")] = None,
    top_p: Annotated[Optional[float], typer.Option(help="nucleus sampling: keep this much probability mass")] = None,
    seed: Annotated[Optional[int], typer.Option(help="same seed, same samples")] = None,
    device: DeviceOption = "cpu",
    dtype: DtypeOption = "float32",
    as_json: Annotated[bool, typer.Option("--json", help="print the samples as JSON")] = False,
) -> None:
    """Continue a prompt with GPT-2 (KV cache; all samples in one batch)."""
    check_prompt(prompt)
    gpt = load(model, device, dtype, revision)
    result = gpt.generate(
        prompt,
        max_new_tokens,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        seed=seed,
        num_samples=num_samples,
        warn=lambda msg: err_console.print(f"[yellow]{msg}[/yellow]"),
    )
    if as_json:
        print(
            json.dumps(
                {
                    "prompt": prompt,
                    "seed": result.seed,
                    "samples": result.texts,
                    "tokens": result.new_tokens,
                    "token_probs": result.token_probs,
                },
                indent=2,
            )
        )
        return
    console = Console(highlight=False)
    for i, text in enumerate(result.texts):
        if num_samples > 1:
            console.rule(f"sample {i + 1}", style="dim")
        console.print(prompt + text, markup=False)


def info(
    model: ModelOption = "gpt2",
    revision: RevisionOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Print the model summary: config, every parameter tensor, counts per component and in total."""
    from gpt2atlas.analysis.base import to_jsonable
    from gpt2atlas.analysis.summary import summary

    data = summary(load(model, revision=revision))
    if as_json:
        print(json.dumps(to_jsonable(data), indent=2))
        return
    console = Console(highlight=False)
    console.print(f"[bold]{data.source}[/bold]")
    config = Table("setting", "value", title="config")
    for key, value in data.config.settings().items():
        config.add_row(key, str(value))
    console.print(config)
    tensors = Table("parameter", "shape", "count", title="parameters")
    for row in data.parameters:
        tensors.add_row(row.name, " x ".join(map(str, row.shape)), f"{row.count:,}")
    console.print(tensors)
    counts = Table("component", "parameters", title="parameter counts (unembedding tied to W_E, counted once)")
    for key, value in data.parameter_counts.items():
        counts.add_row(key, f"{value:,}")
    console.print(counts)
