"""Write plotly figures as interactive HTML and static PNG."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio

import gpt2atlas.atomic as atomic
from gpt2atlas.analysis.base import AnalysisResult
from gpt2atlas.errors import AtlasError, check_output


def write_pngs(figures: Sequence[go.Figure], paths: Sequence[Path], *, hint: str = "pass --no-png") -> None:
    """Render `figures` to `paths` in one batched headless-browser call (kaleido), each at its own layout size.

    Needs Chrome or Chromium; without one, a one-line AtlasError that ends with `hint`.
    """
    if not figures:
        return
    figures = list(figures)
    with ExitStack() as stack:
        temporary = [stack.enter_context(atomic.replacing(path)) for path in paths]  # renamed into place at the end
        try:
            # the batched export ignores each layout's size unless it is passed explicitly
            pio.write_images(
                figures,
                temporary,
                scale=1,
                width=[f.layout.width for f in figures],
                height=[f.layout.height for f in figures],
            )
        except Exception as err:  # kaleido without a browser, mostly
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise AtlasError(f"PNG export failed ({first}); install Chromium (see README) or {hint}") from None
        # kaleido's batch logs a figure it could not render (a render timeout under load) and deletes its file
        # instead of raising: a missing or empty file is that failure, said here rather than at the rename
        lost = [
            path.name
            for path, tmp in zip(paths, temporary, strict=True)
            if not (os.path.isfile(tmp) and os.path.getsize(tmp) > 0)
        ]
        if lost:
            raise AtlasError(f"PNG export failed for {', '.join(lost)} (the renderer gave no image); {hint}")


def save_figures(figures: Mapping[str, go.Figure], folder: Path, *, png: bool = True) -> list[Path]:
    """Write each figure as `<name>.html` (sharing one plotly.min.js in `folder`) and `<name>.png`."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    bundle = folder / "plotly.min.js"
    if figures and not bundle.exists():  # plotly would write it in place; whole or not at all instead
        from plotly.offline import get_plotlyjs

        atomic.write_text(bundle, get_plotlyjs())
    for name, fig in figures.items():
        path = folder / f"{name}.html"
        with atomic.replacing(path) as tmp:  # plotly.min.js goes beside it, in the same folder
            fig.write_html(tmp, include_plotlyjs="directory", full_html=True)
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


def write_result_folder(
    out_dir: str | Path, area: str, findings_json: str, figures: Mapping[str, go.Figure], *, png: bool = True
) -> Path:
    """Write `out_dir/<area>/findings.json` and every figure (HTML + PNG), atomically.

    Everything is written into a temporary folder first, then swapped into place, so an error, Ctrl-C or a second
    writer never leaves a half-written or mixed result folder.
    """
    out_dir = Path(out_dir)
    check_output(out_dir, "out_dir", folder=True)
    final = out_dir / area
    with atomic.replacing_folder(final) as staging:
        atomic.write_text(staging / "findings.json", findings_json)
        save_figures(figures, staging, png=png)
    return final


def save_result(
    result: AnalysisResult, figures: Mapping[str, go.Figure], out_dir: str | Path, *, png: bool = True
) -> Path:
    """An analysis result's findings.json and its figures, in `out_dir/<area>/`."""
    return write_result_folder(out_dir, result.area, result.to_json(), figures, png=png)
