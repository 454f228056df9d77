"""What an area declares, once, in its own module (areas/<key>.py): the `AreaSpec`.

It holds, by reference: how the analysis runs (its kind, from analysis/kinds.py), its figures (the drawer with
every figure name and caption, viz), its reading (viz/readings), the report's options and tables, the dashboard's
options, pickers and custom view, and the command's extras. The report, the dashboard, the command line and
`gpt2atlas layers` take all of it from the spec; none keeps a table of its own keyed by the area's name.

The areas package sits between viz and report/app (see tests/test_import_direction.py): a spec can refer to
analyses and drawers, and the report and the dashboard import the specs. What the dashboard lends a custom view
(its cache, its charts) comes in as a `Page`, so the view is declared here without importing the app.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import plotly.graph_objects as go

from gpt2atlas.analysis.base import AnalysisResult, ProgressCallback
from gpt2atlas.analysis.kinds import Inputs, Kind, PerPrompt, run
from gpt2atlas.atlas.reader import AtlasReader
from gpt2atlas.errors import InputError
from gpt2atlas.model.gpt2 import GPT2
from gpt2atlas.training.history import TrainingHistory
from gpt2atlas.viz.figures import Figures
from gpt2atlas.viz.tables import Table

T = TypeVar("T")


@dataclass(frozen=True)
class Knob:
    """One option of an area's analysis: `analyze`'s keyword `name`, as the command line offers it."""

    name: str
    help: str
    kind: type = int  # int, float, str or bool; a None default in `analyze` makes it optional
    flags: tuple[str, ...] = ()  # the command line's flags (default: --name-with-dashes)
    listed: bool = False  # comma-separated on the command line, a tuple for the analysis
    repeated: bool = False  # given once per value on the command line, a list for the analysis
    parse: Callable[[str], Any] | None = None  # each value from its text (raises InputError naming `name`)

    @property
    def flag(self) -> str:
        """The long flag, e.g. --sample-size (for a --x/--no-x pair, the first)."""
        return self.flags[0].split("/")[0] if self.flags else "--" + self.name.replace("_", "-")


def dim_pair(text: str) -> tuple[int, int]:
    """'87:138' as (87, 138)."""
    try:
        a, b = (int(part) for part in text.split(":"))
    except ValueError:
        raise InputError(f"dim_pairs={text!r} must look like 87:138", arguments=("dim_pairs",)) from None
    return a, b


LAYER_OF_PICTURE = "layer to show (default: chosen by score)"
INCLUDE_FIRST = Knob(
    "include_first",
    "let position 0 (massive activations) into the statistics",
    bool,
    ("--include-first/--exclude-first",),
)


@dataclass
class ReportContext:
    """What every report section needs: the model, the prompts, the texts for geometry, and the knobs."""

    model: GPT2
    prompts: list[str]
    seed: int = 0
    texts: list[str] | None = None  # None: the geometry analysis's default corpus
    max_texts: int = 200
    max_new_tokens: int = 40
    num_samples: int = 2
    temperature: float = 1.0
    top_k: int | None = 40
    quick: bool = False  # smaller samples and probes: a rough report in seconds
    projections: tuple[str, ...] = ("pca",)  # token-embedding projections; "tsne" and "umap" take minutes
    all_tokens_budget: int = 3000  # points in geometry's all-tokens cloud (its default is 10,000: slower)
    history: TrainingHistory | None = None  # the model's training history, for "How it learned"
    progress: bool = True  # the analyses' own progress bars (embeddings, geometry)
    atlas: AtlasReader | None = None  # a corpus atlas of this model: what the prompt's units do across a corpus


@dataclass(frozen=True)
class ReportPart:
    """What the report passes to the analysis (from its context), the tables it adds, the figures it keeps."""

    options: Callable[[ReportContext], dict[str, Any]] = lambda ctx: {}
    tables: Callable[[Any], list[Table]] = lambda findings: []  # from the typed findings
    shown: int | None = None  # how many figures the report keeps (default: as many as `figures.first` names)
    pair: Callable[[ReportContext], Inputs] | None = None  # a PromptPair area's clean and corrupted prompts
    atlas: Callable[[Any], list[tuple[int, int]]] | None = None  # the neurons (layer, index) the findings point
    # to, shown with what the report's atlas says about them (when it has one)


class Page(Protocol):
    """What the dashboard lends a view: the model and prompt, its shared cache, and its ways to show things."""

    @property
    def model(self) -> GPT2: ...

    @property
    def model_id(self) -> str: ...

    @property
    def prompt(self) -> str: ...

    def cached(self, key: tuple, compute: Callable[[], T], spinner: str = "") -> T:
        """`compute()` once per model and `key` (shared by every session)."""
        ...

    def analysis(self, spec: AreaSpec, options: tuple = ()) -> AnalysisResult:
        """The area's analysis on this model (and prompt, if it reads one), cached."""
        ...

    def chart(self, fig: go.Figure, key: str, width: str = "stretch") -> None: ...

    def reading(self, sentences: list[str]) -> None: ...

    def figure_picker(
        self, figures: Mapping[str, go.Figure], captions: Figures, key: str, preferred: tuple[str, ...] = ()
    ) -> None: ...


