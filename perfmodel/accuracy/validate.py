"""Accuracy of the model against measured tables: MAPE, max APE, worst row, per quantity.

APE = |predicted - measured| / measured; MAPE = mean APE over a table's rows (fractions).
Each table is predicted with the profile its rows belong to (column `profile`; e.g.
vllm-0.6.3-h100 for the SpecPrefill tables, magicdec-torch-h100 for MagicDec's), or with the one
given. Leave-one-table-out cross-validation refits the profile without the table and
predicts it: the honest estimate of the error on shapes and setups not fitted on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from perfmodel.accuracy.observations import Observation, Table
from perfmodel.errors import PerfModelError
from perfmodel.specs.profile import Profile, load_profile, profile_for


@dataclass
class Score:
    name: str
    rows: int
    mape: float
    max_ape: float
    worst: str
    profile: str
    fit: bool
    predicted: np.ndarray
    measured: np.ndarray
    labels: list[str]
    lines: tuple[int, ...] = ()  # source line of each row (published tables), else ()

    @property
    def quantity(self) -> str:
        return self.name.partition("/")[2]

    @property
    def table(self) -> str:
        return self.name.partition("/")[0]

    @property
    def ape(self) -> np.ndarray:
        """|predicted - measured| / measured per row."""
        return np.abs(self.predicted - self.measured) / self.measured

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "rows": self.rows,
            "mape": self.mape,
            "max_ape": self.max_ape,
            "worst": self.worst,
            "profile": self.profile,
            "fitted_on": self.fit,
            "points": [
                {"label": lab, "measured_s": float(m), "predicted_s": float(p)}
                for lab, m, p in zip(self.labels, self.measured, self.predicted, strict=True)
            ],
        }


@dataclass(frozen=True)
class MemoryCheck:
    """A row published as out of memory, against the model's memory estimate."""

    table: str
    label: str
    predicted_fits: bool
    total_gb: float  # per GPU
    capacity_gb: float
    published: str = "oom"

    @property
    def agrees(self) -> bool:
        """The model also says it does not fit."""
        return not self.predicted_fits

    def as_dict(self) -> dict:
        return {
            "table": self.table,
            "label": self.label,
            "published": self.published,
            "predicted_fits": self.predicted_fits,
            "agrees": self.agrees,
            "total_gb": self.total_gb,
            "capacity_gb": self.capacity_gb,
        }


@dataclass(frozen=True)
class ValidationResult:
    """Every observation's score, and the published out-of-memory rows checked."""

    scores: list[Score]
    memory_checks: list[MemoryCheck]


@dataclass(frozen=True)
class CrossValidationScore:
    """One held-out table and quantity, predicted by a profile refitted without it."""

    held_out: str  # table/quantity
    profile: str
    rows: int
    mape: float
    max_ape: float

    def as_dict(self) -> dict:
        return {
            "held_out": self.held_out,
            "profile": self.profile,
            "rows": self.rows,
            "mape": self.mape,
            "max_ape": self.max_ape,
        }


def profile_of(obs: Observation, override: Profile | str | None = None) -> Profile:
    if isinstance(override, Profile):
        return override
    if override:
        return load_profile(override)
    if obs.profile:
        try:
            return load_profile(obs.profile)
        except PerfModelError as exc:
            raise PerfModelError(f"{obs.name}: 'profile' column: {exc}") from None
    return profile_for(obs.gpu or "h100-sxm")


def score(obs: Observation, profile: Profile) -> Score:
    pred = np.asarray(obs.predict(profile), float)
    ape = np.abs(pred - obs.measured) / obs.measured
    worst = int(np.argmax(ape))
    return Score(
        obs.name,
        len(ape),
        float(np.mean(ape)),
        float(ape[worst]),
        f"{obs.labels[worst]}: predicted {pred[worst]:.4g} s vs measured {obs.measured[worst]:.4g} s",
        profile.name,
        obs.fit,
        pred,
        obs.measured,
        obs.labels,
        obs.lines,
    )


def memory_check_scores(table: Table, profile: Profile) -> list[MemoryCheck]:
    """For rows published as out-of-memory: does the model also say it does not fit?"""
    from perfmodel.core.deployment import make_deployment
    from perfmodel.planners.specdecode import specdecode_memory
    from perfmodel.planners.speculation.deploy import helper_deployment

    out = []
    for check in table.memory_checks:
        r = table.frame.iloc[check["row"]]
        dep = make_deployment(
            r["model"], r["gpu"], int(r["num_gpus"]), int(r["tp"]), profile=profile
        )
        if isinstance(r.get("draft_model"), str):
            draft = helper_deployment(dep, r["draft_model"], "draft")
            budget = (
                r["draft_kv_budget"] if r["draft_kv_budget"] == r["draft_kv_budget"] else np.inf
            )
            mem = specdecode_memory(dep, draft, r["batch_size"], r["prompt_len"], 0, budget)
        else:
            from perfmodel.core.memory import memory_report

            mem = memory_report(dep, r["batch_size"], r["prompt_len"], r.get("output_len", 1))
        d = mem.as_dict()
        out.append(
            MemoryCheck(table.name, check["label"], d["fits"], d["total_gb"], d["capacity_gb"])
        )
    return out


def validate_tables(
    tables: list[Table],
    profile: Profile | str | None = None,
    progress: Callable[[], None] | None = None,
) -> ValidationResult:
    """Score every observation (progress() after each) and check the published OOM rows."""
    scores, checks = [], []
    for table in tables:
        for obs in table.observations:
            scores.append(score(obs, profile_of(obs, profile)))
            if progress is not None:
                progress()
        if table.memory_checks:
            prof = (
                profile_of(table.observations[0], profile)
                if table.observations
                else profile_for("h100-sxm")
            )
            checks.extend(memory_check_scores(table, prof))
    return ValidationResult(scores, checks)


def cross_validate(
    tables: list[Table], progress: Callable[[], None] | None = None
) -> list[CrossValidationScore]:
    """Leave-one-table-out: for each fitted table, refit its profile on the other tables of
    the same profile and score the held-out table (progress() per model evaluation)."""
    from perfmodel.accuracy.calibrate import fit_profile

    out = []
    by_profile: dict[str, list[Table]] = {}
    for t in tables:
        if t.fit and t.observations:
            by_profile.setdefault(t.profile, []).append(t)
    for prof_name, group in by_profile.items():
        base = load_profile(prof_name)
        # refit the same parameters the shipped profile was fitted on, from the same starting
        # values (its provenance), so the held-out table leaks in through neither
        params = base.provenance.get("fitted_parameters") or None
        start = base.provenance.get("start") or {}
        base = base.with_values(**start)
        for held in group:
            rest = [o for t in group if t is not held for o in t.observations]
            if not rest:
                continue
            fitted = fit_profile(rest, base, params, progress=progress).profile
            for obs in held.observations:
                s = score(obs, fitted)
                out.append(CrossValidationScore(obs.name, prof_name, s.rows, s.mape, s.max_ape))
    return out
