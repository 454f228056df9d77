"""Errors speak the caller's language: Python APIs name arguments (layer=12), the command line its flags."""

from __future__ import annotations

import pytest

from conftest import random_model
from gpt2atlas.analysis import attention
from gpt2atlas.areas import AREAS
from gpt2atlas.cli.commands import areas as area_commands
from gpt2atlas.cli.main import main
from gpt2atlas.errors import InputError, as_flags
from test_loading_and_cli import assert_one_line_error, run_cli


def test_python_apis_name_their_arguments():
    with pytest.raises(InputError) as caught:
        attention.analyze(random_model(), "A short prompt.", layer=12)
    assert str(caught.value).startswith("layer=12 is out of range: this model has 2 layers (0..1)")
    assert caught.value.arguments == ("layer",) and "--" not in str(caught.value)


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
