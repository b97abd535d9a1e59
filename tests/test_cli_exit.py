"""The console script ends a finished run without the interpreter's teardown
(cli.main.end_process): what a normal exit does that matters must still happen. Each case is a
fresh process through the real entry point (a handful of subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENTRY = "from perfmodel.cli.main import entry; sys.argv[0] = 'perfmodel'; entry()"


def _run(prelude: str, args: list[str]) -> subprocess.CompletedProcess:
    code = f"import sys\n{prelude}\n{ENTRY}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, timeout=120
    )


def test_atexit_handlers_still_run_and_the_exit_code_is_kept(tmp_path):
    mark = tmp_path / "ran"
    prelude = f"import atexit\natexit.register(lambda: open({str(mark)!r}, 'w').write('ran'))"
    done = _run(prelude, ["predict", "--model", "8b", "--batch", "0", "--json"])
    assert done.returncode == 2, done.stderr
    assert done.stderr.decode().startswith("error: ")
    assert mark.read_text() == "ran"


def test_a_large_answer_reaches_the_pipe_whole():
    done = _run("", ["validate", "--json"])
    assert done.returncode == 0, done.stderr
    assert len(done.stdout) > 8192  # more than one buffer of the text stream
    assert json.loads(done.stdout)  # complete: the last buffered bytes were flushed


def test_another_running_thread_gets_the_normal_exit(tmp_path):
    """A thread still running when the command ends is waited for (os._exit would cut it)."""
    mark = tmp_path / "thread"
    prelude = (
        "import threading, time\n"
        "def late():\n"
        "    time.sleep(0.5)\n"
        f"    open({str(mark)!r}, 'w').write('done')\n"
        "threading.Thread(target=late).start()"
    )
    done = _run(prelude, ["list", "--json"])
    assert done.returncode == 0, done.stderr
    assert mark.read_text() == "done"
