"""perfmodel's command-line entry point: registers every command module and runs the app.

User errors (PerfModelError) become one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import sys

from perfmodel.cli.typer_app import app

# Each command module registers its commands on `app` when imported, in this order (the order
# of `perfmodel --help`). They import heavy libraries inside the commands only.
# isort: off
from perfmodel.cli.commands import predict  # noqa: F401, E402
from perfmodel.cli.commands import listing  # noqa: F401, E402
from perfmodel.cli.commands import specdecode  # noqa: F401, E402
from perfmodel.cli.commands import validate  # noqa: F401, E402
from perfmodel.cli.commands import specprefill  # noqa: F401, E402
from perfmodel.cli.commands import recommend  # noqa: F401, E402
from perfmodel.cli.commands import capacity  # noqa: F401, E402
from perfmodel.cli.commands import app as app_command  # noqa: F401, E402
from perfmodel.cli.commands import profile  # noqa: F401, E402
# isort: on


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (used by tests and the console script)."""
    from perfmodel.errors import PerfModelError

    try:
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
