"""perfmodel's command-line entry point: imports every command module and runs the app.

User errors (PerfModelError) become one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import importlib
import sys

from perfmodel.cli.typer_app import app

# Each module registers its commands on `app` when imported. Keep them light at import time.
COMMAND_MODULES = (
    "perfmodel.cli.commands.predict",
    "perfmodel.cli.commands.listing",
    "perfmodel.cli.commands.specdecode",
    "perfmodel.cli.commands.validate",
    "perfmodel.cli.commands.calibrate",
    "perfmodel.cli.commands.specprefill",
    "perfmodel.cli.commands.recommend",
    "perfmodel.cli.commands.capacity",
    "perfmodel.cli.commands.app",
    "profiler.cli",
)


def _load_commands() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (used by tests and the console script)."""
    from perfmodel.cli import typer_app
    from perfmodel.errors import PerfModelError

    typer_app.ARGV[:] = list(sys.argv[1:] if argv is None else argv)
    try:
        _load_commands()
        result = app(args=argv, standalone_mode=False)
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
