"""What a report is made of: sections of parts, each with a reading, tables, samples and figures.

Everything here is plain data (user text unescaped); the renderers (html.py, markdown.py) escape it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go

from gpt2atlas.analysis.base import to_jsonable
from gpt2atlas.viz.atlas import AtlasBlock
from gpt2atlas.viz.tables import Table

__all__ = ["Alternative", "Part", "Report", "Sample", "SampleFindings", "SamplingSettings", "Section", "Table"]


@dataclass
class Sample:
    """A generated continuation: its prompt and each new token with the probability the model gave it."""

    prompt: str
    tokens: list[str]
    probs: list[float]
    alternatives: list[list[tuple[str, float]]] = field(default_factory=list)  # per step: the likeliest tokens


@dataclass(frozen=True)
class SamplingSettings:
    max_new_tokens: int
    temperature: float
    top_k: int | None
    seed: int
    num_samples: int


@dataclass(frozen=True)
class Alternative:
    """One of the likeliest next tokens at a generation step."""

    token: str
    prob: float


@dataclass(frozen=True)
class SampleFindings:
    """What the samples part records: the settings, the texts, each drawn token's probability, the alternatives."""

    settings: SamplingSettings
    texts: list[str]
    token_probs: list[list[float]]
    alternatives: list[list[list[Alternative]]]  # sample -> step -> the likeliest tokens


@dataclass
class Part:
    """One block of a section (one per prompt for prompt-based analyses)."""

    title: str | None = None
    reading: list[str] = field(default_factory=list)  # short sentences produced from the findings
    blocks: list[AtlasBlock] = field(default_factory=list)  # corpus examples drawn by viz.atlas (escaped there)
    tables: list[Table] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    figures: dict[str, go.Figure] = field(default_factory=dict)
    captions: dict[str, str] = field(default_factory=dict)  # the sentence under each figure, by its name
    findings: Any = field(default_factory=dict)  # the analysis's typed findings, kept for checks and JSON
    shared: bool = False  # what every prompt's part had in common, shown once (its findings stay in each part)


@dataclass
class Section:
    """A report section; `skipped` says why it is missing (optional extra absent, input refused, analysis failed),
    and `failed` whether that was an unexpected failure (the report then exits non-zero)."""

    key: str
    title: str
    parts: list[Part] = field(default_factory=list)
    skipped: str | None = None
    seconds: float = 0.0
    failed: bool = False

    @property
    def figure_count(self) -> int:
        return sum(len(p.figures) for p in self.parts)


@dataclass
class Report:
    """All sections plus where the numbers come from."""

    title: str
    sections: list[Section]
    provenance: dict

    def findings_data(self) -> dict:
        """Provenance and every part's findings as JSON-ready data."""
        sections = {
            s.key: {
                "title": s.title,
                "skipped": s.skipped,
                "parts": [to_jsonable(p.findings) for p in s.parts if not p.shared],
            }
            for s in self.sections
        }
        return {"provenance": to_jsonable(self.provenance), "sections": sections}
