"""`perfmodel app`: SIGTERM/SIGINT reach the Streamlit child, and headless is Streamlit's call.

The signal test polls for state (the server answering its health check) and uses generous
safety timeouts only as a net: no step races a wall-clock budget.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from perfmodel.cli.commands.app import MAX_UPLOAD_MB, home_script, streamlit_command

ROOT = Path(__file__).resolve().parent.parent
SAFETY_S = 300  # a net for a hung process, never a performance budget


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid: int) -> list[int]:
    """Direct children of `pid` (Linux /proc)."""
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text().split() if (task / "children").exists() else []
        out += [int(c) for c in text]
    return out


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until(predicate, what: str, proc=None) -> None:
    deadline = time.monotonic() + SAFETY_S
    while not predicate():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"perfmodel app exited (code {proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"safety timeout waiting for {what}")
        time.sleep(0.2)


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


def test_headless_left_to_streamlit_unless_asked():
    script = home_script()
    default = streamlit_command(script, 8501, headless=False)
    assert "--server.headless" not in default
    asked = streamlit_command(script, 8501, headless=True)
    assert asked[asked.index("--server.headless") + 1] == "true"


def test_upload_limit_matches_the_dashboard():
    sys.path.insert(0, str(ROOT))
    from app import compute

    assert MAX_UPLOAD_MB * 1_000_000 == compute.MAX_UPLOAD_BYTES
    cmd = streamlit_command(home_script(), 8501, headless=True)
    assert cmd[cmd.index("--server.maxUploadSize") + 1] == str(MAX_UPLOAD_MB)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_streamlit_child(tmp_path, sig):
    port = free_port()
    code = "import sys; from perfmodel.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = tmp_path / "app.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, "app", "--headless", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(lambda: children(proc.pid), "the streamlit child to start", proc)
        child = children(proc.pid)[0]
        wait_until(lambda: healthy(port), "streamlit to serve", proc)
        proc.send_signal(sig)  # the CLI only, as a service manager or `kill` would
        proc.wait(timeout=SAFETY_S)
        wait_until(lambda: not alive(child), "the streamlit child to exit")
        assert not healthy(port)
        assert proc.returncode in (0, 128 + sig), (proc.returncode, log.read_text())
        assert "Traceback" not in log.read_text(), log.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
