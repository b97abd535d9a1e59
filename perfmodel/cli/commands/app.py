"""`perfmodel app`: start the Streamlit dashboard (app/Home.py and app/pages/*.py)."""

from __future__ import annotations

import os
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


@cli.command("app")
def run_app(
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to serve on.")] = 8501,
    headless: Annotated[
        bool, typer.Option("--headless", help="Do not open a browser (servers, tests).")
    ] = False,
) -> None:
    """Launch the Streamlit dashboard (the same model as the CLI; Ctrl-C stops it)."""
    script = home_script()
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(script),
        "--server.port",
        str(port),
        "--server.headless",
        "true" if headless else "false",
        "--browser.gatherUsageStats",
        "false",
    ]
    env = dict(os.environ)
    root = str(script.parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    try:
        code = subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except FileNotFoundError as exc:
        raise PerfModelError(f"cannot start streamlit: {exc}") from None
    if code:
        raise typer.Exit(code)
