"""perfmodel's command-line entry point: registers every command module and runs the app.

User errors (PerfModelError) become one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import errno
import os
import sys

from perfmodel.cli.typer_app import app, flush_warnings, hold_warnings

# Each command module registers its commands on `app` when imported, in this order (the order
# of `perfmodel --help`). They import heavy libraries inside the commands only.
# isort: off
from perfmodel.cli.commands import predict  # noqa: F401, E402
from perfmodel.cli.commands import listing  # noqa: F401, E402
from perfmodel.cli.commands import specdecode  # noqa: F401, E402
from perfmodel.cli.commands import validate  # noqa: F401, E402
from perfmodel.cli.commands import calibrate  # noqa: F401, E402
from perfmodel.cli.commands import specprefill  # noqa: F401, E402
from perfmodel.cli.commands import recommend  # noqa: F401, E402
from perfmodel.cli.commands import capacity  # noqa: F401, E402
from perfmodel.cli.commands import app as app_command  # noqa: F401, E402
from perfmodel.cli.commands import tables  # noqa: F401, E402
from perfmodel.cli.commands import profile  # noqa: F401, E402
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


def _empty_value(args: list[str]) -> str | None:
    """The option given an empty value ('--table ""', '--gpus=', "-b ' '"), if any: an empty
    value is refused everywhere, never read as 'all' or 'none' by one command and an error by
    another. Flags that take no value are told apart through click's parameter table."""
    import typer

    group = typer.main.get_command(app)
    command = getattr(group, "commands", {}).get(args[0]) if args else None
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
    from perfmodel.cli import typer_app
    from perfmodel.errors import PerfModelError

    typer_app.ARGV[:] = list(sys.argv[1:] if argv is None else argv)
    try:
        empty = _empty_value(list(typer_app.ARGV))
        if empty:
            if empty.startswith("an empty argument"):
                raise PerfModelError(f"{empty}: remove it")
            raise PerfModelError(
                f"{empty}: empty value given; give a value or leave the option out"
            )
        result = app(args=argv, standalone_mode=False)
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
    sys.exit(code)