View = Callable[[Page], None]


@dataclass(frozen=True)
class DashboardPart:
    """The dashboard's view of the area: a custom `view`, else the generic one with these options and pickers."""

    options: tuple = ()  # (name, value) pairs always passed
    pickers: Callable[..., tuple] | None = None  # widgets that add options: (model, prompt) -> pairs
    note: str = ""  # what a long run is doing, shown while it runs
    view: View | None = None  # a view of its own instead of the generic one
    after: tuple[tuple[str, View], ...] = ()  # more views shown right after this one, by their names


@dataclass(frozen=True)
class CommandOption:
    """An option only the command line has (e.g. where to read a corpus), turned into analysis inputs by
    `CommandPart.prepare`."""

    name: str
    kind: Any
    help: str
    default: Any = None


@dataclass(frozen=True)
class CommandPart:
    """What the area's command (`gpt2atlas <key>`) does beyond loading the model, running and saving."""

    help: str = ""  # the command's help (default: the area's `about`)
    prompt: str = "required"  # --prompt: "required", "optional" (then `prompt_help` says why) or "none"
    prompt_help: str = "the text to analyse"
    options: tuple[CommandOption, ...] = ()
    prepare: Callable[[GPT2, str | None, dict[str, Any]], dict[str, Any]] | None = None  # options -> analysis's
    preparing: str = "preparing"  # shown while `prepare` runs
    done: Callable[[AnalysisResult, Path], None] | None = None  # after saving, with the folder written
    out: Path | None = None  # the default output folder (else --out is required)


@dataclass(frozen=True)
class AreaSpec:
    """One area: every consumer takes what it needs from here."""

    key: str  # the findings' area name, the report section's id and the command's name
    title: str  # the report section's title
    label: str  # the dashboard view's name
    about: str  # what it shows, in a line
    kind: Kind  # how the analysis runs
    figures: Figures
    reading: Callable[[Any], list[str]]  # sentences from the typed findings
    knobs: tuple[Knob, ...] = ()  # the options a user may set (defaults: the analysis's own signature)
    report: ReportPart = field(default_factory=ReportPart)
    dashboard: DashboardPart = field(default_factory=DashboardPart)
    command: CommandPart = field(default_factory=CommandPart)
    inside_layers: bool = False  # one of the areas `gpt2atlas layers` runs together
    slow: bool = False  # the dashboard runs it only when asked

    @property
    def per_prompt(self) -> bool:
        return isinstance(self.kind, PerPrompt)

    @property
    def report_figures(self) -> int:
        return self.report.shown if self.report.shown is not None else len(self.figures.first)

    def defaults(self) -> Mapping[str, inspect.Parameter]:
        """The analysis's parameters (their defaults are the knobs' defaults)."""
        return inspect.signature(self.kind.entry).parameters

    def run(
        self,
        model: GPT2,
        inputs: Inputs = Inputs(),
        options: Mapping[str, Any] | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> AnalysisResult:
        """The analysis, run its own way (an option it does not take is an InputError naming it)."""
        return run(self.kind, model, inputs, options, area=self.key, on_progress=on_progress)

    def read(self, findings: Any) -> list[str]:
        """The reading of the findings (an exception in it is a bug and propagates)."""
        return self.reading(findings)
