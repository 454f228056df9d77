"""Write plotly figures as interactive HTML and static PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import plotly.graph_objects as go
import plotly.io as pio

from gpt2atlas.errors import AtlasError


def save_figures(figures: Mapping[str, go.Figure], folder: Path, *, png: bool = True) -> list[Path]:
    """Write each figure as `<name>.html` (sharing one plotly.min.js in `folder`) and `<name>.png`.

    PNG export renders every figure in one headless-browser session (kaleido); it needs Chrome or Chromium.
    """
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, fig in figures.items():
        path = folder / f"{name}.html"
        fig.write_html(path, include_plotlyjs="directory", full_html=True)
        written.append(path)
    if png and figures:
        paths = [folder / f"{name}.png" for name in figures]
        try:
            figs = list(figures.values())
            # the batched export ignores each layout's size unless it is passed explicitly
            pio.write_images(figs, paths, scale=1, width=[f.layout.width for f in figs],
                             height=[f.layout.height for f in figs])
        except Exception as err:  # kaleido without a browser, mostly
            raise AtlasError(
                f"PNG export failed ({str(err).splitlines()[0] if str(err) else type(err).__name__}); "
                "install Chromium (see README) or pass --no-png"
            ) from None
        written += paths
    return written
