"""`perfmodel app`: start the Streamlit dashboard (app/Home.py and app/pages/*.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from perfmodel.cli.typer_app import app as cli
from perfmodel.errors import PerfModelError


def home_script() -> Path:
    """app/Home.py beside the perfmodel package (source checkout or installed wheel)."""
    candidate = Path(__file__).resolve().parents[3] / "app" / "Home.py"
    if candidate.is_file():
        return candidate
    import importlib.util

    spec = importlib.util.find_spec("app")
    if spec is not None and spec.submodule_search_locations:
        installed = Path(next(iter(spec.submodule_search_locations))) / "Home.py"
        if installed.is_file():
            return installed
    raise PerfModelError("the dashboard (app/Home.py) is not installed beside perfmodel")


# Streamlit's upload box states its limit (default 200 MB); the dashboard refuses uploads over
# app.compute.MAX_UPLOAD_BYTES (2 MB), so the box must say the same (tests/test_app.py checks).
MAX_UPLOAD_MB = 2


def streamlit_command(script: Path, port: int, headless: bool) -> list[str]:
    """The `streamlit run` command line. Headless only when asked: otherwise Streamlit's own
    detection decides (no display -> headless), so no `--server.headless false` that would
    make it wait at its e-mail prompt on a server."""
    cmd = [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port)]
    if headless:
        cmd += ["--server.headless", "true"]
    return cmd + [
        "--server.maxUploadSize",
        str(MAX_UPLOAD_MB),
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",  # no "Deploy" button or developer menu for the dashboard's users
        "viewer",
    ]


def run_child(cmd: list[str], env: dict) -> int:
    """Run `cmd`, forwarding SIGTERM and SIGINT to it, and return its exit code once it has
    exited (128 + signal number when a signal ended it, as a shell reports it)."""
    try:
        child = subprocess.Popen(cmd, env=env)
    except OSError as exc:
        raise PerfModelError(f"cannot start streamlit: {exc}") from None

    def forward(signum, _frame):
        if child.poll() is None:
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while True:
            try:
                code = child.wait()
                break
            except KeyboardInterrupt:  # a second Ctrl-C while forwarding: keep waiting
                continue
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - code if code < 0 else code


@cli.command("app")
def run_app(
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to serve on.")] = 8501,
    headless: Annotated[
        bool,
        typer.Option(
            "--headless",
            help="Do not open a browser (servers, tests); default: Streamlit decides.",
        ),
    ] = False,
) -> None:
    """Launch the Streamlit dashboard (the same model as the CLI; Ctrl-C or SIGTERM stops it
    and the Streamlit server with it)."""
    script = home_script()
    env = dict(os.environ)
    root = str(script.parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    code = run_child(streamlit_command(script, port, headless), env)
    if code:
        raise typer.Exit(code)
