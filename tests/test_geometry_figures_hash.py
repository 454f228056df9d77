"""Geometry's figures on mini are byte-identical to those recorded before it moved onto the shared corpus runner
(each figure's to_json() hashed; record again only for a change meant to alter the figures)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from gpt2atlas import load_model

RECORDED = Path(__file__).parent / "data" / "geometry_figure_hashes.json"
OPTIONS = {"max_texts": 40, "all_tokens_budget": 400, "gride_max_rank": 16, "seed": 3, "progress": False}


def geometry_figure_hashes() -> dict[str, str]:
    from gpt2atlas.areas import figures_of
    from gpt2atlas.geometry.analysis import analyze

    result = analyze(load_model("mini"), "The cat sat on the mat because it was warm.", **OPTIONS)
    return {name: hashlib.sha256(fig.to_json().encode()).hexdigest() for name, fig in figures_of(result).items()}


@pytest.mark.skipif(not RECORDED.exists(), reason="no recorded hashes")
def test_geometry_figures_hash_as_recorded(monkeypatch):
    import plotly.io as pio

    # plotly's own default template, as recorded: importing streamlit (the dashboard's tests) makes its own the
    # default, which every figure's JSON then carries
    monkeypatch.setattr(pio.templates, "default", "plotly")
    assert geometry_figure_hashes() == json.loads(RECORDED.read_text())


if __name__ == "__main__":  # python tests/test_geometry_figures_hash.py: record them
    RECORDED.write_text(json.dumps(geometry_figure_hashes(), indent=1, sort_keys=True) + "\n")
