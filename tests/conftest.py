"""Shared test helpers: run the real CLI entry point in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CLI = [
    sys.executable,
    "-c",
    "import sys; from perfmodel.cli import main; sys.exit(main(sys.argv[1:]))",
]


def run_cli(*args: str, check_json: bool = False, timeout: float = 600):
    proc = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO)
    if check_json:
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)
    return proc


@pytest.fixture
def cli():
    return run_cli


def assert_one_line_error(proc, *fragments: str) -> None:
    """Exit 2, exactly one line on stderr, no traceback, mentioning the fragments."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment.lower() in lines[0].lower(), lines[0]
