"""Imports go one way (DESIGN.md): errors/paths <- specs <- core <- planners <- accuracy <-
cli/reports/app. Every import of every module is checked, module-level and function-local
(ast walk), so a lazy import cannot hide a dependency on a higher layer.

Layers: perfmodel.errors and perfmodel.paths 0, specs 1, core 2 (and the package root, which
re-exports core.api), planners 3, accuracy 4, cli, reports and app 5. The profiler may import
specs, core, errors, paths, the CLI's typer app and itself, nothing else of perfmodel; the
launcher scripts in profiler/gpu/ (run on a lent GPU machine from the source tree) call the
CLI's entry point, so they sit above everything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LAYERS = {
    "perfmodel.errors": 0,
    "perfmodel.paths": 0,
    "perfmodel.specs": 1,
    "perfmodel.core": 2,
    "perfmodel": 2,  # the package root: re-exports perfmodel.core.api
    "perfmodel.planners": 3,
    "perfmodel.accuracy": 4,
    "perfmodel.cli": 5,
    "perfmodel.reports": 5,
    "app": 5,
    "profiler": 5,
}
PROFILER_MAY_IMPORT = (
    "perfmodel.errors",
    "perfmodel.paths",
    "perfmodel.specs",
    "perfmodel.core",
    "perfmodel.cli.typer_app",
    "profiler",
)


def layer_of(module: str) -> int | None:
    """The layer of a dotted module name (longest matching prefix); None = not ours."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in LAYERS:
            return LAYERS[key]
    return None


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path, here: str | None = None) -> list[tuple[int, str]]:
    """(line, imported module) for every import statement anywhere in the file; `from a
    import b` yields a.b where a.b is one of our modules or packages, else a."""
    tree = ast.parse(path.read_text(), str(path))
    here = here or module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for a in node.names:
                sub = f"{base}.{a.name}"
                is_module = (REPO / Path(*sub.split("."))).with_suffix(".py").is_file() or (
                    REPO / Path(*sub.split("."))
                ).is_dir()
                out.append((node.lineno, sub if is_module else base))
    return out


def sources() -> list[Path]:
    files = []
    for top in ("perfmodel", "app", "profiler"):
        files += sorted((REPO / top).rglob("*.py"))
    return [f for f in files if "__pycache__" not in f.parts]


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(REPO)))
def test_imports_point_down(path):
    here = module_name(path)
    mine = layer_of(here)
    assert mine is not None, f"{here} has no layer: add it to LAYERS"
    bad = []
    for line, target in imports_of(path):
        theirs = layer_of(target)
        if theirs is None:
            continue  # third-party or standard library
        if here.startswith("profiler.gpu"):
            continue  # launcher scripts: the top of the stack
        if here.startswith("profiler"):
            if not target.startswith(PROFILER_MAY_IMPORT):
                bad.append(f"line {line}: {target} (the profiler may not import it)")
        elif theirs > mine:
            bad.append(f"line {line}: {target} (layer {theirs} > {mine})")
    assert not bad, f"{here} imports upward: " + "; ".join(bad)


def test_the_walk_sees_function_local_and_relative_imports(tmp_path):
    """The checker itself: lazy and relative imports of a higher layer are found."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "def f():\n    from perfmodel.cli.commands.common import basis\n"
        "from ..accuracy import validate\n"
    )
    found = imports_of(probe, "perfmodel.planners.probe")
    assert (2, "perfmodel.cli.commands.common") in found
    assert (3, "perfmodel.accuracy.validate") in found
    assert layer_of("perfmodel.cli.commands.common") > layer_of("perfmodel.planners.probe")
    assert layer_of("perfmodel.accuracy.validate") > layer_of("perfmodel.planners.probe")


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(REPO)))
def test_modules_stay_small(path):
    """One job per module (STYLE.md 6; issue 13): at most 500 lines."""
    assert len(path.read_text().splitlines()) <= 500, f"{path.name}: split it by concern"
