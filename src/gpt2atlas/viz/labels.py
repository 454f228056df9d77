"""Token strings made safe and readable as figure labels.

Plotly draws labels, titles and hover text from a small subset of HTML and decodes only a few named entities
(&amp; &lt; &gt; and numeric ones, not &quot;), so user text is escaped for &, < and > only: that is enough to
keep it from forming tags, and a quote stays a quote.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

_VISIBLE = str.maketrans({" ": "·", "\n": "↵", "\t": "⇥", "\r": "␍"})


def token_label(token: str) -> str:
    """HTML-escaped token with whitespace made visible (' the' -> '·the'); never empty."""
    return escape(token.translate(_VISIBLE)) or "∅"


def token_labels(tokens: Iterable[str], *, numbered: bool = False) -> list[str]:
    """Labels for a token sequence; `numbered` prefixes the position, so repeated tokens stay distinct."""
    labels = [token_label(t) for t in tokens]
    return [f"{i}:{label}" for i, label in enumerate(labels)] if numbered else labels


def escape(text: str) -> str:
    """User text (prompts, tokens) made inert for plotly titles, labels and hover text."""
    return html.escape(text, quote=False)
