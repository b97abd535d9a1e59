"""The import rules of the repository as a checker that runs on any root (tests/test_layering.py
runs it on this checkout and on copies with violations planted in them).

Components and what each may import (DESIGN.md: specs <- core <- planners <- accuracy <-
cli/app/reports; an arrow points at what is imported):

    base (perfmodel.errors, perfmodel.paths) <- specs <- core <- planners <- accuracy
    <- reports <- cli and app;  profiler sits on core (the CLI's `profile` command calls it);
    perfmodel/__init__.py (the public API) on core; profiler/gpu/ (scripts run by path on a lent
    GPU machine) run the CLI as a child process (`python -m perfmodel`), importing none of it;
    validation/, benchmarks/ and tests/ use the package and are never imported by it.

Every import is an edge: module-level and function-local, relative ones resolved, and string
imports (importlib.import_module, __import__, importlib.util.find_spec, runpy.run_module with
a literal name). A string import of one of our modules is a violation in itself (an import
statement says the same and is seen by every tool); so is any import machinery that hides
its target (a non-literal name, importlib.import_module or __import__ taken as a value,
spec_from_file_location, runpy.run_path) outside tests/. The one exception: the `app` command
locates app/Home.py with find_spec("app") to launch Streamlit on it by path (no import).

A tree the checker does not know fails: every top-level folder or file holding Python must be
a known package, every module must fall in a component, the component folders must exist and
hold modules, and cycles between modules or between packages fail.

Edges are the import statements as written: importing perfmodel.cli.typer_app also runs
perfmodel/cli/__init__.py, which is not counted as an edge of the importer.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

# top-level name -> component of the modules under it (refined by COMPONENTS)
TOP_LEVEL = ("perfmodel", "profiler", "app", "validation", "tests", "benchmarks", "hardware_specs")
# dotted prefix -> component; a key ending in "=" matches that module only, not its children
COMPONENTS = {
    "perfmodel=": "api",
    "perfmodel.errors": "base",
    "perfmodel.paths": "base",
    "perfmodel.specs": "specs",
    "perfmodel.core": "core",
    "perfmodel.planners": "planners",
    "perfmodel.accuracy": "accuracy",
    "perfmodel.reports": "reports",
    "perfmodel.cli": "cli",
    "perfmodel.__main__": "cli",  # python -m perfmodel
    "profiler": "profiler",
    "profiler.gpu": "gpu_scripts",
    "app": "app",
    "validation": "validation",
    "benchmarks": "benchmarks",
    "tests": "tests",
    "hardware_specs": "data",
}
_LIBRARY = ("base", "specs", "core", "planners", "accuracy", "reports", "api")
ALLOWED = {
    "base": set(),
    "data": set(),
    "specs": {"base"},
    "core": {"base", "specs"},
    "api": {"base", "specs", "core"},
    "planners": {"base", "specs", "core"},
    "accuracy": {"base", "specs", "core", "planners"},
    "reports": {"base", "specs", "core", "planners", "accuracy"},
    "profiler": {"base", "specs", "core"},
    "cli": {"base", "specs", "core", "planners", "accuracy", "reports", "profiler"},
    "app": {"base", "specs", "core", "planners", "accuracy", "reports", "api"},
    "gpu_scripts": {"base", "specs", "core", "profiler"},  # they run `python -m perfmodel`
    # validation scripts may check a test helper against its original (check_vllm_bench_writer)
    "validation": {*_LIBRARY, "profiler", "data", "tests"},
    "benchmarks": {*_LIBRARY, "profiler", "cli", "app"},  # they time the CLI and the app
    # tests load validation scripts by path (spec_from_file_location), never by import
    "tests": {*_LIBRARY, "cli", "profiler", "gpu_scripts", "app", "data", "tests"},
}
# folders that must exist and hold modules: a renamed or emptied layer fails
REQUIRED = (
    "perfmodel/specs",
    "perfmodel/core",
    "perfmodel/planners",
    "perfmodel/accuracy",
    "perfmodel/cli",
    "profiler",
    "app",
    "tests",
)
# (importing module, located top-level package): find_spec to launch a script by its path
LOCATE_BY_PATH = {("perfmodel.cli.commands.app", "app")}
# modules allowed to call find_spec on a computed name (it locates, never imports): the data
# packages beside perfmodel (paths), the third-party packages a GPU machine needs (env_check)
LOCATE_COMPUTED = {"perfmodel.paths", "profiler.gpu.env_check"}
SKIP_DIRS = {"__pycache__", "build", "dist", "node_modules"}
STRING_IMPORTS = {"import_module", "__import__", "run_module"}
HIDDEN_LOADERS = {"spec_from_file_location", "run_path", "SourceFileLoader", "load_source"}


@dataclass(frozen=True)
class Edge:
    source: str  # importing module
    target: str  # imported module (ours: resolved to a module or package)
    line: int
    how: str  # "import", "string import", "locate"


def python_files(root: Path) -> list[Path]:
    """Every .py file under root, hidden and cache folders left out."""
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).parts
        if any(p.startswith(".") or p in SKIP_DIRS or p.endswith(".egg-info") for p in rel[:-1]):
            continue
        out.append(path)
    return out


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def component_of(module: str) -> str | None:
    """The component of one of our modules (None: not in any component)."""
    best, found = -1, None
    for key, comp in COMPONENTS.items():
        exact = key.endswith("=")
        name = key.rstrip("=")
        if module == name or (not exact and module.startswith(name + ".")):
            if len(name) > best:
                best, found = len(name), comp
    return found


class _Modules:
    """Which dotted names are modules or packages of the tree."""

    def __init__(self, root: Path, files: list[Path]):
        self.names = {module_name(root, f) for f in files}
        self.packages = {module_name(root, f) for f in files if f.name == "__init__.py"}
        # folders holding modules are packages too (namespace packages, profiler/gpu)
        for f in files:
            parts = module_name(root, f).split(".")
            for n in range(1, len(parts)):
                self.packages.add(".".join(parts[:n]))
        self.names |= self.packages

    def resolve(self, dotted: str) -> str | None:
        """The longest prefix of `dotted` that is ours (None: third-party or stdlib)."""
        parts = dotted.split(".")
        for n in range(len(parts), 0, -1):
            cand = ".".join(parts[:n])
            if cand in self.names:
                return cand
        return None


def _call_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _edges_of(path: Path, here: str, is_pkg: bool, mods: _Modules, problems: list[str]):
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = here if is_pkg else here.rpartition(".")[0]
    comp = component_of(here)
    edges: list[Edge] = []
    calls = set()

    def add(target: str, line: int, how: str) -> None:
        ours = mods.resolve(target)
        if ours is not None:
            edges.append(Edge(here, ours, line, how))
        elif target.split(".")[0] in TOP_LEVEL:
            # a package of ours that this tree does not hold (renamed, deleted)
            edges.append(Edge(here, target, line, how))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                add(a.name, node.lineno, "import")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for a in node.names:
                if base == "importlib" and a.name in STRING_IMPORTS and comp != "tests":
                    problems.append(f"{here}:{node.lineno}: imports importlib.{a.name} by name")
                sub = f"{base}.{a.name}"
                add(sub if sub in mods.names else base, node.lineno, "import")
        elif isinstance(node, ast.Call):
            calls.add(id(node.func))
            name = _call_name(node.func)
            arg = node.args[0] if node.args else None
            literal = arg.value if isinstance(arg, ast.Constant) else None
            if name in STRING_IMPORTS or name == "find_spec":
                how = "locate" if name == "find_spec" else "string import"
                if isinstance(literal, str):
                    add(literal, node.lineno, how)
                elif comp != "tests" and not (name == "find_spec" and here in LOCATE_COMPUTED):
                    problems.append(f"{here}:{node.lineno}: {name}() of a computed name")
            elif name in HIDDEN_LOADERS and comp != "tests":
                problems.append(f"{here}:{node.lineno}: loads code by path ({name})")
    for node in ast.walk(tree):  # import machinery passed around as a value
        if comp == "tests" or id(node) in calls:
            continue
        if isinstance(node, ast.Attribute) and node.attr in STRING_IMPORTS:
            problems.append(f"{here}:{node.lineno}: {node.attr} used as a value")
        elif isinstance(node, ast.Name) and node.id in STRING_IMPORTS and node.id != "__import__":
            problems.append(f"{here}:{node.lineno}: {node.id} used as a value")
    return edges


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node, or a node importing itself
    (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on.add(start)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    advanced = True
                    break
                if nxt in on:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1 or node in graph.get(node, ()):
                    out.append(sorted(comp))
    return out


def package_of(module: str, packages: set[str]) -> str:
    return module if module in packages else module.rpartition(".")[0]


def _nested(a: str, b: str) -> bool:
    """One package inside the other (core and core.optable; cli and cli.commands): a part of
    a layer, not a separate unit; the module graph still sees any cycle through them."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def check(root: Path) -> list[str]:
    """Every violation of the import rules in the tree at `root` (empty: all rules hold)."""
    root = Path(root)
    files = python_files(root)
    problems: list[str] = [
        f"rules: components in a cycle {c}"
        for c in _cycles({k: v - {k} for k, v in ALLOWED.items()})
    ]
    if not files:
        return [f"{root}: no Python files to check"]
    tops = {f.relative_to(root).parts[0] for f in files}
    for top in sorted(tops):
        name = top[:-3] if top.endswith(".py") else top
        if name not in TOP_LEVEL:
            problems.append(f"{top}: unknown top-level package (add it to TOP_LEVEL and ALLOWED)")
    for folder in REQUIRED:
        if not any(f.is_relative_to(root / folder) for f in files):
            problems.append(f"{folder}: required folder missing or without modules")
    mods = _Modules(root, files)
    edges: list[Edge] = []
    for f in files:
        here = module_name(root, f)
        if here.split(".")[0] not in TOP_LEVEL:
            continue  # reported above
        if component_of(here) is None:
            problems.append(f"{here}: in no component (add it to COMPONENTS)")
            continue
        edges += _edges_of(f, here, f.name == "__init__.py", mods, problems)
    for e in edges:
        mine, theirs = component_of(e.source), component_of(e.target)
        where = f"{e.source}:{e.line}"
        if theirs is None:
            problems.append(f"{where}: imports {e.target}, which is in no component")
            continue
        if e.how == "string import":
            problems.append(f"{where}: string import of {e.target} (use an import statement)")
        if e.how == "locate" and (e.source, e.target) in LOCATE_BY_PATH:
            continue
        if theirs != mine and theirs not in ALLOWED[mine]:
            problems.append(f"{where}: {mine} may not import {theirs} ({e.target}, {e.how})")
    graph: dict[str, set[str]] = {}
    for e in edges:
        if e.how != "locate" and e.target in mods.names:
            graph.setdefault(e.source, set()).add(e.target)
    for cycle in _cycles(graph):
        problems.append("module cycle: " + " -> ".join(cycle))
    pkg_graph: dict[str, set[str]] = {}
    for src, targets in graph.items():
        a = package_of(src, mods.packages)
        for t in targets:
            b = package_of(t, mods.packages)
            if not _nested(a, b):
                pkg_graph.setdefault(a, set()).add(b)
    for cycle in _cycles(pkg_graph):
        problems.append("package cycle: " + " -> ".join(cycle))
    return list(dict.fromkeys(problems))  # one line per violation (an import of 3 names: 1)
