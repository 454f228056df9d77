"""Screenshots of the atlas views, at 1280 and 800 px wide, in headless Chromium (as readme_screenshots.py does).

    python scripts/atlas_screenshots.py [--model mini] [--atlas DIR] [--out docs/images]
    python scripts/atlas_screenshots.py --report REPORT.html   # an already-written report, the report part only

Writes atlas_report_1280.png and atlas_report_800.png (the report's MLP section where the prompt's strongest
neurons are shown across the corpus: `gpt2atlas report --model M [--atlas DIR]` with the other sections
skipped), and atlas_dashboard_1280.png and atlas_dashboard_800.png (the dashboard's "Neuron atlas" view on
neuron 0 of layer 0). Without --atlas, `--model mini` reads its shipped atlas.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from readme_screenshots import CLICK_LABEL, READY, Tab, capture  # noqa: E402

WIDTHS = (1280, 800)
TITLE = "Array.from(document.querySelectorAll('h3')).find(h => h.textContent.endsWith('across the corpus'))"
ATLAS_READY = "document.querySelectorAll('.atlas-example').length > 0"


def write_report(model: str, atlas: Path | None) -> Path:
    """The report with only its summary and MLP sections (the atlas part is in the MLP one)."""
    from gpt2atlas.report import SECTION_KEYS

    html = Path(tempfile.mkdtemp()) / "report.html"
    skip = [arg for key in SECTION_KEYS if key not in ("summary", "neurons") for arg in ("--skip", key)]
    given = ["--atlas", str(atlas)] if atlas is not None else []
    subprocess.run(
        [sys.executable, "-m", "gpt2atlas", "report", "--model", model, *given, "--out", str(html), *skip], check=True
    )
    return html


def report_shots(html: Path, out: Path) -> None:
    """The first atlas part of the report (its title, reading and shaded examples), at each width."""

    async def steps(tab: Tab, path: Path) -> None:
        await tab.until(ATLAS_READY)
        await tab.js(TITLE + ".scrollIntoView()")
        await asyncio.sleep(1.5)
        await tab.shot(path)

    for width in WIDTHS:
        asyncio.run(capture(html.resolve().as_uri(), lambda tab, w=width: steps(tab, out / f"atlas_report_{w}.png"),
                            width=width, height=1100))  # fmt: skip


def dashboard_shots(url: str, out: Path) -> None:
    """The "Neuron atlas" view (layer 0, neuron 0 by default), at each width."""

    async def steps(tab: Tab, path: Path) -> None:
        await tab.until(CLICK_LABEL.format(label="Neuron atlas"))
        await asyncio.sleep(1)
        await tab.until(ATLAS_READY)
        await tab.until(READY)
        await tab.js("document.querySelector('input[aria-label=\"Atlas\"]').scrollIntoView()")
        await asyncio.sleep(1.5)
        await tab.shot(path)

    for width in WIDTHS:
        asyncio.run(capture(url, lambda tab, w=width: steps(tab, out / f"atlas_dashboard_{w}.png"), width=width,
                            height=1400))  # fmt: skip


def serve(command: list[str], port: int) -> subprocess.Popen:
    """Start a dashboard and wait until it answers."""
    server = subprocess.Popen(command)
    for _ in range(120):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
            return server
        except OSError:
            time.sleep(0.5)
    server.terminate()
    raise SystemExit("the dashboard did not start")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mini")
    parser.add_argument("--atlas", type=Path, help="the atlas folder (default for mini: the shipped atlas)")
    parser.add_argument("--report", type=Path, help="screenshot this report instead of writing one (no dashboard)")
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.report is not None:
        report_shots(args.report, args.out)
        return
    report_shots(write_report(args.model, args.atlas), args.out)
    port = free_port()
    given = ["--atlas", str(args.atlas)] if args.atlas is not None else []
    server = serve([sys.executable, "-m", "gpt2atlas", "app", "--model", args.model, "--port", str(port), *given], port)
    try:
        dashboard_shots(f"http://127.0.0.1:{port}", args.out)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
