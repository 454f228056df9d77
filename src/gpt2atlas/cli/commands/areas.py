"""One command per analysis area (`gpt2atlas embeddings`, `attention`, ...), made from the registry's declaration:
the area's prompt, its knobs as options (defaults from `analyze`'s signature), then the usual --out, --model,
--png and --device. An area whose command must do more (geometry reads a corpus) says what in `Extras`, from a
module of its own.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from gpt2atlas.analysis.areas import AREAS, Area, Knob
from gpt2atlas.analysis.base import AnalysisResult, AreaUnavailable, import_area
from gpt2atlas.cli.commands import geometry
from gpt2atlas.cli.common import DeviceOption, ModelOption, OutOption, PngOption, check_prompt, err_console, load
from gpt2atlas.model.gpt2 import GPT2
from gpt2atlas.viz.export import save_result


@dataclass(frozen=True)
class Extras:
    """What an area's command does beyond loading the model, calling `analyze` and saving the result."""

    options: tuple[inspect.Parameter, ...] = ()  # command-line-only options, handed to `run` with the knobs
    run: Callable[[GPT2, Optional[str], dict[str, Any]], AnalysisResult] | None = None  # instead of `analyze`
    done: Callable[[AnalysisResult, Path], None] | None = None  # after saving, with the folder written
    out: Path | None = None  # the default output folder (else --out is required)


EXTRAS = {"geometry": Extras(geometry.OPTIONS, geometry.run, geometry.done, Path("atlas-out"))}


def register(app: typer.Typer) -> None:
    """Add every area's command to `app`."""
    for declared in AREAS:
        try:
            analyze = import_area(declared.module).analyze
        except AreaUnavailable:
            continue  # an optional area not installed: no command
        app.command(declared.key)(area_command(declared, analyze, EXTRAS.get(declared.key, Extras())))


def knob_parameter(knob: Knob, default: Any) -> inspect.Parameter:
    """The command-line option of one knob."""
    option = typer.Option(*(knob.flags or (knob.flag,)), help=knob.help)
    if knob.repeated:
        kind: Any = Optional[list[str]]
        default = None
    elif knob.listed:
        kind, default = str, ",".join(default)
    else:
        kind = Optional[knob.kind] if default is None else knob.kind
    return inspect.Parameter(
        knob.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[kind, option]
    )


def knob_options(knobs: tuple[Knob, ...], given: dict[str, Any]) -> dict[str, Any]:
    """What the analysis gets for the knobs' command-line values (a repeatable option never given: its default)."""
    options = {}
    for knob in knobs:
        value = given[knob.name]
        if knob.listed:
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        elif knob.repeated:
            if not value:
                continue
            value = [knob.parse(v) if knob.parse else v for v in value]
        elif knob.parse and value is not None:
            value = knob.parse(value)
        options[knob.name] = value
    return options


def _prompt_parameter(declared: Area) -> list[inspect.Parameter]:
    if declared.prompt == "none":
        return []
    required = declared.prompt == "required"
    option = typer.Option("--prompt", "-p", help=declared.prompt_help)
    kind: Any = Annotated[str if required else Optional[str], option]
    default = inspect.Parameter.empty if required else None
    return [inspect.Parameter("prompt", inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)]


def area_command(declared: Area, analyze: Callable[..., AnalysisResult], extras: Extras) -> Callable[..., None]:
    """The command of one area, as a function whose signature Typer reads."""
    defaults = inspect.signature(analyze).parameters
    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [
        *_prompt_parameter(declared),
        inspect.Parameter("out", keyword, default=extras.out or inspect.Parameter.empty, annotation=OutOption),
        inspect.Parameter("model", keyword, default="gpt2", annotation=ModelOption),
        *(knob_parameter(knob, defaults[knob.name].default) for knob in declared.knobs),
        *extras.options,
        inspect.Parameter("png", keyword, default=True, annotation=PngOption),
        inspect.Parameter("device", keyword, default="cpu", annotation=DeviceOption),
    ]

    def command(**given: Any) -> None:
        prompt = given.get("prompt")
        if prompt is not None:
            check_prompt(prompt)
        options = knob_options(declared.knobs, given)
        options.update({p.name: given[p.name] for p in extras.options})
        gpt = load(given["model"], given["device"])
        if extras.run is not None:
            result = extras.run(gpt, prompt, options)
        elif declared.prompt == "none":
            result = analyze(gpt, **options)
        else:
            result = analyze(gpt, prompt, **options)
        with err_console.status(f"writing {declared.key} figures{' (HTML + PNG)' if given['png'] else ''} ..."):
            folder = save_result(result, given["out"], png=given["png"])
        Console(highlight=False, soft_wrap=True).print(f"{declared.key}: findings and figures written to {folder}")
        if extras.done is not None:
            extras.done(result, folder)

    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    command.__name__ = declared.key
    command.__doc__ = declared.command or declared.about
    return command


def flag_names() -> dict[str, str]:
    """Knobs whose command-line flag has another name than the argument (dim_pairs -> dim-pair)."""
    return {
        knob.name: knob.flag.removeprefix("--")
        for declared in AREAS
        for knob in declared.knobs
        if knob.flag != "--" + knob.name.replace("_", "-")
    }
