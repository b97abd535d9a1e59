"""User-facing errors: the CLI prints them as one line on stderr and exits with code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PerfModelError(ValueError):
    """An error caused by the user's input (unknown name, bad value, malformed file)."""


class OutOfMemoryError(PerfModelError):
    """A configuration that does not fit in GPU memory."""


def suggest(
    name: str, choices: Iterable[str], kind: str, known: Iterable[str] | None = None
) -> PerfModelError:
    """Build an 'unknown <kind>' error that names the closest valid choices (searched among
    all names and aliases) and lists the `known` canonical names (default: all choices)."""
    choices = sorted(set(choices))
    close = difflib.get_close_matches(name.lower(), [c.lower() for c in choices], n=3, cutoff=0.4)
    lookup = {c.lower(): c for c in choices}
    hint = f"; did you mean {', '.join(lookup[c] for c in close)}?" if close else ""
    listed = sorted(set(known)) if known is not None else choices
    return PerfModelError(f"unknown {kind} '{name}'{hint} (known: {', '.join(listed)})")
