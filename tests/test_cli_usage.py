"""The command line behaves like one: --help works everywhere, and a usage error shows the usage and exits 2."""

from __future__ import annotations

import pytest

from gpt2atlas.cli.main import app, main

COMMANDS = sorted(command.name or command.callback.__name__ for command in app.registered_commands)


def test_every_command_is_registered():
    assert {"train", "report", "info", "generate", "layers", "geometry", "embeddings", "app"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_every_command(command, capsys):
    assert main([command, "--help"]) == 0
    assert f"Usage: gpt2atlas {command}" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unknown_option_prints_the_usage_and_exits_2(command, capsys):
    assert main([command, "--no-such-option"]) == 2
    err = capsys.readouterr().err
    assert f"Usage: gpt2atlas {command}" in err and "No such option: --no-such-option" in err
    assert "unexpected" not in err and "Traceback" not in err


def test_a_bad_value_prints_the_usage_and_exits_2(capsys):
    assert main(["train", "--out", "x", "--max-steps", "many"]) == 2
    err = capsys.readouterr().err
    assert "Usage: gpt2atlas train" in err and "Invalid value for '--max-steps'" in err
