"""perfmodel's command-line entry point: imports the command module(s) a run needs and runs the app.

User errors (PerfModelError) become one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import importlib
import sys

from perfmodel.cli.typer_app import app

# Each module registers its commands on `app` when imported, in this order (the order of
# `perfmodel --help`), beside the names of the commands it registers. A run imports only the
# module of the command it names (the others' imports and typer signatures cost ~60 ms of
# cold start); `--help` alone, or an unknown name, imports them all.
# tests/test_cli_commands.py checks the names against what each module registers.
COMMANDS = {
    "perfmodel.cli.commands.predict": ("predict",),
    "perfmodel.cli.commands.listing": ("list",),
    "perfmodel.cli.commands.specdecode": ("specdecode", "critical-length", "min-acceptance"),
    "perfmodel.cli.commands.validate": ("validate", "calibrate"),
    "perfmodel.cli.commands.specprefill": ("specprefill",),
    "perfmodel.cli.commands.recommend": ("recommend",),
    "perfmodel.cli.commands.capacity": ("capacity",),
    "perfmodel.cli.commands.app": ("app",),
    "profiler.cli": ("profile",),
}
COMMAND_MODULES = tuple(COMMANDS)


def modules_for(argv: list[str]) -> tuple[str, ...]:
    """The command modules a run with these arguments needs (all when no command is named)."""
    named = argv[0] if argv else None
    needed = tuple(module for module, names in COMMANDS.items() if named in names)
    return needed or COMMAND_MODULES


def _load_commands(modules: tuple[str, ...] = COMMAND_MODULES) -> None:
    for name in modules:
        importlib.import_module(name)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (used by tests and the console script)."""
    from typer.main import get_group

    from perfmodel.errors import PerfModelError

    args = sys.argv[1:] if argv is None else list(argv)
    try:
        _load_commands(modules_for(args))
        # a group even when one command is loaded, so `perfmodel NAME ...` keeps its shape
        result = get_group(app)(args=args, standalone_mode=False)
    except PerfModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:
        return int(exc.code or 0)
    except BrokenPipeError:  # output piped into `head`
        return 0
    except Exception as exc:
        # click's exceptions (typer vendors click, so match by interface, not by class)
        if type(exc).__name__ == "Abort":
            print("aborted", file=sys.stderr)
            return 130
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            print(f"error: {exc.format_message()}", file=sys.stderr)
            return 2
        raise
    # In non-standalone mode click returns ctx.exit()'s code (e.g. typer.Exit(130)).
    return result if isinstance(result, int) else 0


def entry() -> None:  # pragma: no cover - console script
    sys.exit(main())
