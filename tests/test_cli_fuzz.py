"""Every command, every option, values drawn at random: the answer is always exit 0, a one-line `error:` (exit 1)
or the usage (exit 2), never the "unexpected" path nor a traceback, and a failed command leaves its output
location as it found it.

The commands and their options are read from the command line itself (the click tree Typer builds, the area
commands made from the registry included), so an option is fuzzed the day it is added. Each value is drawn by
the option's declared type. Options that are not being fuzzed in an example take a cheap value when the option
is one of the known cost knobs (`CHEAP`), so that an example costs a fraction of a second; an option not listed
there keeps its default.

The default budget (profile `ci`) keeps the whole file under ~3 minutes on 2 cores and is derandomized, so CI
sees the same examples every time; `HYPOTHESIS_PROFILE=long` draws many more, at random. With
`GPT2ATLAS_FUZZ_COUNT=<file>` set, each invocation appends a line to that file: the command, the exit status (or
`slow`) and the arguments, so that a long run's count is read, not guessed.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from gpt2atlas.cli.commands import report as report_command
from gpt2atlas.cli.main import app, main
from gpt2atlas.shipped import shipped_atlas

CLI = typer.main.get_command(app)
COMMANDS = sorted(CLI.commands)  # type: ignore[attr-defined]

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
EXAMPLES = {"ci": 8, "long": 150}.get(PROFILE, 8)
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=PROFILE != "long",
    database=None,
    suppress_health_check=list(HealthCheck),
)
COUNT_FILE = os.environ.get("GPT2ATLAS_FUZZ_COUNT")
SECONDS_PER_EXAMPLE = 60  # a command that runs longer on `mini` with cheap settings is hung (a defect too)
EXTRA_MEMORY = 6 << 30  # address space an example may add: a request that needs more must be refused, not tried

PROMPT = "The cat sat on the mat."
# Values of the cost knobs while another option is fuzzed (by option name; anything else keeps its default).
CHEAP: dict[str, Any] = {
    "model": "mini",
    "png": False,
    "prompt": PROMPT,
    "max_new_tokens": "2",
    "num_samples": "1",
    "max_texts": "8",
    "max_tokens": "8",
    "all_tokens_budget": "200",
    "sample_size": "50",
    "manifold_size": "50",
    "projections": "pca",
    "steps": "2",
    "quick": True,
    "preset": "tiny",
    "max_steps": "1",
    "batch_tokens": "64",
    "micro_batch": "1",
    "eval_tokens": "64",
    "eval_every": "1",
    "ablation_tokens": "64",  # causes --data: 16384 tokens by default, a minute on mini
    "folder": str(shipped_atlas("mini").parent),  # atlas-export's FOLDER: the atlas shipped with mini
}

# --png needs Chromium and seconds per figure: tests/test_browser.py covers it; here it stays off.
NOT_FUZZED = {"png"}

# Integers, floats and strings a user could type. A NUL byte is left out: no shell can put one in argv.
INTEGERS = st.one_of(
    st.sampled_from([0, -1, 1, 2, 3, 7, 2**31, 2**63, -(2**63), 10**30]),
    st.integers(-5, 300),
    st.integers(),
)
FLOATS = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "-0.0", "0", "-1", "1e308", "1e-320", "0.5", "1", "2"]),
    st.floats().map(repr),
)
STRINGS = st.one_of(
    st.sampled_from(["", " ", "\t\n", "\x1b[31m", "\r", "é", "日本語", "\U0001f600", "\udcff", "-", "--", "a" * 5000]),
    st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=40),
    st.text(st.characters(min_codepoint=1, max_codepoint=31), min_size=1, max_size=5),
)


@dataclass(frozen=True)
class Option:
    """One option of a command, as the command line declares it."""

    name: str
    flag: str
    off_flag: str | None  # --no-x of a --x/--no-x pair
    kind: Any  # the Python annotation
    is_flag: bool
    multiple: bool
    required: bool
    words: tuple[str, ...]  # plausible values: the default and the words of the help text
    positional: bool = False  # an argument (atlas-export's FOLDER), not an option


def options_of(command: str) -> list[Option]:
    found = []
    for param in CLI.commands[command].params:  # type: ignore[attr-defined]
        positional = param.param_type_name == "argument"
        if not positional and (not param.opts or not param.opts[0].startswith("--")):
            continue
        help_text = getattr(param, "help", None) or ""
        default = param.default
        words = tuple(dict.fromkeys(re.findall(r"[\w:.-]+", help_text) + ([str(default)] if default else [])))
        found.append(
            Option(
                name=param.name,
                flag=param.opts[0],
                off_flag=param.secondary_opts[0] if param.secondary_opts else None,
                kind=param.type_descriptor.annotation,
                is_flag=bool(getattr(param, "is_flag", False)),
                multiple=bool(param.multiple),
                required=bool(param.required),
                words=words,
                positional=positional,
            )
        )
    return found


@dataclass(frozen=True)
class Places:
    """Paths of every kind a user could pass: missing, a folder, a file, under a file, unwritable, odd names."""

    root: Path
    out: Path
    folder: Path
    text_file: Path
    empty_file: Path

    def all(self) -> list[str]:
        return [
            str(self.out / "fresh"),
            str(self.out),
            str(self.root / "missing" / "deeper" / "x"),
            str(self.folder),
            str(self.text_file),
            str(self.empty_file),
            str(self.text_file / "under-a-file"),
            str(self.text_file / "under" / "a-file.html"),
            "/proc/gpt2atlas-fuzz/x",
            str(self.out / ("n" * 300)),
            str(self.out / "a name with spaces, é and 日本"),
            str(self.out / "report.md"),
            "",
            ".",
        ]


def make_places(root: Path) -> Places:
    places = Places(root, root / "out", root / "a-folder", root / "texts.txt", root / "empty.txt")
    places.out.mkdir()
    places.folder.mkdir()
    (places.folder / "one.txt").write_text("A folder of texts.\n")
    places.text_file.write_text("\n".join(f"Line {i} of a small text file for training." for i in range(40)) + "\n")
    places.empty_file.write_text("")
    return places


def value(option: Option, places: Places) -> st.SearchStrategy[str]:
    """Values of one option by its declared type, with now and then a plausible word or a value of another type."""
    kind = option.kind
    if kind is int:
        typed: st.SearchStrategy[str] = INTEGERS.map(str)
    elif kind is float:
        typed = FLOATS
    elif kind is Path:
        typed = st.sampled_from(places.all())
    else:
        typed = STRINGS
    others = [st.sampled_from(option.words)] if option.words else []
    return st.one_of(typed, *others, st.sampled_from(places.all()), STRINGS)


@st.composite
def argv(draw: st.DrawFn, command: str, places: Places) -> list[str]:
    """A command line: one to three options fuzzed, the others cheap, required ones always given; arguments
    come last, after `--`, so that a value drawn for one reaches the command even when it starts with `-`."""
    options = options_of(command)
    drawable = [o.name for o in options if o.name not in NOT_FUZZED]
    fuzzed = set(draw(st.lists(st.sampled_from(drawable), min_size=1, max_size=3, unique=True)))
    args, positionals = [command], []
    for option in options:
        if option.positional:
            positionals.append(draw(value(option, places)) if option.name in fuzzed else str(CHEAP[option.name]))
            continue
        if option.is_flag:
            on = draw(st.booleans()) if option.name in fuzzed else CHEAP.get(option.name)
            if on is True:
                args.append(option.flag)
            elif on is False and option.off_flag:
                args.append(option.off_flag)
            continue
        if option.name in fuzzed:
            count = draw(st.integers(1, 3)) if option.multiple else 1
            for _ in range(count):
                args += [option.flag, draw(value(option, places))]
        elif option.name in CHEAP:
            args += [option.flag, str(CHEAP[option.name])]
        elif option.name == "out" or option.required:
            args += [option.flag, str(places.out / draw(st.sampled_from(["a", "b", "report.html"])))]
        elif option.name == "data":
            args += [option.flag, str(places.text_file)]
    return args + ["--", *positionals] if positionals else args


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under `root`, with the size and modification time of each file (a folder's own time changes
    when a check creates and removes a probe in it: that changes nothing)."""
    seen = {}
    for folder, subfolders, files in os.walk(root):
        seen.update({os.path.join(folder, name): (0, 0) for name in subfolders})
        for name in files:
            info = os.lstat(os.path.join(folder, name))
            seen[os.path.join(folder, name)] = (info.st_size, info.st_mtime_ns)
    return seen


