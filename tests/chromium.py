"""Headless Chromium driven over the DevTools protocol, for the dashboard's browser tests.

`--dump-dom`/`--screenshot` with a virtual-time budget proved racy: virtual time does not wait
for Streamlit's websocket, so the DOM was often dumped before the page was drawn. One
persistent DevTools session polls the live DOM in real time instead, and reads the rendered
plotly figures back (pixel positions of shapes, annotations and ticks) with JavaScript.
The `websockets` client is a Streamlit dependency.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
SAFETY_S = 300.0  # a net for a hung page on a loaded 2-core machine, never a speed budget


class Browser:
    """One Chromium process and one DevTools connection to its first tab (sync API)."""

    def __init__(self, profile: Path, width: int = 1400, height: int = 1000):
        import websockets  # Streamlit's dependency

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
                f"--window-size={width},{height}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 120
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
        self.loop = asyncio.new_event_loop()
        self.conn = self.loop.run_until_complete(
            websockets.connect(pages[0]["webSocketDebuggerUrl"], max_size=1 << 28)
        )
        self._ids = iter(range(1, 1 << 30))
        self.size = (width, height)
        self.viewport(width, height)

    # --- protocol ---------------------------------------------------------------------------
    async def _call(self, method, params):
        ident = next(self._ids)
        await self.conn.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            msg = json.loads(await self.conn.recv())
            if msg.get("id") == ident:
                assert "error" not in msg, msg
                return msg.get("result", {})

    def call(self, method: str, **params):
        return self.loop.run_until_complete(self._call(method, params))

    def eval(self, expression: str):
        """The value of a JavaScript expression in the page (JSON-serialisable)."""
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in r, r["exceptionDetails"]
        return r.get("result", {}).get("value")

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.conn.close())
            self.loop.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    # --- page actions -----------------------------------------------------------------------
    def viewport(self, width: int, height: int) -> None:
        self.size = (width, height)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def wait_for(self, expression: str, what: str, timeout: float = SAFETY_S):
        """Poll (real time) until the JavaScript expression is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.eval(expression)
            if value:
                return value
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}")

    def open(self, url: str, title: str, charts: int = 0) -> None:
        """Navigate and wait until Streamlit has drawn the page: its title, `charts` plotly
        figures with their traces, and no script still running."""
        self.call("Page.navigate", url=url)
        self.settle(title, charts)

    def settle(self, title: str, charts: int = 0) -> None:
        """Wait until the app is idle (no 'Running...' status) and the page is drawn."""
        title_js = json.dumps(title)
        time.sleep(0.3)  # let a rerun that was just triggered register its status widget
        self.wait_for(
            f"""(() => {{
              const h = document.querySelector('h1');
              if (!h || !h.textContent.includes({title_js})) return false;
              if (document.querySelector('[data-testid="stStatusWidget"]')) return false;
              if (document.querySelector('.stSpinner, [data-testid="stSkeleton"]')) return false;
              const plots = [...document.querySelectorAll('.js-plotly-plot')];
              return plots.length >= {charts} && plots.every(p => p._fullLayout);
            }})()""",
            f"page '{title}' with {charts} charts",
        )
        time.sleep(0.5)  # plotly finishes its layout pass after the element appears

    def url(self) -> str:
        return self.eval("window.location.href")

    def screenshot(self, path: Path, full_height: bool = False) -> None:
        width, height = self.size
        if full_height:  # the whole page, as one tall viewport
            tall = self.eval(
                "Math.max(...[...document.querySelectorAll('section, [data-testid=stMain],"
                " [data-testid=stMainBlockContainer]')].map(e => e.scrollHeight))"
            )
            self.viewport(width, max(height, int(tall or height) + 40))
            time.sleep(1.5)
        shot = self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))
        if full_height:
            self.viewport(width, height)
            time.sleep(0.5)

    def text(self) -> str:
        return self.eval("document.body.innerText")

    def html(self) -> str:
        return self.eval("document.documentElement.outerHTML")
