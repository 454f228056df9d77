"""Errors a user can cause (bad model id, corrupt weights, bad prompt, ...).

The CLI prints these as one line and exits non-zero; anything else is a bug and keeps its traceback.
"""

import re


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
