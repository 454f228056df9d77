"""The words every reading is made of: numbers in short form, tokens in quotes, heads by name, and a
sentence builder that leaves out a sentence whose numbers are absent (never one that raised)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, Protocol


def num(value: Any, digits: int = 3) -> str:
    """A number in short form: 3 significant digits, thousands separators for big integers."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    value = float(value)
    if not math.isfinite(value):
        return "n/a"
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"


def pct(value: float) -> str:
    """A share as a percentage to 0.1%; one too small for that keeps 2 significant digits (0.0031%), and one
    below 0.0001% reads '<0.0001%': a share that is not 0 never reads '0.0%'."""
    percent = 100 * float(value)
    if percent == 0 or not math.isfinite(percent) or abs(percent) >= 0.05:
        return f"{percent:.1f}%"
    if abs(percent) < 1e-4:
        return "<0.0001%" if percent > 0 else ">-0.0001%"
    return f"{percent:.2g}%"


def quoted(token: Any) -> str:
    """A token shown with its whitespace visible, in quotes."""
    return repr(str(token))


def sentences_from(*builders: Callable[[], str | None]) -> list[str]:
    """Run each sentence builder and keep what it says. A builder whose numbers are legitimately absent checks its
    data and returns None; anything it raises is a bug (a renamed field, a wrong index) and propagates."""
    return [text for text in (build() for build in builders) if text]


class Headed(Protocol):
    """Anything that names a head."""

    @property
    def layer(self) -> int: ...

    @property
    def head(self) -> int: ...


def head_label(row: Headed) -> str:
    """'L1H3' for layer 1, head 3."""
    return f"L{row.layer}H{row.head}"


def join_some(items: Iterable[str], limit: int = 5) -> str:
    items = list(items)
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def versus_chance(beyond: bool) -> str:
    return "beyond chance" if beyond else "within chance, so no structure here"
