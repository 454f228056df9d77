"""Make the README's screenshots: the report and the dashboard on the shipped mini model, in headless Chromium.

    python scripts/readme_screenshots.py [--out docs/images]

Writes report.png (the attention section of `gpt2atlas report --model mini`) and dashboard.png (the
dashboard's Attention view, all heads in the lines view); with --causes, causes_report.png (the report's causes
section alone) and causes_dashboard.png (the dashboard's Causes view on its default pair) instead.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"


class Tab:
    def __init__(self, tab) -> None:
        self.tab = tab

    async def js(self, expression: str):
        reply = await self.tab.send_command(
            "Runtime.evaluate", params={"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        return reply["result"]["result"].get("value")

    async def until(self, expression: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not await self.js(expression):
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting for: {expression}")
            await asyncio.sleep(0.25)

    async def shot(self, path: Path) -> None:
        reply = await self.tab.send_command("Page.captureScreenshot", params={"format": "png"})
        path.write_bytes(base64.b64decode(reply["result"]["data"]))
        print(f"wrote {path}")


async def capture(url: str, steps, width: int = 1280, height: int = 900) -> None:
    from choreographer import Browser

    async with Browser(path=CHROMIUM, headless=True) as browser:
        raw = await browser.create_tab("about:blank")
        await raw.send_command(
            "Emulation.setDeviceMetricsOverride",
            params={"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        await raw.send_command("Page.navigate", params={"url": url})
        await steps(Tab(raw))


def report_shot(out: Path, section: str = "attention", name: str = "report.png", only: bool = False) -> None:
    html = Path(tempfile.mkdtemp()) / "report.html"
    skip: list[str] = []
    if only:  # the section alone (and the summary every report has)
        from gpt2atlas.report import SECTION_KEYS

        skip = [arg for key in SECTION_KEYS if key not in ("summary", section) for arg in ("--skip", key)]
    command = [sys.executable, "-m", "gpt2atlas", "report", "--model", "mini", "--out", str(html), *skip]
    subprocess.run(command, check=True)

    async def steps(tab: Tab) -> None:
        await tab.until("document.documentElement.dataset.figures === 'ready'")
        await tab.js(f"document.querySelector('section#{section}').scrollIntoView()")
        await tab.until(f"document.querySelector('section#{section} div.gpt2atlas-figure').dataset.rendered")
        await asyncio.sleep(1.5)
        await tab.shot(out / name)

    asyncio.run(capture(html.as_uri(), steps))


CLICK_LABEL = """(() => {{ const l = Array.from(document.querySelectorAll('label'))
  .find(l => l.innerText.trim() === {label!r}); if (!l) return false; l.click(); return true; }})()"""
READY = "!document.querySelector('[data-stale=\"true\"]') && document.querySelectorAll('.js-plotly-plot .main-svg').length > 0"


def dashboard_shot(out: Path, view: str = "Attention", name: str = "dashboard.png") -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "gpt2atlas", "app", "--model", "mini", "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)

        async def steps(tab: Tab) -> None:
            await tab.until(CLICK_LABEL.format(label=view))
            await asyncio.sleep(1)
            await tab.until(READY)
            if view == "Attention":
                await tab.js(
                    "(() => { const b = Array.from(document.querySelectorAll('label'))"
                    ".find(l => l.innerText.trim() === 'lines'); b.click(); return true; })()"
                )
                await asyncio.sleep(2)
                await tab.until(READY)
            else:  # the inputs, the reading and the first heat map
                await tab.js("document.querySelector('textarea[aria-label=\"Clean prompt\"]').scrollIntoView()")
            await asyncio.sleep(1.5)
            await tab.shot(out / name)

        asyncio.run(capture(url, steps, height=1400 if view != "Attention" else 1000))
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    parser.add_argument("--causes", action="store_true", help="the causes area's report section and view instead")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.causes:
        report_shot(args.out, "causes", "causes_report.png", only=True)
        dashboard_shot(args.out, "Causes", "causes_dashboard.png")
        return
    report_shot(args.out)
    dashboard_shot(args.out)


if __name__ == "__main__":
    main()
