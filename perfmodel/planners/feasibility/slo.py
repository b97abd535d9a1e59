"""Service-level objectives as constraints: TTFT, TPOT and end-to-end latency (seconds).

A deployment meets its SLOs when every given one holds: ttft_s <= slo.ttft_s, tpot_s <=
slo.tpot_s, e2e_s <= slo.e2e_s (e2e = TTFT + (output - 1) * TPOT, core.inference). The
binding SLO of a miss is the one exceeded by the largest fraction (Reason.excess).
"""

from __future__ import annotations

from dataclasses import dataclass

from perfmodel.errors import PerfModelError
from perfmodel.planners.feasibility.reasons import SLO, Reason, Verdict

FIELDS = (
    ("ttft_s", "TTFT", "--slo-ttft"),
    ("tpot_s", "TPOT", "--slo-tpot"),
    ("e2e_s", "e2e", "--slo-e2e"),
)


@dataclass(frozen=True)
class Slos:
    """The SLOs a user gave (None: no constraint on that quantity), seconds."""

    ttft_s: float | None = None
    tpot_s: float | None = None
    e2e_s: float | None = None

    def __post_init__(self):
        for attr, _, option in FIELDS:
            v = getattr(self, attr)
            if v is not None and not (v > 0 and v < float("inf")):
                raise PerfModelError(f"{option} must be a positive number of seconds, got {v}")

    @property
    def given(self) -> bool:
        return any(getattr(self, a) is not None for a, _, _ in FIELDS)

    def items(self):
        """(attribute, label, option, limit) of every SLO given."""
        return [
            (a, lab, o, getattr(self, a)) for a, lab, o in FIELDS if getattr(self, a) is not None
        ]

    def as_dict(self) -> dict:
        return {a: getattr(self, a) for a, _, _ in FIELDS}


def slo_verdict(slos: Slos, ttft_s: float, tpot_s: float, e2e_s: float) -> Verdict:
    """One reason per SLO missed, worst miss first."""
    values = {"ttft_s": ttft_s, "tpot_s": tpot_s, "e2e_s": e2e_s}
    reasons = []
    for attr, label, option, limit in slos.items():
        v = float(values[attr])
        if not v <= limit:
            reasons.append(
                Reason(
                    SLO,
                    f"{label} {v:.4g} s misses the {label} SLO of {limit:g} s "
                    f"({100 * (v / limit - 1):.0f}% over, {option})",
                    float(limit),
                    v,
                    option,
                )
            )
    reasons.sort(key=lambda r: -(r.excess or 0.0))
    return Verdict(tuple(reasons))


def worst_excess(slos: Slos, ttft_s: float, tpot_s: float, e2e_s: float) -> float:
    """max over the given SLOs of value / limit - 1 (<= 0: all met); 0 when none given."""
    values = {"ttft_s": ttft_s, "tpot_s": tpot_s, "e2e_s": e2e_s}
    return max((float(values[a]) / lim - 1.0 for a, _, _, lim in slos.items()), default=0.0)
