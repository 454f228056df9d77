"""An area's figures: the function that draws them from its result, and every figure name it can draw with its
caption, declared together beside the drawer (analyses compute numbers and never draw; viz draws them)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go


@dataclass(frozen=True)
class Figures:
    """`draw(result)` gives named figures (names become file names); `captions` holds every name it can give,
    each with the sentence shown under it (what it shows and how to read it); `first` the ones shown first."""

    draw: Callable[..., dict[str, go.Figure]]
    captions: Mapping[str, str]
    first: tuple[str, ...] = ()

    def __call__(self, *drawn: Any) -> dict[str, go.Figure]:
        return self.draw(*drawn)

    def caption(self, name: str) -> str:
        """The figure's caption (KeyError for a name this drawer does not declare: the contract test's job)."""
        return self.captions[name]

    def captions_of(self, names: Any) -> dict[str, str]:
        """The captions of the figures named (for a report part or a figure picker)."""
        return {name: self.captions[name] for name in names}
