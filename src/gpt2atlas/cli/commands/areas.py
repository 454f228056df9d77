"""One command per area (`gpt2atlas embeddings`, `attention`, ...), made from the area's spec: its prompt, its
knobs as options (defaults from the analysis's signature), the command-only options its `CommandPart` declares
(geometry's corpus), then the usual --out, --model, --png and --device. The analysis runs its own way
(analysis/kinds.py), as it does in the report and the dashboard.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any, Optional, cast

import typer
from rich.console import Console

from gpt2atlas.analysis.kinds import Inputs, PromptPair
from gpt2atlas.areas import AREAS
from gpt2atlas.areas.spec import AreaSpec, CommandOption, Knob
from gpt2atlas.cli.common import DeviceOption, ModelOption, OutOption, PngOption, check_prompt, err_console, load
from gpt2atlas.errors import check_output
from gpt2atlas.viz.export import save_result


def register(app: typer.Typer) -> None:
    """Add every area's command to `app`."""
    for spec in AREAS:
        app.command(spec.key)(area_command(spec))


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


def _prompt_parameter(spec: AreaSpec) -> list[inspect.Parameter]:
    part = spec.command
    if part.prompt == "none":
        return []
    required = part.prompt == "required"
    option = typer.Option("--prompt", "-p", help=part.prompt_help)
    kind: Any = Annotated[str if required else Optional[str], option]
    default = inspect.Parameter.empty if required else None
    prompt = inspect.Parameter("prompt", inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)
    if not isinstance(spec.kind, PromptPair):
        return [prompt]
    itself = " (default: a pair the analysis makes from the prompt)" if spec.kind.pairs_itself else ""
    corrupted_option = typer.Option(
        "--corrupted", help=f"the corrupted prompt, as many tokens as the clean one{itself}"
    )
    corrupted = Annotated[Optional[str], corrupted_option]
    return [prompt, inspect.Parameter("corrupted", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=corrupted)]


def _command_option(option: CommandOption) -> inspect.Parameter:
    annotation = cast(Any, Annotated)[option.kind, typer.Option(help=option.help)]
    return inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY, default=option.default, annotation=annotation)


def area_command(spec: AreaSpec) -> Callable[..., None]:
    """The command of one area, as a function whose signature Typer reads."""
    defaults = spec.defaults()
    part = spec.command
    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [
        *_prompt_parameter(spec),
        inspect.Parameter("out", keyword, default=part.out or inspect.Parameter.empty, annotation=OutOption),
        inspect.Parameter("model", keyword, default="gpt2", annotation=ModelOption),
        *(knob_parameter(knob, defaults[knob.name].default) for knob in spec.knobs),
        *(_command_option(option) for option in part.options),
        inspect.Parameter("png", keyword, default=True, annotation=PngOption),
        inspect.Parameter("device", keyword, default="cpu", annotation=DeviceOption),
    ]

    def command(**given: Any) -> None:
        check_output(given["out"], "out", folder=True)  # a bad --out answers at once, not after the analysis
        prompt = given.get("prompt")
        if prompt is not None:
            check_prompt(prompt)
        options = knob_options(spec.knobs, given)
        options.update({option.name: given[option.name] for option in part.options})
        gpt = load(given["model"], given["device"])
        if part.prepare is not None:
            with err_console.status(f"{part.preparing} ..."):
                options = part.prepare(gpt, prompt, options)
        corrupted = given.get("corrupted")
        if corrupted is not None:
            check_prompt(corrupted)
        result = spec.run(gpt, Inputs(prompt, corrupted), options)
        with err_console.status(f"writing {spec.key} figures{' (HTML + PNG)' if given['png'] else ''} ..."):
            folder = save_result(result, spec.figures(result), given["out"], png=given["png"])
        Console(highlight=False, soft_wrap=True).print(f"{spec.key}: findings and figures written to {folder}")
        if part.done is not None:
            part.done(result, folder)

    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    command.__name__ = spec.key
    command.__doc__ = part.help or spec.about
    return command


def flag_names() -> dict[str, str]:
    """Knobs whose command-line flag has another name than the argument (dim_pairs -> dim-pair)."""
    return {
        knob.name: knob.flag.removeprefix("--")
        for spec in AREAS
        for knob in spec.knobs
        if knob.flag != "--" + knob.name.replace("_", "-")
    }
