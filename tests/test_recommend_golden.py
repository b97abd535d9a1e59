"""`perfmodel recommend --json` stays byte-identical on 20 fixed questions.

A guard for refactors (shared options object, lazy imports, layer moves): stdout, stderr and
the exit code of each question in tests/fixtures/recommend_golden/questions.json must equal
the files beside it, byte for byte. Seventeen questions vary model, batch, prompt/output
length, GPU, GPU count, TP/PP, SLOs, drafts, profile and mode; three exit 2 on bad input.

The 20 questions run in this one process through `perfmodel.cli.main` (the function the
console script calls), in a fresh subprocess each would take ~20 s on a loaded CI machine;
one question also runs through the installed `perfmodel` console script.

When recommend's output changes ON PURPOSE (a new field, a new SLO search, a new label),
regenerate the goldens and say why in the commit message:
    PYTHONPATH=$PWD python tests/fixtures/recommend_golden/regenerate.py
then review `git diff tests/fixtures/recommend_golden` before committing.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from perfmodel.cli import main

GOLDEN = Path(__file__).resolve().parent / "fixtures" / "recommend_golden"
QUESTIONS = json.loads((GOLDEN / "questions.json").read_text())


def _golden(name: str) -> tuple[int, bytes, bytes]:
    rc = int((GOLDEN / f"{name}.rc").read_text())
    return rc, (GOLDEN / f"{name}.stdout").read_bytes(), (GOLDEN / f"{name}.stderr").read_bytes()


def _run_in_process(args: list[str]) -> tuple[int, bytes, bytes]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["recommend", *args, "--json"])
    return rc, out.getvalue().encode(), err.getvalue().encode()


def test_the_question_set_is_the_agreed_one():
    assert len(QUESTIONS) == 20
    assert len({q["name"] for q in QUESTIONS}) == 20
    exits = [_golden(q["name"])[0] for q in QUESTIONS]
    assert exits.count(2) == 3 and exits.count(0) == 17


@pytest.mark.parametrize("question", QUESTIONS, ids=[q["name"] for q in QUESTIONS])
def test_recommend_json_is_byte_identical(question):
    rc, stdout, stderr = _golden(question["name"])
    got_rc, got_stdout, got_stderr = _run_in_process(question["args"])
    assert got_rc == rc
    assert got_stdout == stdout
    assert got_stderr == stderr
    if rc == 0:
        assert json.loads(got_stdout)["model"]  # a real payload, not an empty golden


def _console_script() -> str:
    beside = Path(sys.executable).parent / "perfmodel"
    found = str(beside) if beside.exists() else shutil.which("perfmodel")
    assert found, "the perfmodel console script is not installed (pip install -e .)"
    return found


def test_console_script_gives_the_golden_bytes():
    question = QUESTIONS[0]
    rc, stdout, stderr = _golden(question["name"])
    proc = subprocess.run(
        [_console_script(), "recommend", *question["args"], "--json"],
        capture_output=True,
        timeout=600,
        check=False,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (rc, stdout, stderr)
