"""The typer pin (pyproject: typer>=0.26,<0.29): typer 0.29 validates every option through a
pydantic TypeAdapter, which imports pydantic (~50 ms and ~85 modules of a ~600 ms cold
start, issue 21); 0.28 parses the same options without it. A recommend run through the
real entry point must answer without importing pydantic."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO

PROBE = (
    "import atexit, sys\n"
    "atexit.register(lambda: sys.stderr.write('pydantic modules: %d\\n' % "
    "sum(m.split('.')[0] == 'pydantic' for m in sys.modules)))\n"
    "from perfmodel.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def test_recommend_answers_without_importing_pydantic():
    args = ["recommend", "--model", "8b", "--bsz", "4", "--json"]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=REPO, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["deployment"]  # a real answer, through the entry point
    assert "pydantic modules: 0" in proc.stderr, (
        f"{proc.stderr.strip()} — typer >= 0.29 imports pydantic for option parsing; "
        "pyproject pins typer<0.29 (cold start, issue 21)"
    )
