"""One report with everything about a GPT-2: `build_report(model, "report.html")`."""

from gpt2atlas.analysis.base import DEFAULT_PROMPT
from gpt2atlas.report.builder import build_report
from gpt2atlas.report.sections import SECTION_KEYS

__all__ = ["DEFAULT_PROMPT", "SECTION_KEYS", "build_report"]
