"""One check for every file a command writes (planners.feasibility.outputs.check_output_path),
before any work: folder exists, not a folder, a writable regular file, never one of the
command's inputs, the format's extension. Through the entry point, one line and exit 2."""

from __future__ import annotations

import pytest

from perfmodel.cli.main import main
from tests.conftest import REPO

PUBLISHED = REPO / "validation" / "published" / "specprefill_8b_batch1.csv"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (("capacity", "--qps", "1", "--report", "./"), "is a directory"),
        (("capacity", "--qps", "1", "--report", "/proc/x.html"), "cannot write in /proc"),
        (("capacity", "--qps", "1", "--report", "/dev/full"), "not a regular file"),
        (("validate", "--report", "/dev/full"), "not a regular file"),
        (("validate", "--report", "{tmp}/r.txt"), "expected a .html or .htm file"),
        (("validate", "--measurements", str(PUBLISHED), "--report", str(PUBLISHED)), "same file"),
        (("calibrate", "--table", "specprefill_8b_batch1", "--out", "{tmp}"), "is a directory"),
    ],
)
def test_an_unwritable_output_is_refused_before_any_work(argv, says, tmp_path, capsys):
    before = PUBLISHED.read_bytes()
    code = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and says in lines[0], err
    assert PUBLISHED.read_bytes() == before  # the input is untouched
