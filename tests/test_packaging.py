"""Data files (hardware specs, model configs, profiles, published tables) are found from an
installed wheel as well as from the editable checkout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

PROBE = """
import perfmodel.paths as p
from perfmodel.specs.hardware import load_gpu
from perfmodel.specs.models import load_model
from perfmodel.accuracy.observations import published_tables
from perfmodel.specs.profile import load_profile
assert '{site}' in str(p.PACKAGE_DIR), p.PACKAGE_DIR
assert load_gpu('h100').name == 'h100-sxm'
assert load_model('405b').num_layers == 126
assert load_profile('vllm-h100').framework_version == '0.24.0'
assert len(published_tables()) >= 7
from perfmodel.specs.optables import OPTABLE_DIR, load_optable
assert load_optable('h100-sxm__vllm-0.24.0').provenance['license'] == 'Apache-2.0'
assert load_optable('h200__torch-cudagraph').gpu == 'h200'
assert (OPTABLE_DIR / 'NOTICE').is_file()
from perfmodel.specs import optable_store
assert optable_store.load(OPTABLE_DIR / 'h100-sxm__vllm-0.24.0.csv.gz') is not None  # the binary copy
from perfmodel.specs import yamlio
assert yamlio._mirror(), 'no YAML mirror'  # shipped YAML read as JSON
import pathlib, app
assert len(list((pathlib.Path(app.__file__).parent / 'pages').glob('*.py'))) == 5
from perfmodel.cli.commands.app import home_script
assert '{site}' in str(home_script())
print('ok')
"""


def test_wheel_ships_data_files(tmp_path):
    wheel_dir, site = tmp_path / "wheel", tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheel_dir),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(wheel_dir.glob("perfmodel-*.whl"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(site=site)],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # not the repository: nothing may be found through the working directory
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
    )
    assert proc.stdout.strip() == "ok", proc.stderr
