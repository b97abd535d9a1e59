"""One `perfmodel predict` traced call by call: the layers are entered top-down (cli, then
planners if any, then core, then specs), and no function of a lower layer ever calls one of a
higher layer (no callback climbs back up).

sys.setprofile sees every Python function call (the command, lazy imports' module code,
dataclass and pydantic methods defined in our modules); for each call into one of our modules
the stack of our frames is read as the path of layers from the entry point down.
"""

from __future__ import annotations

import json
import sys

from perfmodel.cli.main import main

RANK = {"cli": 5, "reports": 5, "accuracy": 4, "planners": 3, "core": 2, "specs": 1, "base": 0}
PREFIXES = (
    ("perfmodel.cli", "cli"),
    ("perfmodel.reports", "reports"),
    ("perfmodel.accuracy", "accuracy"),
    ("perfmodel.planners", "planners"),
    ("perfmodel.core", "core"),
    ("perfmodel.specs", "specs"),
    ("perfmodel.errors", "base"),
    ("perfmodel.paths", "base"),
)


def layer(module: str | None) -> str | None:
    if not module:
        return None
    for prefix, name in PREFIXES:
        if module == prefix or module.startswith(prefix + "."):
            return name
    return "other-ours" if module.split(".")[0] in ("perfmodel", "profiler", "app") else None


def trace_layers(argv: list[str]) -> tuple[int, set[tuple[str, ...]], list[str]]:
    """(exit code, every path of layers seen from the entry point down, first entries)."""
    paths: set[tuple[str, ...]] = set()
    first: list[str] = []

    def profiler(frame, event, arg):
        if event != "call":
            return
        here = layer(frame.f_globals.get("__name__"))
        if here is None:
            return
        if here not in first:
            first.append(here)
        path: list[str] = []
        f = frame
        while f is not None:
            name = layer(f.f_globals.get("__name__"))
            if name is not None and (not path or path[-1] != name):
                path.append(name)
            f = f.f_back
        paths.add(tuple(reversed(path)))

    sys.setprofile(profiler)
    try:
        code = main(argv)
    finally:
        sys.setprofile(None)
    return code, paths, first


PREDICT = ["predict", "--model", "8b", "--gpu", "h100", "--batch", "8", "--prompt-len", "2k",
           "--output-len", "128", "--profile", "torch-cudagraph-h100", "--json"]  # fmt: skip


def climbs(paths: set[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Paths on which a layer is met twice or a lower layer calls a higher one."""
    bad = []
    for path in paths:
        ranks = [RANK[p] for p in path]
        if len(set(path)) != len(path) or ranks != sorted(ranks, reverse=True):
            bad.append(path)
    return bad


def test_predict_goes_down_the_layers_once_and_never_back_up(capsys):
    code, paths, first = trace_layers(PREDICT)
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["ttft_s"] > 0 and out["batch"] == 8
    assert "other-ours" not in first  # predict needs no profiler or app module
    assert climbs(paths) == []
    # the deepest path crosses every layer predict needs, from the command to the specs
    assert ("cli", "core", "specs") in {tuple(p for p in path if p != "base") for path in paths}
    assert {x for x in first if x != "base"} == {"cli", "core", "specs"}
    assert first[0] == "cli"  # the entry point first


def test_the_trace_sees_a_callback_into_a_higher_layer(capsys, monkeypatch):
    """The checker itself: a core function that calls a CLI helper (here: the pass's
    overhead term, patched to format a time with the CLI's fmt_time) is a climb."""
    from perfmodel.cli.commands import common
    from perfmodel.core import inference

    original = inference.overhead_time

    def overhead_calling_the_cli(*args):
        common.fmt_time(1.0)
        return original(*args)

    monkeypatch.setattr(inference, "overhead_time", overhead_calling_the_cli)
    code, paths, _ = trace_layers(PREDICT)
    capsys.readouterr()
    assert code == 0
    assert ("cli", "core", "cli") in climbs(paths)
