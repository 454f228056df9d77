"""How an area runs, and the one runner per way that the report, the dashboard and the command line all use.

- `PerPrompt`: `analyze(model, prompt, **options)`, once per prompt;
- `WholeModel`: `analyze(model, **options)`, once per model;
- `PromptPair`: `analyze(model, clean, corrupted, **options)`, a clean prompt against a corrupted one (None
  where the analysis makes its own pair: its `corrupted` defaults to None);
- `OverCorpus`: `start(model, prompt, **options)` plans a pass over a corpus (a `CorpusJob`: collect per batch,
  merge, finish), which the shared corpus runner (analysis/corpus.py) makes.

`run(kind, model, inputs, options)` checks the options against the analysis's signature first: an option the
analysis does not take is an InputError naming it, never silently dropped.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Union

from gpt2atlas.analysis.base import AnalysisResult, ProgressCallback
from gpt2atlas.analysis.corpus import CorpusJob, Engine, local, run_corpus
from gpt2atlas.errors import InputError
from gpt2atlas.model.gpt2 import GPT2


@dataclass(frozen=True)
class PerPrompt:
    """Analysed once per prompt: `analyze(model, prompt, **options)` (prompt None where the area allows it)."""

    analyze: Callable[..., AnalysisResult]

    @property
    def entry(self) -> Callable[..., Any]:
        return self.analyze


@dataclass(frozen=True)
class WholeModel:
    """Analysed once per model: `analyze(model, **options)`."""

    analyze: Callable[..., AnalysisResult]

    @property
    def entry(self) -> Callable[..., Any]:
        return self.analyze


@dataclass(frozen=True)
class PromptPair:
    """A clean prompt against a corrupted one: `analyze(model, clean, corrupted, **options)`."""

    analyze: Callable[..., AnalysisResult]

    @property
    def entry(self) -> Callable[..., Any]:
        return self.analyze

    @property
    def pairs_itself(self) -> bool:
        """Whether the analysis makes a corrupted prompt of its own when given none (its third argument's default
        is None)."""
        third = list(inspect.signature(self.analyze).parameters.values())[2]
        return third.default is None


@dataclass(frozen=True)
class OverCorpus:
    """Over a corpus: `start(model, prompt, **options)` returns the `CorpusJob` the corpus runner makes."""

    start: Callable[..., CorpusJob[Any, Any]]

    @property
    def entry(self) -> Callable[..., Any]:
        return self.start


Kind = Union[PerPrompt, WholeModel, PromptPair, OverCorpus]


@dataclass(frozen=True)
class Inputs:
    """What an analysis reads besides the model and its options: a prompt, and for a pair the corrupted one."""

    prompt: str | None = None
    corrupted: str | None = None


def takes(fn: Callable[..., Any], name: str) -> bool:
    """Whether `fn` accepts the keyword argument `name`."""
    params = inspect.signature(fn).parameters
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


POSITIONAL = {"model", "prompt", "clean", "corrupted"}  # given by the runner, never as options


def options_taken(kind: Kind) -> tuple[str, ...]:
    """The options the kind's analysis takes (its keyword arguments after the model and prompts)."""
    params = inspect.signature(kind.entry).parameters
    return tuple(n for n, p in params.items() if n not in POSITIONAL and p.kind is not inspect.Parameter.VAR_KEYWORD)


def check_options(kind: Kind, options: Mapping[str, Any], area: str = "this") -> None:
    """InputError naming the first option that the analysis does not take."""
    taken = options_taken(kind)
    for name in options:
        if not takes(kind.entry, name) or name in POSITIONAL:
            raise InputError(
                f"unknown option {name!r} for the {area} analysis: it takes {', '.join(taken) or 'none'}",
                arguments=(name,),
            )


def run(
    kind: Kind,
    model: GPT2,
    inputs: Inputs = Inputs(),
    options: Mapping[str, Any] | None = None,
    *,
    area: str = "this",
    on_progress: ProgressCallback | None = None,
    engine: Engine = local,
) -> AnalysisResult:
    """Run an analysis its own way. `on_progress` goes to analyses that report progress (others need none);
    `engine` maps a corpus pass's collect step (the builtin loop by default)."""
    options = dict(options or {})
    check_options(kind, options, area)
    if on_progress is not None and takes(kind.entry, "on_progress"):
        options["on_progress"] = on_progress
    if isinstance(kind, PerPrompt):
        return kind.analyze(model, inputs.prompt, **options)
    if isinstance(kind, WholeModel):
        return kind.analyze(model, **options)
    if isinstance(kind, PromptPair):
        if inputs.prompt is None or (inputs.corrupted is None and not kind.pairs_itself):
            missing = "prompt" if inputs.prompt is None else "corrupted"
            raise InputError(
                f"{missing}=None: the {area} analysis compares two prompts; give a clean and a corrupted one",
                arguments=(missing,),
            )
        return kind.analyze(model, inputs.prompt, inputs.corrupted, **options)
    return run_corpus(model, kind.start(model, inputs.prompt, **options), engine=engine)
