"""perfmodel's command-line entry point: registers the command module(s) a run needs and runs
the app.

User errors (PerfModelError) become one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import atexit
import errno
import os
import sys
import threading
from typing import NoReturn

from perfmodel.cli.typer_app import app, flush_warnings, hold_warnings

# Each command module (perfmodel/cli/commands/NAME.py) registers its commands on `app` when
# imported; beside it, the names of the commands it registers, in the order of
# `perfmodel --help`. A run imports only the module of the command it names (the others'
# imports and typer signatures cost ~60 ms of cold start); `--help` alone, or an unknown name,
# imports them all. tests/test_cli_commands.py checks the names against what each registers.
COMMANDS = {
    "predict": ("predict",),
    "listing": ("list",),
    "specdecode": ("specdecode", "critical-length", "min-acceptance"),
    "validate": ("validate",),
    "calibrate": ("calibrate",),
    "specprefill": ("specprefill",),
    "recommend": ("recommend",),
    "capacity": ("capacity",),
    "app": ("app",),
    "tables": ("tables",),
    "profile": ("profile",),
}


def modules_for(argv: list[str]) -> tuple[str, ...]:
    """The command modules a run with these arguments needs (all when no command is named)."""
    named = argv[0] if argv else None
    needed = tuple(module for module, names in COMMANDS.items() if named in names)
    return needed or tuple(COMMANDS)


def load_commands(modules: tuple[str, ...] = tuple(COMMANDS)) -> None:
    """Import (register) the named command modules, in the order of `perfmodel --help`."""
    # static imports, so the layering test sees every edge; isort: off
    if "predict" in modules:
        from perfmodel.cli.commands import predict  # noqa: F401
    if "listing" in modules:
        from perfmodel.cli.commands import listing  # noqa: F401
    if "specdecode" in modules:
        from perfmodel.cli.commands import specdecode  # noqa: F401
    if "validate" in modules:
        from perfmodel.cli.commands import validate  # noqa: F401
    if "calibrate" in modules:
        from perfmodel.cli.commands import calibrate  # noqa: F401
    if "specprefill" in modules:
        from perfmodel.cli.commands import specprefill  # noqa: F401
    if "recommend" in modules:
        from perfmodel.cli.commands import recommend  # noqa: F401
    if "capacity" in modules:
        from perfmodel.cli.commands import capacity  # noqa: F401
    if "app" in modules:
        from perfmodel.cli.commands import app as app_command  # noqa: F401
    if "tables" in modules:
        from perfmodel.cli.commands import tables  # noqa: F401
    if "profile" in modules:
        from perfmodel.cli.commands import profile  # noqa: F401
    # isort: on


def _usable(stream) -> bool:
    """False for a closed standard stream (`perfmodel predict >&-` leaves sys.stdout None)."""
    return stream is not None and not getattr(stream, "closed", False)


def _open_streams() -> None:
    """A closed stdout or stderr becomes the null device: the run goes on (files given with
    --out are still written) instead of failing on the first print."""
    if not _usable(sys.stdout):
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    if not _usable(sys.stderr):
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115


def _error(message: str) -> int:
    hold_warnings(False)  # warnings about inputs that then failed a check are not shown
    first = " ".join(str(message).split()) or "invalid input"
    print(f"error: {first}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (used by tests and the console script).

    Warnings are held back until the command prints something or ends (typer_app.warn), so
    an input error is exactly one line on stderr."""
    _open_streams()
    hold_warnings(True)
    try:
        return _run(argv)
    finally:
        flush_warnings()  # an unexpected exception still shows what was held


def _empty_value(args: list[str], group) -> str | None:
    """The option given an empty value ('--table ""', '--gpus=', "-b ' '"), if any: an empty
    value is refused everywhere, never read as 'all' or 'none' by one command and an error by
    another. Flags that take no value are told apart through click's parameter table (group:
    the click group of the app, built once per run)."""
    command = group.commands.get(args[0]) if args else None
    flags = {
        opt
        for p in (command.params if command is not None else [])
        if getattr(p, "is_flag", False)
        for opt in p.opts
    }
    for i, arg in enumerate(args):
        if arg.startswith("--") and "=" in arg:
            name, _, value = arg.partition("=")
            if not value.strip():
                return name
        elif not arg.strip():
            before = args[i - 1] if i else ""
            if before.startswith("-") and before not in flags:
                return before
            return f"an empty argument {'after ' + before if before else 'first'}"
    return None


def _run(argv: list[str] | None) -> int:
    from typer.main import get_group

    from perfmodel.cli import typer_app
    from perfmodel.errors import PerfModelError

    args = sys.argv[1:] if argv is None else list(argv)
    typer_app.ARGV[:] = args
    try:
        load_commands(modules_for(args))
        group = get_group(app)  # the click group: built once (~0.6 ms), read twice
        empty = _empty_value(list(args), group)
        if empty:
            if empty.startswith("an empty argument"):
                raise PerfModelError(f"{empty}: remove it")
            raise PerfModelError(
                f"{empty}: empty value given; give a value or leave the option out"
            )
        # a group even when one command is loaded, so `perfmodel NAME ...` keeps its shape
        result = group(args=args, standalone_mode=False)
    except PerfModelError as exc:
        return _error(str(exc))
    except SystemExit as exc:
        flush_warnings()
        return int(exc.code or 0)
    except BrokenPipeError:  # output piped into `head`
        hold_warnings(False)
        return 0
    except Exception as exc:
        # click's exceptions (typer vendors click, so match by interface, not by class)
        name = type(exc).__name__
        if name == "Abort":
            hold_warnings(False)
            print("aborted", file=sys.stderr)
            return 130
        if name == "NoArgsIsHelpError":  # bare `perfmodel`: the usage was printed
            hold_warnings(False)
            return 0
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            return _error(exc.format_message())
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return _error(f"cannot write the output: {exc.strerror}")
        raise
    flush_warnings()
    # In non-standalone mode click returns ctx.exit()'s code (e.g. typer.Exit(130)).
    return result if isinstance(result, int) else 0


def entry() -> None:  # pragma: no cover - console script
    code = main()
    try:  # a full or vanished stdout must not turn into a traceback at interpreter exit
        sys.stdout.flush()
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            print(f"error: cannot write the output: {exc.strerror}", file=sys.stderr)
            code = code or 2
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    end_process(code)


def end_process(code: int) -> NoReturn:
    """End the finished run with exit status `code`, skipping the interpreter's teardown.

    The teardown frees, one by one, everything the run built (~390 modules, numpy, the
    operator tables, the plan: ~18 ms after a recommend, 7% of its cold start) and nothing in
    it matters once the answer is out. What a normal exit does that matters is kept, in its
    order: the atexit handlers run (coverage, temporary directories, logging), then the
    standard streams are flushed. Files perfmodel writes are closed by their writers
    (feasibility.outputs.write_atomic; the profiler's CSVs flush and fsync every row), so no
    buffered data waits for a finalizer. While another thread still runs (its shutdown and
    joins belong to the normal exit), the normal exit is taken."""
    if threading.active_count() > 1:
        sys.exit(code)
    atexit._run_exitfuncs()  # what Py_FinalizeEx runs first; CPython since 3.0
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # vanished or closed: nothing more can reach it
            pass
    os._exit(code)
