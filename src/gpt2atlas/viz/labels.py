"""Token strings made safe and readable as figure labels.

Plotly draws labels, titles and hover text from a small subset of HTML and decodes only a few named entities
(&amp; &lt; &gt; and numeric ones, not &quot;), so user text is escaped for &, < and > only: that is enough to
keep it from forming tags, and a quote stays a quote.
"""

from __future__ import annotations

import html
import re
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


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~])")


def md_escape(text: str) -> str:
    """User text made inert in Markdown: &, < and > as entities, Markdown punctuation backslashed, lines joined.

    Quotes stay as they are: harmless outside attributes, and an entity such as &#x27; would be broken by the
    backslash before its '#' and show literally.
    """
    text = html.escape(str(text), quote=False).replace("\r", " ").replace("\n", " ↵ ")
    return _MD_SPECIAL.sub(r"\\\1", text)
