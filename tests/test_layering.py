"""Imports go one way (tests/layering.py states the rules); the checker is tested by planting
each evasion in a copy of the tree and expecting it to fail there."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.layering import TOP_LEVEL, check, python_files

REPO = Path(__file__).resolve().parent.parent
COST = Path("perfmodel/core/cost.py")
PAGE = Path("app/pages/4_Recommend_and_capacity.py")


def test_the_repository_follows_the_import_rules():
    assert check(REPO) == []


def test_the_checker_reads_every_package():
    """Nothing skipped: each known top-level package present holds modules that were read."""
    files = python_files(REPO)
    tops = {f.relative_to(REPO).parts[0] for f in files}
    assert tops == set(TOP_LEVEL)
    assert len([f for f in files if f.is_relative_to(REPO / "perfmodel")]) > 50


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """The Python files of the repository (the checker reads nothing else), copied once."""
    root = tmp_path_factory.mktemp("pristine")
    for f in python_files(REPO):
        dest = root / f.relative_to(REPO)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, dest)
    assert check(root) == []
    return root


@pytest.fixture
def tree(pristine, tmp_path) -> Path:
    root = tmp_path / "tree"
    shutil.copytree(pristine, root)
    return root


def _append(root: Path, rel: Path, code: str) -> None:
    path = root / rel
    path.write_text(path.read_text() + "\n" + code + "\n")


def _fails(root: Path, *expected: str) -> list[str]:
    problems = check(root)
    for text in expected:
        assert any(text in p for p in problems), (text, problems)
    return problems


# --- the five evasions of issue 21, each planted in core/cost.py or the dashboard -----------
def test_an_importlib_string_import_fails(tree):
    _append(tree, COST, 'import importlib\n\nCLI = importlib.import_module("perfmodel.cli.main")')
    _fails(tree, "string import of perfmodel.cli.main", "core may not import cli")


def test_a_validation_import_fails(tree):
    _append(tree, COST, "def f():\n    from validation import build_profiler_optable\n")
    _fails(tree, "core may not import validation")


def test_a_tests_import_fails(tree):
    _append(tree, COST, "from tests.conftest import run_cli")
    _fails(tree, "core may not import tests")


def test_an_unknown_top_level_package_fails(tree):
    (tree / "extras").mkdir()
    (tree / "extras" / "helpers.py").write_text("from perfmodel.cli import main\n")
    _fails(tree, "extras: unknown top-level package")


def test_an_app_to_cli_import_fails(tree):
    _append(tree, PAGE, "from perfmodel.cli.commands.capacity import capacity")
    _fails(tree, "app may not import cli")


def test_a_renamed_or_empty_tree_fails(tree, tmp_path):
    (tree / "perfmodel").rename(tree / "perfmodel2")
    _fails(tree, "perfmodel2: unknown top-level package", "perfmodel/core: required folder")
    shutil.rmtree(tree / "perfmodel2" / "core")
    (tmp_path / "empty").mkdir()
    assert check(tmp_path / "empty") == [f"{tmp_path / 'empty'}: no Python files to check"]


# --- the other rules --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ('X = __import__("perfmodel.cli.main")', "string import of perfmodel.cli.main"),
        (
            'import importlib.util\nS = importlib.util.find_spec("perfmodel.accuracy")',
            "core may not import accuracy",
        ),
        ("import importlib\nNAME = 'app'\nM = importlib.import_module(NAME)", "computed name"),
        ("import importlib\nLOAD = importlib.import_module", "import_module used as a value"),
        ("from importlib import import_module", "imports importlib.import_module by name"),
        ("from runpy import run_path", ""),  # imported only: its call is what loads code
        ("def f():\n    from perfmodel.planners import recommend", "core may not import planners"),
        ("from ..accuracy import validate", "core may not import accuracy"),
        ("import streamlit", ""),  # third-party: fine
    ],
)
def test_hidden_local_and_relative_imports_are_seen(tree, code, expected):
    _append(tree, COST, code)
    problems = check(tree)
    if expected:
        assert any(expected in p for p in problems), problems
    else:
        assert problems == []


@pytest.mark.parametrize(
    ("rel", "code", "expected"),
    [
        (Path("perfmodel/planners/slo.py"), "from perfmodel.accuracy import validate", "planners"),
        (
            Path("perfmodel/cli/commands/app.py"),
            "from app import compute",
            "cli may not import app",
        ),
        (Path("profiler/sweep.py"), "from perfmodel.cli import typer_app", "profiler may not"),
        (Path("perfmodel/specs/units.py"), "import benchmarks.bench_sweep", "specs may not"),
        (Path("perfmodel/core/api.py"), "from profiler import timer", "core may not import"),
    ],
)
def test_edges_within_and_across_layers_are_ruled(tree, rel, code, expected):
    _append(tree, rel, code)
    _fails(tree, expected)


def test_launching_the_app_by_path_is_the_one_cli_to_app_exception(tree):
    rel = Path("perfmodel/cli/commands/predict.py")
    _append(tree, rel, 'import importlib.util\nHOME = importlib.util.find_spec("app")')
    _fails(tree, "cli may not import app")  # only the `app` command may locate it


def test_module_and_package_cycles_fail(tree):
    _append(tree, Path("profiler/timer.py"), "from profiler import ops_bench")
    _fails(tree, "module cycle: profiler.ops_bench -> profiler.ops_comm -> profiler.timer")


def test_a_package_cycle_without_a_module_cycle_fails(tree):
    """capacity.search imports speculation.deploy; deploy importing capacity.workload (which
    imports nothing of speculation) closes a cycle between the two packages only."""
    rel = Path("perfmodel/planners/speculation/deploy.py")
    _append(tree, rel, "def f():\n    import perfmodel.planners.capacity.workload\n")
    assert check(tree) == [
        "package cycle: perfmodel.planners.capacity -> perfmodel.planners.speculation"
    ]


def test_a_module_outside_every_component_fails(tree):
    (tree / "perfmodel" / "helpers.py").write_text("X = 1\n")
    _fails(tree, "perfmodel.helpers: in no component")


def test_no_module_grows_into_a_monolith():
    """Modules are small because each does one thing (STYLE.md 13), not because of a count;
    800 lines is a bound no cohesive module here comes near (largest: ~500), set high so that
    it never forces a split by line count, only flags a file doing several jobs."""
    big = {
        str(f.relative_to(REPO)): n
        for f in python_files(REPO)
        if f.relative_to(REPO).parts[0] in ("perfmodel", "profiler", "app")
        and (n := len(f.read_text().splitlines())) > 800
    }
    assert big == {}
