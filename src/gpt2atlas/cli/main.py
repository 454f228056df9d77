"""Entry point: builds the Typer app from the command modules and turns user errors into one line."""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys

import click
import typer

from gpt2atlas.cli.commands.areas import flag_names
from gpt2atlas.cli.stopping import EXIT_CODE, stop_on_signals, stopped_line
from gpt2atlas.errors import AtlasError, InputError, as_flags

app = typer.Typer(
    name="gpt2atlas",
    help="Open up GPT-2 and see how it works inside.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register_commands() -> None:
    from gpt2atlas.cli import commands

    for module in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        register = getattr(importlib.import_module(f"{commands.__name__}.{module.name}"), "register", None)
        if register is not None:  # the others are parts of a command (an area's extras)
            register(app)


_register_commands()

# Python arguments whose command-line flag has another name
FLAG_NAMES = {**flag_names(), "out_dir": "out", "fmt": "format"}


DEBUG_ENV = "GPT2ATLAS_DEBUG"


def echo_any_argument() -> None:
    """Let stdout and stderr write every argument back: a byte that is not UTF-8 reaches argv as a lone
    surrogate (Python's surrogateescape), which a strict stream refuses to print; it is printed escaped instead."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and getattr(stream, "errors", None) == "strict":
            reconfigure(errors="backslashreplace")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; a user error prints `error: ...` on one line and exits 1 (2 for bad usage); Ctrl-C or SIGTERM
    prints `stopped: ...` (what was kept) and exits 130.

    Anything else that goes wrong (a bug, running out of memory) is one line too, saying how to get the
    traceback: set GPT2ATLAS_DEBUG=1, and it propagates as usual.
    """
    echo_any_argument()
    try:
        # without standalone mode, click returns the code of a `typer.Exit(code)` instead of exiting with it
        with stop_on_signals() as stop:
            returned = app(args=argv, prog_name="gpt2atlas", standalone_mode=False)
    except InputError as err:
        print(f"error: {as_flags(err, FLAG_NAMES)}", file=sys.stderr)
        return 1
    except AtlasError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (click.exceptions.Abort, typer.Abort, KeyboardInterrupt):
        print(f"\n{stopped_line()}", file=sys.stderr)  # below a progress bar; says what was kept
        return EXIT_CODE
    except (click.exceptions.ClickException, typer.TyperException) as err:
        # a usage error (unknown option, bad value): the command's usage and a one-line reason, exit 2. Typer
        # raises these from its own copy of click, whose classes derive from TyperException, not click's.
        err.show()  # type: ignore[union-attr]
        return int(getattr(err, "exit_code", 2))
    except (click.exceptions.Exit, typer.Exit) as done:
        return int(done.exit_code)
    except Exception as err:
        if os.environ.get(DEBUG_ENV):
            raise
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        print(
            f"error: unexpected {type(err).__name__}{': ' + first if first else ''} "
            f"(set {DEBUG_ENV}=1 for the traceback, and please report it)",
            file=sys.stderr,
        )
        return 1
    code = returned if isinstance(returned, int) else 0
    if stop.signum is not None and code == EXIT_CODE:  # typer turned the interrupt into this code: say what was kept
        print(f"\n{stopped_line()}", file=sys.stderr)  # below a progress bar; says what was kept
    return code


if __name__ == "__main__":
    sys.exit(main())
