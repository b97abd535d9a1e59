"""The CLI imports only what the command it runs needs (issue 21: cold start).

`perfmodel.cli.main.COMMANDS` says which module registers which commands; a run imports only
the module of the command it names. These tests check that map against what the modules
really register, and that a `recommend` run leaves the heavy packages and the other
commands' modules unimported (benchmarks/cold_start.py measures the time itself).
"""

from __future__ import annotations

import json
import subprocess
import sys

from perfmodel.cli import main as cli_main
from perfmodel.cli.main import COMMANDS, load_commands, modules_for
from perfmodel.cli.typer_app import app
from tests.conftest import REPO

# pydantic is not listed: typer (0.2x) imports it to coerce option values.
HEAVY = ("pandas", "scipy", "plotly", "streamlit", "torch", "matplotlib")


def _registered() -> dict[str, tuple[str, ...]]:
    """Module -> command names, read from the typer app after importing every module."""
    cli_main  # noqa: B018 - the entry point module is imported
    load_commands()
    found: dict[str, list[str]] = {}
    for command in app.registered_commands:
        name = command.name or command.callback.__name__.replace("_", "-")
        found.setdefault(command.callback.__module__, []).append(name)
    for group in app.registered_groups:  # a sub-app (`perfmodel tables import`)
        module = group.typer_instance.registered_commands[0].callback.__module__
        found.setdefault(module, []).append(group.name)
    prefix = "perfmodel.cli.commands."
    assert all(m.startswith(prefix) for m in found), found
    return {m.removeprefix(prefix): tuple(names) for m, names in found.items()}


def test_command_map_matches_what_each_module_registers():
    assert _registered() == COMMANDS


def test_a_named_command_loads_its_module_only():
    everything = tuple(COMMANDS)
    assert modules_for(["recommend", "--bsz", "8"]) == ("recommend",)
    assert modules_for(["min-acceptance"]) == ("specdecode",)
    assert modules_for(["profile", "--ops"]) == ("profile",)
    assert modules_for([]) == everything
    assert modules_for(["--help"]) == everything
    assert modules_for(["recomend"]) == everything  # click then suggests the name


def test_recommend_run_imports_no_heavy_package_and_no_other_command():
    code = (
        "import io, contextlib, json, sys\n"
        "from perfmodel.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    rc = main(['recommend', '--model', '405b', '--bsz', '64', '--json'])\n"
        "print(json.dumps([rc, sorted(sys.modules)]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    rc, modules = json.loads(proc.stdout)
    assert rc == 0
    top = {m.split(".")[0] for m in modules}
    assert [h for h in HEAVY if h in top] == []
    assert "rich" not in top  # --json: nothing is rendered, so rich stays out
    commands = {m for m in modules if m.startswith("perfmodel.cli.commands.")}
    assert "perfmodel.cli.commands.recommend" in commands
    assert commands <= {"perfmodel.cli.commands.recommend", "perfmodel.cli.commands.common"}
    assert "profiler" not in top and "perfmodel.cli.commands.profile" not in modules
