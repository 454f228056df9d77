"""Errors a user can cause (bad model id, corrupt weights, bad prompt, ...).

The CLI prints these as one line and exits non-zero; anything else is a bug and keeps its traceback.
"""

import os
import re
import tempfile
from functools import partial
from pathlib import Path
from typing import Any


class AtlasError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class ModelNotFoundError(AtlasError):
    """The model id or path does not name a GPT-2 we can load."""


class CheckpointError(AtlasError):
    """The weight file exists but cannot be read as a GPT-2 checkpoint."""


class InputError(AtlasError, ValueError):
    """A prompt, token list, layer, head or hook name that does not fit the model.

    Raised from the Python API, the message names the arguments at fault as `name=value` (`layer=12 is out of
    range ...`), and `arguments` lists those names, so that the command line can say `--layer 12` instead.
    """

    def __init__(self, message: str, *, arguments: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.arguments = arguments

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled (across processes, Ray workers) as its class called with the message and the arguments, so a
        copy is rebuilt whole even where only the call is replayed; then any other attribute (notes)."""
        return partial(type(self), arguments=self.arguments), self.args, self.__dict__


def as_flags(error: InputError, flags: dict[str, str] | None = None) -> str:
    """The message with each `name=value` of its arguments written as the command-line flag `--name value`.

    `flags` maps an argument to a flag of another name (all_tokens_budget -> budget).
    """
    text = str(error)
    for name in error.arguments:
        flag = "--" + (flags or {}).get(name, name).replace("_", "-")

        def written(match: re.Match[str], flag: str = flag) -> str:
            return f"{flag} {match.group(1)}" if match.group(1) else flag

        text = re.sub(rf"\b{re.escape(name)}=(\S*?)(?=[\s:,;)]|$)", written, text)
    return text


def check_output(path: str | os.PathLike[str], argument: str, *, folder: bool) -> None:
    """Refuse, before anything is written, an output location that cannot be made: a file where a folder is
    wanted (or the reverse), a path under a file, a name too long, a place that cannot be written. One line
    naming `argument` and the path; nothing is left behind."""
    path = Path(path)
    said = f"{argument}={path}"
    if os.path.exists(path) and os.path.isdir(path) != folder:
        kind = "a file, not a folder" if folder else "a folder, not a file"
        raise InputError(f"{said} is {kind}: give a {'folder' if folder else 'file'} path", arguments=(argument,))
    probe, new = path if folder else path.parent, list[str]()
    while not os.path.lexists(probe) and probe != probe.parent:
        probe, new = probe.parent, [probe.name, *new]
    if not os.path.isdir(probe):
        raise InputError(f"{said} is inside {probe}, which is a file, not a folder", arguments=(argument,))
    longest = max([len(os.fsencode(name)) for name in [*new, path.name]])
    if longest > os.pathconf(probe, "PC_NAME_MAX"):
        raise InputError(
            f"{said} has a name of {longest} bytes: at most {os.pathconf(probe, 'PC_NAME_MAX')} fit",
            arguments=(argument,),
        )
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as err:
        raise InputError(f"{said} cannot be written: {probe}: {err.strerror or err}", arguments=(argument,)) from None


SEED_LIMIT = 2**32  # numpy's RandomState takes seeds below this; torch and default_rng take them all


def check_seed(seed: int | None, argument: str = "seed") -> None:
    """Refuse a seed that a random generator would reject (None: no seed given)."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT):
        raise InputError(f"{argument}={seed!r} must be a whole number in [0, 2**32)", arguments=(argument,))
