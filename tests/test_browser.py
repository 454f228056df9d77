"""The report and the dashboard in a real headless Chromium (Debian's `chromium`), driven over DevTools.

Checks: no JavaScript error, no alert from the hostile prompt, no network request beyond the page itself, every
figure drawn (plotly's SVG present, screenshot not blank); the dashboard answers Generate and shows attention.
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from gpt2atlas.cli.commands.report import app_command, free_port
from gpt2atlas.cli.main import main
from gpt2atlas.report.html import GL_CONTEXTS

CHROMIUM = Path("/usr/bin/chromium")
WEBGL_LIMIT = 16  # Chromium's live WebGL contexts per page: past it, it drops the oldest figure's
HOSTILE = "<img src=x onerror=alert(1)> and <script>alert(2)</script> the end"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]


COMMAND_SECONDS = 90  # one DevTools command; a CI run once hung on one for the scenario's whole 600 s


TWO_FRAMES = "new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => done(true))))"
STATE = """JSON.stringify({visibility: document.visibilityState, size: [innerWidth, innerHeight],
  webgl: window.gpt2atlasFigures && window.gpt2atlasFigures.liveGL(), canvases: document.querySelectorAll('canvas').length,
  drawn: document.querySelectorAll('.main-svg').length})"""


def timed(method: str, params: dict | None, took: float) -> None:
    """Keep the slowest DevTools command; with $GPT2ATLAS_DEVTOOLS_LOG set, log every one (to hunt a slow one)."""
    if took > Page.slowest[0]:
        Page.slowest = (took, f"{method} {str(params)[:80]}")
    if os.environ.get("GPT2ATLAS_DEVTOOLS_LOG"):
        with open(os.environ["GPT2ATLAS_DEVTOOLS_LOG"], "a") as log:
            log.write(f"{time.time():.2f} {os.getpid()} {took:7.2f} {method} {str(params)[:100]}\n")


class Page:
    """A Chromium tab that records JS errors, console errors, dialogs and every network request."""

    EVENTS = (
        "Runtime.exceptionThrown",
        "Runtime.consoleAPICalled",
        "Page.javascriptDialogOpening",
        "Network.requestWillBeSent",
        "Log.entryAdded",
    )

    slowest: tuple[float, str] = (0.0, "")  # over every page of the session: printed for CI's log

    def __init__(self, tab) -> None:
        self.tab = tab
        self.events: list[dict] = []

    async def command(self, method: str, params: dict | None = None) -> dict:
        """One DevTools command, asked twice at most (the test's commands are idempotent): an answer that never
        comes fails the test here, naming the command, instead of silently eating the scenario's whole bound."""
        for _ in range(2):
            start = time.monotonic()
            try:
                return await asyncio.wait_for(self.tab.send_command(method, params=params), COMMAND_SECONDS)
            except TimeoutError:
                continue
            finally:
                timed(method, params, time.monotonic() - start)
        pytest.fail(f"Chromium did not answer {method} {str(params)[:160]} twice in {COMMAND_SECONDS} s")

    @classmethod
    async def open(cls, browser, url: str, width: int = 1400, height: int = 1000) -> Page:
        tab = await browser.create_tab("about:blank")
        page = cls(tab)

        async def record(event: dict) -> None:
            page.events.append(event)
            if event["method"] == "Page.javascriptDialogOpening":  # dismiss it, or the page would hang
                await tab.send_command("Page.handleJavaScriptDialog", params={"accept": False})

        for name in cls.EVENTS:
            tab.subscribe(name, record)
        for domain in ("Runtime", "Page", "Network", "Log"):
            await page.command(f"{domain}.enable")
        await page.command(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        await page.command("Page.navigate", {"url": url})
        return page

    async def evaluate(self, expression: str):
        reply = await self.command(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        result = reply["result"]
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float, what: str):
        """Poll a JS expression until it is truthy; fail with `what` after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = await self.evaluate(expression)
            except AssertionError:
                value = None
            if value:
                return value
            await asyncio.sleep(0.25)
        pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")

    async def screenshot(self) -> bytes:
        """The viewport as a person sees it, once the page has painted two frames since the last change. Asked
        once: should Chromium not answer, the failure says what the page was doing instead of asking again."""
        await self.evaluate(TWO_FRAMES)
        start = time.monotonic()
        try:
            shot = await asyncio.wait_for(
                self.tab.send_command("Page.captureScreenshot", params={"format": "png"}), COMMAND_SECONDS
            )
        except TimeoutError:
            pytest.fail(f"Chromium did not answer Page.captureScreenshot in {COMMAND_SECONDS} s; {await self.state()}")
        finally:
            timed("Page.captureScreenshot", None, time.monotonic() - start)
        return base64.b64decode(shot["result"]["data"])

    async def state(self) -> str:
        """What the page and its window are doing, each question bounded: for the message of a stalled command."""
        questions = {
            "page": ("Runtime.evaluate", {"expression": STATE, "returnByValue": True}),
            "frames": ("Runtime.evaluate", {"expression": TWO_FRAMES, "returnByValue": True, "awaitPromise": True}),
            "window": ("Browser.getWindowForTarget", {"targetId": self.tab.target_id}),
        }
        answers = []
        for name, (method, params) in questions.items():
            try:
                reply = await asyncio.wait_for(self.tab.send_command(method, params=params), 10)
                answers.append(f"{name}: {str(reply.get('result'))[:300]}")
            except TimeoutError:
                answers.append(f"{name}: no answer in 10 s")
        return "; ".join(answers)

    def of(self, method: str) -> list[dict]:
        return [e["params"] for e in self.events if e["method"] == method]

    def js_errors(self) -> list[str]:
        errors = [str(e["exceptionDetails"]) for e in self.of("Runtime.exceptionThrown")]
        errors += [str(e["args"]) for e in self.of("Runtime.consoleAPICalled") if e["type"] == "error"]
        errors += [
            e["entry"]["text"]
            for e in self.of("Log.entryAdded")
            if e["entry"]["level"] == "error" and not e["entry"].get("url", "").endswith("favicon.ico")
        ]
        return errors

    def requested_urls(self) -> list[str]:
        return [e["request"]["url"] for e in self.of("Network.requestWillBeSent")]


def run_in_browser(scenario, timeout: float = 150) -> None:
    """Run `async scenario(browser)` against a fresh headless Chromium, `timeout` seconds at most."""
    from choreographer import Browser

    async def go() -> None:
        async with Browser(path=str(CHROMIUM), headless=True) as browser:
            await asyncio.wait_for(scenario(browser), timeout=timeout)

    Page.slowest = (0.0, "")
    try:
        asyncio.run(go())
    finally:
        print(f"slowest DevTools command: {Page.slowest[0]:.2f} s, {Page.slowest[1]}")


ARTEFACTS = Path(os.environ.get("GPT2ATLAS_ARTEFACTS", Path(__file__).parents[1] / "test-artefacts"))


def keep_screenshot(name: str, png: bytes) -> None:
    """Save a screenshot where a person (or CI) can look at it: test-artefacts/ or $GPT2ATLAS_ARTEFACTS."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    (ARTEFACTS / f"{name}.png").write_bytes(png)


def non_blank_share(png: bytes) -> float:
    """Share of pixels that are not (near) white: a drawn figure has plenty."""
    import numpy as np
    from PIL import Image

    gray = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
    return float((gray < 235).mean())


def test_report_renders_in_chromium(tiny_checkpoint, tmp_path):
    """Three prompts (issue 15's case): every figure draws when scrolled to, and WebGL stays within its limit."""
    out = tmp_path / "report.html"
    texts = tmp_path / "texts.txt"
    texts.write_text(
        "\n".join(f"Line {i} of a small corpus: {i * 7 % 13} lamps, {i % 5} boats and one harbour." for i in range(30))
    )
    prompts = [HOSTILE, "one two three one two three one two three", "The harbour lamps were lit at dusk."]
    assert (
        main(
            [
                "report",
                "--model",
                str(tiny_checkpoint),
                *(arg for prompt in prompts for arg in ("--prompt", prompt)),
                "--out",
                str(out),
                "--quick",
                "--texts",
                str(texts),
                "--max-new-tokens",
                "6",
                "--num-samples",
                "1",
            ]
        )
        == 0
    )
    html = out.read_text()
    n_figures = html.count('class="plot"')
    assert n_figures >= 20

    async def scenario(browser) -> None:
        page = await Page.open(browser, out.as_uri())
        await page.wait_for("document.documentElement.dataset.figures === 'ready'", 30, "the figures to unpack")
        for i in range(n_figures):  # figures draw as they come near the viewport: scroll to each in turn
            figure = f"document.querySelectorAll('figure.plot')[{i}]"
            await page.evaluate(f"{figure}.scrollIntoView()")
            drawn = f"!!{figure}.querySelector('.main-svg')"
            for _ in range(120):  # 30 s
                if await page.evaluate(drawn):
                    break
                await asyncio.sleep(0.25)
            else:
                state = await page.evaluate(
                    f"[{figure}.querySelector('div').id, JSON.stringify({figure}.querySelector('div').dataset),"
                    " window.gpt2atlasFigures.failures, window.gpt2atlasFigures.liveGL()]"
                )
                pytest.fail(f"figure {i} never drew: {state}; errors: {page.js_errors()[:3]}")
        retried = await page.evaluate("window.gpt2atlasFigures.failures")
        print(f"figures drawn only on a second try: {retried}")  # in CI's log, should a flake come back
        webgl = await page.evaluate("window.gpt2atlasFigures.maxLiveGL")
        assert 1 <= webgl < WEBGL_LIMIT  # the tiny report has 3-D scenes (one context each); never near the limit
        messages = [e["entry"]["text"] for e in page.of("Log.entryAdded")]
        messages += [str(e["args"]) for e in page.of("Runtime.consoleAPICalled")]
        lost = [m for m in messages if "Too many active WebGL contexts" in m or "CONTEXT_LOST" in m]
        assert lost == [], lost  # Chromium's own words when it drops a figure's context
        # the hostile prompt is text on the page, never markup
        assert await page.evaluate("document.querySelectorAll('img[src=x], img[onerror]').length") == 0
        text = await page.evaluate("document.body.innerText")
        assert "<script>alert(2)</script>" in text
        await page.evaluate("document.querySelector('section#attention').scrollIntoView()")
        await page.wait_for(
            "Array.from(document.querySelectorAll('section#attention div.gpt2atlas-figure')).slice(0, 2)"
            ".every(el => el.dataset.rendered)",
            20,
            "the attention figures to draw again",
        )
        # the 3-D figures far below are released, their render loops stopped: nothing animates behind the heat maps
        assert await page.evaluate("window.gpt2atlasFigures.liveGL()") <= GL_CONTEXTS
        png = await page.screenshot()
        keep_screenshot("report-attention", png)
        assert non_blank_share(png) > 0.02
        assert page.js_errors() == []
        assert page.of("Page.javascriptDialogOpening") == []
        assert [u for u in page.requested_urls() if not u.startswith(("file:", "data:", "blob:"))] == []
        # responsive: at 1280 and 800 px nothing is wider than the page, and every figure fits its box
        for width in (1280, 800):
            await page.command(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": 1000, "deviceScaleFactor": 1, "mobile": False},
            )
            for _ in range(60):  # plotly redraws every responsive figure after a resize, one by one: give it 30 s
                await asyncio.sleep(0.5)
                too_wide = await page.evaluate(
                    "(() => { const page = document.documentElement.clientWidth; const out = [];"
                    " if (document.documentElement.scrollWidth > page) out.push('page ' + document.documentElement.scrollWidth);"
                    " for (const f of document.querySelectorAll('figure.plot')) {"
                    "   const svg = f.querySelector('.main-svg');"
                    "   if (svg && svg.getBoundingClientRect().width > f.clientWidth) out.push(f.id || f.querySelector('div[id]').id); }"
                    " for (const e of document.querySelectorAll('main > *, section > *, table, pre, p, ul'))"
                    "   if (e.getBoundingClientRect().right > page + 1) out.push(e.tagName + ' ' + (e.id || e.className));"
                    " return out.slice(0, 10); })()"
                )
                if not too_wide:
                    break
            assert too_wide == [], f"wider than the page at {width} px: {too_wide}"

    # ~80 figures drawn one by one, then redrawn at two widths: 35 s here, over 150 s once on a slow CI run
    # (every wait inside has its own bound and message)
    run_in_browser(scenario, timeout=600)


@pytest.fixture()
def dashboard(tiny_checkpoint, tmp_path):
    """The real dashboard server on a free 127.0.0.1 port; killed at the end."""
    port = free_port()
    env = {
        **os.environ,
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
        "STREAMLIT_SERVER_HEADLESS": "true",
        "HOME": str(tmp_path),
    }
    app_file = Path(__file__).parents[1] / "src" / "gpt2atlas" / "app" / "streamlit_app.py"
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen(
        app_command(app_file, str(tiny_checkpoint), port),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"dashboard did not start: {(tmp_path / 'server.log').read_text()[-2000:]}")
            time.sleep(0.3)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


CLICK_BUTTON = """(() => {{
  const b = Array.from(document.querySelectorAll('button')).find(b => b.innerText.trim() === {label!r});
  if (!b) return false; b.click(); return true; }})()"""
CLICK_LABEL = """(() => {{
  const l = Array.from(document.querySelectorAll('label')).find(l => l.innerText.trim() === {label!r});
  if (!l) return false; l.click(); return true; }})()"""


def test_dashboard_generate_then_attention(dashboard):
    async def scenario(browser) -> None:
        page = await Page.open(browser, dashboard)
        await page.wait_for(CLICK_BUTTON.format(label="Generate"), 60, "the Generate button")
        sample = await page.wait_for(
            "(document.querySelector('.gpt2atlas-sample') || {}).innerText", 60, "the generated text"
        )
        assert len(sample) > 10
        await page.wait_for(CLICK_LABEL.format(label="Attention"), 30, "the Attention view picker")
        await page.wait_for(
            "document.querySelectorAll('.js-plotly-plot .main-svg').length > 0", 60, "the attention figure"
        )
        title = await page.evaluate("document.querySelector('.js-plotly-plot .gtitle').textContent")
        assert "layer 0" in title
        assert page.of("Page.javascriptDialogOpening") == []
        assert [u for u in page.requested_urls() if not u.startswith(("http://127.0.0.1", "data:", "blob:"))] == []

    run_in_browser(scenario)


VIEW_READY = """(() => {
  if (document.querySelector('[data-stale="true"]') || document.querySelector('[data-testid="stSpinner"]')) return false;
  if (document.querySelector('[data-testid="stException"]')) return 'exception';
  return document.querySelectorAll('.js-plotly-plot .main-svg').length > 0
    || !!document.querySelector('.gpt2atlas-sample');
})()"""


def test_every_dashboard_view_shows_its_figure(dashboard):
    from gpt2atlas.app.views import VIEWS

    async def scenario(browser) -> None:
        page = await Page.open(browser, dashboard, width=1280, height=1000)
        await page.wait_for(VIEW_READY, 90, "the landing page (the default prompt continued)")
        keep_screenshot("dashboard-landing", await page.screenshot())
        for view in VIEWS:
            await page.wait_for(CLICK_LABEL.format(label=view), 30, f"the {view} view picker")
            if view == "Geometry":  # on demand: press its button
                await page.wait_for(CLICK_BUTTON.format(label="Run the geometry analysis"), 30, "the Run button")
            await asyncio.sleep(1.0)
            if view == "How it learned":  # a random checkpoint has no training history: the view says so
                await page.wait_for(
                    "document.body.innerText.includes('This view needs a training history')", 30, "the note"
                )
                continue
            if view == "Neuron atlas":  # a random checkpoint has no atlas: the view says how to make one
                await page.wait_for("document.body.innerText.includes('No atlas for this model yet')", 30, "the note")
                continue
            state = await page.wait_for(VIEW_READY, 120, f"the {view} view to draw")
            assert state is True, f"{view}: {state}"
            await asyncio.sleep(0.5)
            png = await page.screenshot()
            keep_screenshot(f"dashboard-{view.lower().replace(' ', '-')}", png)
            assert non_blank_share(png) > 0.02, view
            wide = await page.evaluate("document.documentElement.scrollWidth > document.documentElement.clientWidth")
            assert not wide, f"{view}: wider than the window"
        assert page.js_errors() == []
        assert [u for u in page.requested_urls() if not u.startswith(("http://127.0.0.1", "data:", "blob:"))] == []

    run_in_browser(scenario, timeout=240)
