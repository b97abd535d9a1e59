"""Bad input gets one clear line on stderr and exit 2, through the real entry point (issue 13)."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd

from perfmodel.paths import PUBLISHED_DIR
from tests.conftest import REPO, assert_one_line_error, run_cli


def test_capacity_unknown_profile_is_named():
    proc = run_cli("capacity", "--model", "8b", "--qps", "1", "--gpus", "h100", "--profile", "nope")
    assert_one_line_error(proc, "unknown profile 'nope'")
    assert "TP degree" not in proc.stderr


def test_tensor_parallel_without_interconnect_is_an_error():
    # cpu-generic has link_bandwidth_gbps 0: no 1 B/s stand-in link, an error instead
    proc = run_cli("predict", "--model", "1b", "--gpu", "cpu-generic", "--num-gpus", "2")
    assert_one_line_error(proc, "no interconnect", "--tp 1")


def test_validate_names_an_unknown_profile_in_the_csv(tmp_path):
    frame = pd.read_csv(PUBLISHED_DIR / "specprefill_70b_baseline.csv")
    frame["profile"] = "nope"
    path = tmp_path / "rows.csv"
    frame.to_csv(path, index=False)
    proc = run_cli("validate", "--measurements", str(path))
    assert_one_line_error(proc, "unknown profile 'nope'", "column 'profile'")


def test_torch_runner_without_torch_is_one_line(tmp_path):
    # torch made unimportable in the child: the CLI must say so, not print a traceback
    code = (
        "import sys; sys.modules['torch'] = None; "
        "from perfmodel.cli.main import main; sys.exit(main(sys.argv[1:]))"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "profile",
            "--runner",
            "torch",
            "--model",
            str(REPO / "tests/fixtures/profiler/tiny-llama/config.json"),
            "--device",
            "cpu",
            "--batch",
            "1",
            "--prompt-len",
            "16",
            "--output-len",
            "2",
            "--out",
            str(tmp_path / "out.csv"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert_one_line_error(proc, "needs PyTorch")
    assert not (tmp_path / "out.csv").exists()


def test_config_without_context_window_is_an_error(tmp_path):
    config = json.loads((REPO / "tests/fixtures/profiler/tiny-llama/config.json").read_text())
    del config["max_position_embeddings"]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    proc = run_cli("predict", "--model", str(path))
    assert_one_line_error(proc, "max_position_embeddings")
