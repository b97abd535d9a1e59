"""End to end: `perfmodel app --headless` serves every page, headless Chromium renders it.

Streamlit renders client-side, so each page is polled until it is drawn; the live DOM must
hold the page's title and a plotly chart, and a screenshot is taken of each page
(PERFMODEL_SAVE_SCREENSHOTS=1 also writes docs/screenshots/critical_length.png).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
PAGES = (  # (url path, title text on the page)
    ("", "perfmodel dashboard"),
    ("Critical_sequence_length", "Critical sequence length"),
    ("SpecPrefill_planner", "SpecPrefill planner"),
    ("Speculative_decoding_planner", "Speculative decoding planner"),
    ("Recommend_and_capacity", "Recommend &amp; capacity"),
    ("Model_explorer_and_validation", "Model explorer &amp; validation"),
)
CHART = ("js-plotly-plot", "plot-container")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    code = "import sys; from perfmodel.cli import main; sys.exit(main(sys.argv[1:]))"
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, "app", "--headless", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300  # safety net on a loaded machine
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"perfmodel app exited early:\n{log.read_text()}")
            time.sleep(0.3)
    else:
        os.killpg(proc.pid, 9)
        pytest.fail(f"streamlit did not come up on {base}:\n{log.read_text()}")
    yield base
    os.killpg(proc.pid, 15)  # the CLI and the streamlit child it started (own session)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
    assert "Traceback" not in log.read_text(), log.read_text()


class Browser:
    """Headless Chromium driven over the DevTools protocol (the `websockets` client, a
    Streamlit dependency). `--dump-dom`/`--screenshot` with a virtual-time budget proved
    racy here: virtual time does not wait for Streamlit's websocket, so the DOM was often
    dumped before the page was drawn. Polling the live DOM in real time is deterministic."""

    def __init__(self, profile: Path):
        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--window-size=1400,1000",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 120  # safety net: Chromium start on a loaded machine
        port = None
        while port is None and time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            match = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            if match:
                port = int(match.group(1))
            elif not line and self.proc.poll() is not None:
                break
        assert port, "chromium did not start its DevTools endpoint"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            pages = [t for t in json.load(r) if t["type"] == "page"]
        self.ws_url = pages[0]["webSocketDebuggerUrl"]

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def render(self, url, done, png=None, height=1000, timeout=300.0) -> str:
        """Load url, wait (real time) until done(html), then optionally save a screenshot."""
        return asyncio.run(self._render(url, done, png, height, timeout))

    async def _render(self, url, done, png, height, timeout) -> str:
        websockets = pytest.importorskip("websockets")

        conn = await websockets.connect(self.ws_url, max_size=1 << 28)
        counter = iter(range(1, 1 << 30))

        async def call(method, **params):
            ident = next(counter)
            await conn.send(json.dumps({"id": ident, "method": method, "params": params}))
            while True:
                msg = json.loads(await conn.recv())
                if msg.get("id") == ident:
                    assert "error" not in msg, msg
                    return msg.get("result", {})

        try:
            await call(
                "Emulation.setDeviceMetricsOverride",
                width=1400,
                height=height,
                deviceScaleFactor=1,
                mobile=False,
            )
            await call("Page.navigate", url=url)
            deadline = time.monotonic() + timeout
            html = ""
            while time.monotonic() < deadline:
                r = await call(
                    "Runtime.evaluate",
                    expression="document.documentElement.outerHTML",
                    returnByValue=True,
                )
                html = r.get("result", {}).get("value", "") or ""
                if done(html):
                    break
                await asyncio.sleep(0.5)
            if png is not None:
                await asyncio.sleep(2.0)  # plotly draws after the element appears
                shot = await call("Page.captureScreenshot", format="png")
                png.write_bytes(base64.b64decode(shot["data"]))
            return html
        finally:
            await conn.close()


def test_every_page_renders_in_chromium(server, tmp_path):
    shots = tmp_path / "shots"
    shots.mkdir()
    save = os.environ.get("PERFMODEL_SAVE_SCREENSHOTS") == "1"
    browser = Browser(tmp_path / "profile")
    try:
        for path, title in PAGES:
            url = f"{server}/{path}"
            name = path or "Home"

            def done(html, title=title, chart=bool(path)):
                return title in html and (not chart or any(c in html for c in CHART))

            png = shots / f"{name}.png"
            html = browser.render(url, done, png)
            assert title in html, f"{url}: title '{title}' not in the rendered DOM"
            if path:  # every page but Home draws at least one chart
                assert any(c in html for c in CHART), f"{url}: no plotly chart in the DOM"
            assert "Traceback" not in html, f"{url}: a traceback in the page"
            for prefix in ("Input error:", "Could not compute this view"):  # app.common.guard
                assert prefix not in html, f"{url}: an error on the page"
            assert png.stat().st_size > 40_000, f"{url}: blank screenshot"
            if save and path == "Critical_sequence_length":
                target = ROOT / "docs" / "screenshots" / "critical_length.png"
                target.parent.mkdir(parents=True, exist_ok=True)
                tall = shots / "critical_length_docs.png"  # tall enough for both charts
                browser.render(url, done, tall, height=1450)
                shutil.copyfile(tall, target)
    finally:
        browser.close()