def count(command: str, outcome: int | str, args: list[str]) -> None:
    """One line per invocation in COUNT_FILE, when it is set (arguments as `ascii` writes them: one line each)."""
    if COUNT_FILE:
        with open(COUNT_FILE, "a", encoding="ascii") as lines:
            lines.write(f"{command}\t{outcome}\t{ascii(args)}\n")


class Hung(BaseException):
    """An example ran past SECONDS_PER_EXAMPLE (a BaseException, so that main's catch-all does not hide it)."""


@pytest.fixture
def bounded() -> Iterator[None]:
    """Each example may take SECONDS_PER_EXAMPLE seconds and EXTRA_MEMORY more address space, then fails."""

    def hung(signum: int, frame: Any) -> None:
        raise Hung(f"the command ran longer than {SECONDS_PER_EXAMPLE} s")

    previous = signal.signal(signal.SIGALRM, hung)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as statm:
        current = int(statm.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (current + EXTRA_MEMORY, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@dataclass(frozen=True)
class Answer:
    code: int
    out: str
    err: str


def run_bounded(args: list[str], capsys: pytest.CaptureFixture[str]) -> Answer:
    capsys.readouterr()
    signal.alarm(SECONDS_PER_EXAMPLE)
    try:
        code = main(args)
    finally:
        signal.alarm(0)
    captured = capsys.readouterr()
    return Answer(code, captured.out, captured.err)


def check_answer(args: list[str], answer: Answer, before: dict, after: dict) -> None:
    said = f"{args!r} -> exit {answer.code}\nstderr: {answer.err[-2000:]}"
    assert answer.code in (0, 1, 2), said
    assert "Traceback" not in answer.err, said  # stdout may be generated text: mini writes "Traceback" (Python docs)
    assert "unexpected" not in answer.err, said
    if answer.code == 1:  # a progress bar may end in a carriage return, not a newline
        assert re.search(r"(^|\r)error: \S", answer.err, re.MULTILINE), said
    if answer.code == 2:
        assert "Usage:" in answer.err, said
    if answer.code != 0:
        changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
        assert not changed, f"{said}\na failed command changed {sorted(changed)[:5]}"


def fake_server(command: list[str], env: dict[str, str]) -> tuple[int, bool]:
    """`app` is run up to the point where it would start Streamlit: its argument checks, not the server."""
    return 0, False


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_of_every_command_gets_a_clear_answer(command, tmp_path, monkeypatch, capsys, bounded):
    places = make_places(tmp_path)
    monkeypatch.chdir(places.out)  # relative and empty paths land in the output location too
    monkeypatch.setattr(report_command, "run_forwarding_signals", fake_server)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a hub id drawn at random must not reach the network
    runs, slow = [], []

    @FUZZ_SETTINGS
    @given(args=argv(command, places))
    def one(args: list[str]) -> None:
        before = snapshot(tmp_path)
        try:
            answer = run_bounded(args, capsys)
        except Hung:  # a valid request that takes long (a million training steps): not a wrong answer
            count(command, "slow", args)
            slow.append(args)
            reject()
        count(command, answer.code, args)
        check_answer(args, answer, before, snapshot(tmp_path))
        runs.append(answer.code)

    one()
    exits = {code: runs.count(code) for code in sorted(set(runs))}
    print(f"{command}: {len(runs)} invocations, exits {exits}, {len(slow)} stopped as slow", file=sys.__stderr__)
    assert runs


def test_fuzzing_reads_the_options_from_the_command_line():
    """An option added to a command is fuzzed without touching this file: the options come from click's tree."""
    names = {o.name for o in options_of("generate")}
    assert {"prompt", "max_new_tokens", "temperature", "top_k", "top_p", "seed"} <= names
    assert {o.kind for o in options_of("geometry")} >= {int, str, bool, Path}
    assert "geometry" in COMMANDS and "embeddings" in COMMANDS  # area commands, made from the registry
    assert [o.name for o in options_of("atlas-export") if o.positional] == ["folder"]  # arguments too


# What the fuzzing found, kept as plain tests: each went to "error: unexpected ..." (or was accepted) before.
FOUND = [
    (
        ["attention", "-p", PROMPT, "-o", "{file}/under-a-file"],
        "--out {file}/under-a-file is inside {file}, which is a file",
    ),
    (["neurons", "-p", PROMPT, "-o", "{file}/under/a-file.html"], "is inside {file}, which is a file, not a folder"),
    (["attention", "-p", PROMPT, "-o", "{file}"], "--out {file} is a file, not a folder"),
    (["weights", "-o", "{out}/" + "n" * 300], "has a name of 300 bytes"),
    (["report", "--quick", "-o", "{file}/r.html"], "--out {file}/r.html is inside {file}, which is a file"),
    (["report", "--quick", "-o", "{out}"], "--out {out} is a folder, not a file"),
    (["weights", "-o", "/proc/gpt2atlas-fuzz/x"], "--out /proc/gpt2atlas-fuzz/x cannot be written"),
    (["weights", "-o", "{out}/w", "--model", "a" * 5000], "unknown model 'aaaa"),
    (["residual", "-p", PROMPT, "-o", "{out}/r", "--model", "{out}/" + "n" * 300], "no such file or folder"),
    (["geometry", "-o", "{out}/g", "--seed", "-387"], "--seed -387 must be a whole number in [0, 2**32)"),
    (["journey", "-p", PROMPT, "-o", "{out}/j", "--seed", str(2**32)], "--seed 4294967296 must be a whole number"),
    (["attention", "-p", PROMPT, "-o", "{out}/a", "--seed", str(10**30)], "--seed 1000000000000000000000000000000"),
    (["generate", "-p", PROMPT, "--seed", "-1"], "--seed -1 must be a whole number in [0, 2**32)"),
    (["generate", "-p", PROMPT, "--temperature", "nan"], "--temperature nan must be a finite number >= 0"),
    (["generate", "-p", PROMPT, "--max-new-tokens", "0"], "--max-new-tokens 0 must be at least 1"),
    (["saliency", "-p", PROMPT, "-o", "{out}/s", "--steps", "676536"], "--steps 676536 must be between 1 and 1000"),
    (["train", "-o", "{out}/t", "--lr", "nan"], "--lr nan must be a finite number > 0"),
    (["train", "-o", "{out}/t", "--lr", "inf"], "--lr inf must be a finite number > 0"),
    (["train", "-o", "{out}/t", "--weight-decay", "-1"], "--weight-decay -1.0 must be a finite number >= 0"),
    (["train", "-o", "{out}/t", "--warmup-steps", "-1"], "--warmup-steps -1 must be a whole number >= 0"),
    (["train", "-o", "{out}/t", "--val-fraction", "nan"], "--val-fraction nan must be a number in [0, 1)"),
    (["report", "--quick", "-o", "{out}/r.html", "--format", "pdf"], "--format 'pdf' is not a format"),
    # found by the long profile: torch refused -1 ("unexpected RuntimeError"), and 100000 made libgomp abort the
    # process; the time limit and the step to stop at, read beside it, took nan and negatives without a word
    (["train", "-o", "{out}/t", "--threads", "-1"], "--threads -1 must be a whole number in [1, "),
    (["train", "-o", "{out}/t", "--threads", "100000"], "--threads 100000 must be a whole number in [1, "),
    (["train", "-o", "{out}/t", "--time-limit", "nan"], "--time-limit nan must be a number of minutes >= 0"),
    (["train", "-o", "{out}/t", "--time-limit", "-1"], "--time-limit -1.0 must be a number of minutes >= 0"),
    (["train", "-o", "{out}/t", "--stop-at-step", "-3"], "--stop-at-step -3 must be a whole number >= 0"),
    # found by the long profile: one slash made it a hub id, which the hub library refused with its own error
    (["info", "--model", "0/"], "model '0/' is neither a local path nor a hub id"),
    (["info", "--model", "a\nb/c"], "model 'a\\nb/c' is neither a local path nor a hub id"),
    # found by the long profile once atlas-export got its FOLDER: a blank path read "error:  : no atlas there"
    (["atlas-export", "-o", "{out}/e", "--", " "], "error: no atlas at ' ' (no such folder or file): give an atlas"),
    (["report", "--quick", "-o", "{out}/r.html", "--atlas", " "], "error: no atlas at ' ' (no such folder or file)"),
    # found by the long profile: the scan's state was allocated for 2**31 examples per neuron ("MemoryError")
    (["atlas", "-o", "{out}/a", "--data", "{file}", "--top-k", "2147483648"], "--top-k 2147483648 must be between 1"),
    # found by the long profile (causes --data "a" * 5000), then by hand for every path a user names: Path.is_file()
    # and friends raise "File name too long" (errno 36) where os.path's return False
    (["causes", "-p", PROMPT, "-o", "{out}/c", "--data", "a" * 5000], "--data aaaa"),
    (["atlas-export", "-o", "{out}/e", "--", "{out}/" + "n" * 300], "error: no atlas at '{out}/nnnn"),
    (["geometry", "-o", "{out}/g", "--texts", "{out}/" + "n" * 300], "--texts {out}/nnnn"),
    (["report", "--quick", "-o", "{out}/r.html", "--texts", "{out}/" + "n" * 300], "--texts {out}/nnnn"),
    (["dynamics", "-o", "{out}/d", "--run", "{out}/" + "n" * 300], "--run {out}/nnnn"),
    (["train", "-o", "{out}/" + "n" * 300, "--data", "{file}"], "has a name of 300 bytes"),
    (["train", "--resume", "{out}/" + "n" * 300], "--resume {out}/nnnn"),
    (["atlas", "--resume", "{out}/" + "n" * 300], "--resume {out}/nnnn"),
]


@pytest.mark.parametrize("args, message", FOUND, ids=[" ".join(a[:1] + a[-2:-1]) for a, _ in FOUND])
def test_what_the_fuzzing_found(args, message, tmp_path, monkeypatch, capsys):
    places = make_places(tmp_path)
    monkeypatch.chdir(places.out)
    fill = {"file": str(places.text_file), "out": str(places.out)}
    args = [a.format(**fill) if "{" in a else a for a in args]
    names = {o.name for o in options_of(args[0])}
    cheap = (["--model", "mini"] if "model" in names and "--model" not in args else []) + (
        ["--no-png"] if "png" in names else []
    )
    args = [args[0], *cheap, *args[1:]]  # before any `--` and the arguments after it
    before = snapshot(tmp_path)
    code = main(args)
    err = capsys.readouterr().err
    check_answer(args, Answer(code, "", err), before, snapshot(tmp_path))
    assert code == 1 and message.format(**fill) in err, err


# Found by the long profile: a byte that is not UTF-8 (here 0xff) reaches argv as the lone surrogate '\udcff'; echoed
# on a strict stdout or stderr, it went to "error: unexpected UnicodeEncodeError". Exit 0 for `app` (the server is
# not started here), 1 with the device named for the bad device.
UNDECODABLE = [(["app", "--model", "\udcff"], 0, ""), (["app", "--model", "mini", "--device", "\udcff"], 1, "device")]


@pytest.mark.parametrize("args, code, message", UNDECODABLE, ids=["app-model", "app-device"])
def test_an_undecodable_byte_in_an_argument_is_printed_escaped(args, code, message, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(report_command, "run_forwarding_signals", fake_server)
    before = snapshot(tmp_path)
    answer = Answer(main(args), *capsys.readouterr())
    check_answer(args, answer, before, snapshot(tmp_path))
    assert answer.code == code and "\\udcff" in answer.out + answer.err and message in answer.err
