"""Typed reasons why a deployment or a request is infeasible, and the verdict that holds them.

A Reason names its kind (memory, topology, context, slo, output), one user-facing line, the
limit and the value that broke it (same unit), and the option that lifts it where one exists
(--allow-cross-node-tp, --beyond-context). A Verdict is the list of reasons (empty: feasible)
plus labels: what was allowed only because the user asked for it, to be printed beside every
number that rests on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from perfmodel.errors import PerfModelError
from perfmodel.specs.units import plural

MEMORY, TOPOLOGY, CONTEXT, SLO, OUTPUT = "memory", "topology", "context", "slo", "output"
KINDS = (MEMORY, TOPOLOGY, CONTEXT, SLO, OUTPUT)


class Reason(NamedTuple):
    """One broken constraint: `value` exceeds `limit` (same unit) where both apply. A
    NamedTuple (immutable, compared as a tuple): defining one costs a fifth of a frozen
    dataclass at import."""

    kind: str
    message: str
    limit: float | None = None
    value: float | None = None
    option: str | None = None  # the command-line option that lifts it, if any

    @property
    def excess(self) -> float | None:
        """How far over the limit, as a fraction (0.25 = 25% over); None without numbers."""
        if self.limit is None or self.value is None or self.limit <= 0:
            return None
        return self.value / self.limit - 1.0

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "message": self.message,
            "limit": self.limit,
            "value": self.value,
            "excess": self.excess,
            "option": self.option,
        }


@dataclass(frozen=True, eq=False)
class Verdict:
    """Reasons against (empty: feasible) and labels for what runs only because it was asked."""

    reasons: tuple[Reason, ...] = ()
    labels: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.reasons

    def of_kind(self, kind: str) -> tuple[Reason, ...]:
        return tuple(r for r in self.reasons if r.kind == kind)

    def __add__(self, other: Verdict) -> Verdict:
        return Verdict(
            self.reasons + other.reasons, tuple(dict.fromkeys(self.labels + other.labels))
        )

    def require(self) -> Verdict:
        """Raise InfeasibleError (exit 2, the first reason's line) unless feasible."""
        if self.reasons:
            raise InfeasibleError(self)
        return self

    def as_dict(self) -> dict:
        return {
            "feasible": self.ok,
            "reasons": [r.as_dict() for r in self.reasons],
            "labels": list(self.labels),
        }


class InfeasibleError(PerfModelError):
    """A request the feasibility layer refused: one line on stderr, exit 2; the verdict is
    kept for callers (the app) that show every reason."""

    def __init__(self, verdict: Verdict):
        self.verdict = verdict
        first = verdict.reasons[0].message
        more = len(verdict.reasons) - 1
        super().__init__(first + (f" (and {plural(more, 'more reason')})" if more else ""))
