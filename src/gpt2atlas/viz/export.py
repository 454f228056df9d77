"""Write plotly figures as interactive HTML and static PNG."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio

from gpt2atlas.errors import AtlasError


def write_pngs(figures: Sequence[go.Figure], paths: Sequence[Path], *, hint: str = "pass --no-png") -> None:
    """Render `figures` to `paths` in one batched headless-browser call (kaleido), each at its own layout size.

    Needs Chrome or Chromium; without one, a one-line AtlasError that ends with `hint`.
    """
    if not figures:
        return
    figures = list(figures)
    try:
        # the batched export ignores each layout's size unless it is passed explicitly
        pio.write_images(
            figures,
            list(paths),
            scale=1,
            width=[f.layout.width for f in figures],
            height=[f.layout.height for f in figures],
        )
    except Exception as err:  # kaleido without a browser, mostly
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise AtlasError(f"PNG export failed ({first}); install Chromium (see README) or {hint}") from None


def save_figures(figures: Mapping[str, go.Figure], folder: Path, *, png: bool = True) -> list[Path]:
    """Write each figure as `<name>.html` (sharing one plotly.min.js in `folder`) and `<name>.png`."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, fig in figures.items():
        path = folder / f"{name}.html"
        fig.write_html(path, include_plotlyjs="directory", full_html=True)
        written.append(path)
    if png and figures:
        paths = [folder / f"{name}.png" for name in figures]
        write_pngs(list(figures.values()), paths)
        written += paths
    return written


@contextmanager
def browser_session(png: bool = True) -> Iterator[None]:
    """Keep one headless browser open for every PNG export inside the block (kaleido otherwise starts one per
    call, a few seconds each). Without Chromium, export fails as it would anyway: with a one-line error."""
    if not png:
        yield
        return
    import kaleido

    kaleido.start_sync_server(silence_warnings=True)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The kopts argument is ignored")
            yield
    finally:
        kaleido.stop_sync_server(silence_warnings=True)
