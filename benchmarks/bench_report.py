"""The report's weight and speed in a real browser: three prompts on GPT-2 small's shape.

    python benchmarks/bench_report.py [--model DIR] [--out DIR] [--runs 3]

Without --model, a GPT-2-small-shaped checkpoint with random weights (Hugging Face layout) is built once in the
out folder: the real weights are not reachable here, and size and drawing time depend on the shape, not on what
the weights learned. Budget (issue 15): <= 5 MB, interactive in <= 3 s in Chromium on this machine.

Printed per Chromium run:
- interactive: from navigation start until plotly.js is unpacked and running, the figures are unpacked and
  the figures near the first screen are drawn (the page answers a click or a scroll from then on);
- every figure: the time to scroll through the whole report, drawing each figure as it arrives, and the most
  WebGL figures alive at once (Chromium drops contexts beyond ~16).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
PROMPTS = [
    "The quick brown fox jumps over the lazy dog. The quick brown fox jumps over the lazy dog again.",
    "def add(a, b):\n    return a + b\n\nprint(add(1, 2))\nprint(add(3, 4))",
    "When Mary and John went to the store, John gave a drink to Mary. Then Mary gave a book to John.",
]
SIZE_BUDGET_MB = 5.0
INTERACTIVE_BUDGET_S = 3.0

FIRST_SCREEN = """(() => {
  const f = window.gpt2atlasFigures;
  if (document.documentElement.dataset.figures !== 'ready' || !f) return null;
  const waiting = Array.from(document.querySelectorAll('div.gpt2atlas-figure'))
    .filter(el => el.getBoundingClientRect().top < innerHeight + 800 && !el.dataset.rendered);
  return waiting.length ? null : performance.now();
})()"""


def random_gpt2_small(folder: Path) -> Path:
    """GPT-2 small's shape (12 layers, 12 heads, 768 wide, 1,024 positions) with random weights."""
    if (folder / "model.safetensors").exists():
        return folder
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config()).save_pretrained(folder)
    return folder


async def measure(url: str) -> tuple[float, float, int, int]:
    """(seconds to interactive, seconds to draw every figure, most WebGL figures alive, figures drawn)."""
    from choreographer import Browser

    async with Browser(path=CHROMIUM, headless=True) as browser:
        tab = await browser.create_tab("about:blank")

        async def evaluate(expression: str):
            reply = await tab.send_command(
                "Runtime.evaluate", params={"expression": expression, "returnByValue": True, "awaitPromise": True}
            )
            return reply["result"]["result"].get("value")

        await tab.send_command(
            "Emulation.setDeviceMetricsOverride",
            params={"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False},
        )
        await tab.send_command("Page.navigate", params={"url": url})
        interactive = None
        while interactive is None:
            await asyncio.sleep(0.02)
            interactive = await evaluate(FIRST_SCREEN)
        start = time.perf_counter()
        count = await evaluate("document.querySelectorAll('div.gpt2atlas-figure').length")
        for i in range(count):
            await evaluate(f"document.querySelectorAll('div.gpt2atlas-figure')[{i}].scrollIntoView()")
            while not await evaluate(f"!!document.querySelectorAll('div.gpt2atlas-figure')[{i}].dataset.rendered"):
                await asyncio.sleep(0.02)
        everything = time.perf_counter() - start
        stats = await evaluate("[window.gpt2atlasFigures.maxLiveGL, window.gpt2atlasFigures.drawn]")
        return interactive / 1000, everything, stats[0], stats[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="a GPT-2 folder (default: random weights, GPT-2 small's shape)")
    parser.add_argument("--out", type=Path, default=Path("bench-report"))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from gpt2atlas.model.loading import load_model
    from gpt2atlas.report.builder import build_report

    args.out.mkdir(parents=True, exist_ok=True)
    model_dir = args.model or random_gpt2_small(args.out / "gpt2-small-random")
    model = load_model(str(model_dir))
    start = time.perf_counter()
    path, report = build_report(model, args.out / "report.html", prompts=PROMPTS, progress=False)
    built = time.perf_counter() - start
    size_mb = path.stat().st_size / 1e6
    figures = sum(s.figure_count for s in report.sections)
    print(f"report: {figures} figures, {size_mb:.2f} MB (budget {SIZE_BUDGET_MB} MB), built in {built:.0f} s")

    runs = [asyncio.run(measure(path.resolve().as_uri())) for _ in range(args.runs)]
    interactive = statistics.median(r[0] for r in runs)
    for i, (first, everything, live_gl, drawn) in enumerate(runs, 1):
        print(
            f"chromium run {i}: interactive in {first:.2f} s; every figure drawn by scrolling through in"
            f" {everything:.1f} s ({drawn} draws, at most {live_gl} WebGL figures alive)"
        )
    print(f"interactive (median of {len(runs)}): {interactive:.2f} s (budget {INTERACTIVE_BUDGET_S} s)")
    ok = size_mb <= SIZE_BUDGET_MB and interactive <= INTERACTIVE_BUDGET_S
    print("within budget" if ok else "OVER BUDGET")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
