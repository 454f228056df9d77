"""Errors a user can cause (bad model id, corrupt weights, bad prompt, ...).

The CLI prints these as one line and exits non-zero; anything else is a bug and keeps its traceback.
"""


class AtlasError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class ModelNotFoundError(AtlasError):
    """The model id or path does not name a GPT-2 we can load."""


class CheckpointError(AtlasError):
    """The weight file exists but cannot be read as a GPT-2 checkpoint."""


class InputError(AtlasError, ValueError):
    """A prompt, token list, layer, head or hook name that does not fit the model."""
