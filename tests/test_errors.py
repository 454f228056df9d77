"""Errors speak the caller's language: Python APIs name arguments (layer=12), the command line its flags."""

from __future__ import annotations

import copy
import pickle
import re

import pytest

from conftest import random_model
from gpt2atlas.analysis import attention
from gpt2atlas.areas import AREAS
from gpt2atlas.areas.causes import CLEAN, CORRUPTED
from gpt2atlas.cli.commands import areas as area_commands
from gpt2atlas.cli.main import main
from gpt2atlas.errors import InputError, as_flags
from test_loading_and_cli import assert_one_line_error, run_cli


def test_python_apis_name_their_arguments():
    with pytest.raises(InputError) as caught:
        attention.analyze(random_model(), "A short prompt.", layer=12)
    assert str(caught.value).startswith("layer=12 is out of range: this model has 2 layers (0..1)")
    assert caught.value.arguments == ("layer",) and "--" not in str(caught.value)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_an_input_error_keeps_its_arguments_when_pickled(protocol):
    error = InputError("layer=12 is out of range; head=3 too", arguments=("layer", "head"))
    error.add_note("raised in a worker")
    again = pickle.loads(pickle.dumps(error, protocol))
    assert type(again) is InputError and isinstance(again, ValueError)
    assert (str(again), again.args, again.arguments) == (str(error), error.args, ("layer", "head"))
    assert again.__notes__ == ["raised in a worker"]
    assert as_flags(again) == "--layer 12 is out of range; --head 3 too"
    for copied in (copy.copy(error), copy.deepcopy(error)):
        assert (str(copied), copied.arguments) == (str(error), error.arguments)
    rebuild, args, _ = error.__reduce__()  # a serializer that replays only the call still gets the arguments
    assert rebuild(*args).arguments == ("layer", "head")


def test_the_command_line_says_its_flags(tiny_checkpoint, tmp_path):
    done = run_cli(
        "attention",
        "--model",
        str(tiny_checkpoint),
        "-p",
        "A short prompt.",
        "--layer",
        "12",
        "--out",
        str(tmp_path),
        "--no-png",
    )
    assert_one_line_error(done, "--layer 12 is out of range: this model has 2 layers (0..1)")
    missing = run_cli("train", "--resume", str(tmp_path / "nothing"))
    assert_one_line_error(missing, f"--resume {tmp_path / 'nothing'}: not a gpt2atlas training run")


def test_as_flags_rewrites_only_the_named_arguments():
    error = InputError(
        "all_tokens_budget=0 must be at least 1; val_fraction=0.2 stays", arguments=("all_tokens_budget",)
    )
    assert as_flags(error, {"all_tokens_budget": "budget"}) == "--budget 0 must be at least 1; val_fraction=0.2 stays"
    both = InputError("rows= and cols= select a block: give param= too", arguments=("rows", "cols", "param"))
    assert as_flags(both) == "--rows and --cols select a block: give --param too"


@pytest.mark.parametrize("spec", AREAS, ids=[spec.key for spec in AREAS])
def test_an_area_command_refuses_a_bad_out_before_any_work(spec, tmp_path, monkeypatch, capsys):
    """A file given as --out is refused before the model is loaded or the analysis runs (it used to run first)."""

    def no_work(*args, **kwargs):
        raise AssertionError("the model was loaded before --out was checked")

    monkeypatch.setattr(area_commands, "load", no_work)
    a_file = tmp_path / "a-file"
    a_file.write_text("kept")
    prompt = [] if spec.command.prompt == "none" else ["-p", "A short prompt."]
    code = main([spec.key, *prompt, "--out", str(a_file), "--model", "mini", "--no-png"])
    err = capsys.readouterr().err
    assert code == 1 and f"--out {a_file} is a file, not a folder" in err, err
    assert a_file.read_text() == "kept"


