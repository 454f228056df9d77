"""Small pieces every view uses: safe text, readings, a figure picker."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Literal

import plotly.graph_objects as go
import streamlit as st

from gpt2atlas.viz.figures import Figures
from gpt2atlas.viz.labels import md_escape
from gpt2atlas.viz.screen import wrap_subplot_titles


def reading(sentences: list[str]) -> None:
    """The written reading as a bullet list, every sentence made inert (HTML and Markdown escaped)."""
    if sentences:
        st.markdown("\n".join(f"- {md_escape(s)}" for s in sentences))


def token_strip(prompt: str, tokens: list[str], probs: list[float]) -> str:
    """The prompt then each generated token shaded by its probability, as escaped HTML."""
    spans = "".join(
        f'<span title="p = {p:.3g}" style="background: rgba(76,120,168,{0.08 + 0.6 * p:.2f}); border-radius: 3px">'
        f"{escape(t)}</span>"
        for t, p in zip(tokens, probs)
    )
    return (
        f'<div class="gpt2atlas-sample" style="white-space: pre-wrap; font-family: monospace; line-height: 1.9">'
        f'<span style="color: #5b6478">{escape(prompt)}</span>{spans}</div>'
    )


def figure_picker(
    figures: Mapping[str, go.Figure], captions: Figures, key: str, preferred: tuple[str, ...] = ()
) -> None:
    """A select box over `figures` (each shown by its caption) and the chosen one drawn."""
    if not figures:
        st.info("This analysis made no figures.")
        return
    names = [n for n in preferred if n in figures] + [n for n in figures if n not in preferred]
    name = st.selectbox("Figure", names, key=key, format_func=captions.caption)
    chart(figures[name], key=f"{key}-chart")


def chart(fig: go.Figure, key: str, width: Literal["stretch", "content"] = "stretch") -> None:
    """A plotly figure as we drew it: Streamlit's theme off (it replaced our colour scales and fonts).

    Stretched figures drop the fixed pixel width they have for PNG export, so they fit the page's column (about
    as wide as the report on an 800 px screen), and their subplot titles are wrapped to fit it as the report's are.
    """
    if width == "stretch":
        fig = go.Figure(fig).update_layout(width=None, autosize=True)
        wrap_subplot_titles(fig)
    st.plotly_chart(fig, width=width, theme=None, key=key)
