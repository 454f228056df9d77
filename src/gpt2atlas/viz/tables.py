"""Small tables of already-formatted cells, made from findings (the report renders them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Table:
    """A small table of already-formatted cells."""

    title: str
    header: list[str]
    rows: list[list[str]]