# Bad values a user could type, one per argument: the `error:` line names the flag, the value and what is allowed.
BAD_INPUTS = [
    (["train"], "neither --out nor --resume was given: give --out DIR for a new run, or --resume DIR"),
    (["train", "-o", "{tmp}/a", "--resume", "{tmp}/b"], "--out {tmp}/a and --resume {tmp}/b were both given"),
    (["train", "-o", "{tmp}/run", "--data", "{empty}", "--preset", "tiny"], "--data {empty} is a folder with no text"),
    (["dynamics", "--run", "{tmp}/none", "-o", "{tmp}"], "--run {tmp}/none is not a gpt2atlas training run: give"),
    (["report", "--texts", "{tmp}/none", "-o", "{tmp}/r.html"], "--texts {tmp}/none: no such file or folder; give"),
    (["report", "--run", "{tmp}", "--model", "mini", "-o", "{tmp}/r.html"], "--model mini and --run {tmp} were both"),
    (["weights", "--param", "nonsense", "-o", "{tmp}"], "--param 'nonsense' is not a parameter of this model (e.g."),
    (["weights", "--param", "embed.W_E", "--rows", "7", "-o", "{tmp}"], "--rows '7' must look like a:b"),
    (["weights", "--param", "embed.W_E", "--cols", "5:5", "-o", "{tmp}"], "--cols 5:5 must be a non-empty range a:b"),
    (["geometry", "--texts", "{empty}", "-o", "{tmp}"], "--texts {empty} is a folder with no .txt files: give a file"),
    (["attention", "-p", "Hi there", "--device", "tpu", "-o", "{tmp}"], "--device 'tpu' is not a device: use cpu"),
    (["embeddings", "--sample-size", "5", "-o", "{tmp}"], "--sample-size 5 must be at least 10"),
    (["embeddings", "--dim-pair", "0:9999", "-o", "{tmp}"], "--dim-pair 0:9999: dimension 9999 is outside 0..127"),
    (["saliency", "-p", "Hi there", "--target", " Paris is", "-o", "{tmp}"], "--target ' Paris is' is 2 tokens"),
]


@pytest.mark.parametrize("args, message", BAD_INPUTS, ids=[" ".join(a[:2]) for a, _ in BAD_INPUTS])
def test_each_bad_value_is_named_with_its_flag(args, message, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    fill = {"tmp": str(tmp_path), "empty": str(empty)}
    args = [a.format(**fill) for a in args]
    if args[0] not in ("train", "dynamics", "report"):
        args += ["--model", "mini", "--no-png"]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 1 and re.search(r"(^|\r)error: \S", err, re.MULTILINE), err  # a progress bar may come first
    assert message.format(**fill) in err, err


# ----- an error arriving while a progress bar is drawn ---------------------------------------------------------------
def screen(stream: str) -> list[str]:
    """What a terminal shows of `stream`: a carriage return goes back to the line's start, and what follows
    overwrites the characters already there (a bar is erased only by writing over it)."""
    shown = []
    for line in stream.split("\n"):
        row = ""
        for part in line.split("\r"):
            row = part + row[len(part) :]
        shown.append(row.rstrip())
    return [row for row in shown if row]


def _refuse(*args, **kwargs):
    raise InputError("step=2 was refused half-way (planted)", arguments=("step",))


@pytest.mark.parametrize(
    "module, name, command",
    [
        ("gpt2atlas.analysis.embeddings", "_neighbour_findings", ["embeddings", "--model", "{tiny}"]),
        ("gpt2atlas.geometry.analysis", "measure_cloud", ["geometry", "--model", "{tiny}", "--texts", "{texts}"]),
        ("gpt2atlas.analysis.dynamics", "measure_checkpoint", ["dynamics", "--model", "mini"]),
        ("gpt2atlas.analysis.causes.ablation", "run_from", ["causes", "--model", "mini", "--prompt", CLEAN,
            "--corrupted", CORRUPTED, "--sites", "head_out", "--data", "{texts}", "--ablation-tokens", "256"]),
    ],
)  # fmt: skip
def test_an_error_half_way_through_a_progress_bar_is_printed_on_its_own_line(
    module, name, command, tiny_checkpoint, tmp_path, monkeypatch, capsys
):
    import importlib

    monkeypatch.setattr(importlib.import_module(module), name, _refuse)
    monkeypatch.setenv("GPT2ATLAS_CACHE", str(tmp_path / "cache"))  # --data's tokens
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(f"text number {i} is one line of a small corpus to measure" for i in range(40)))
    given = [a.format(tiny=tiny_checkpoint, texts=texts) for a in command]
    assert main([*given, "--out", str(tmp_path / "out"), "--no-png"]) == 1
    err = capsys.readouterr().err
    assert "\r" in err, err  # a bar was drawn, and was half-way when the error came
    assert screen(err)[-1] == "error: --step 2 was refused half-way (planted)", repr(err)
