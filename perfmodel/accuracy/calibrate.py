"""Fit an efficiency profile to measurements with scipy.optimize.least_squares.

Residuals are relative errors (predicted / measured - 1), one per measured point, weighted
so that every table counts equally (1/sqrt(rows of the table), normalized), plus a
weak prior that pulls each parameter toward the starting profile (weight 0.02 per decade
of an efficiency, 0.002 per 100 us of an overhead): a MAP estimate that leaves parameters the
data cannot see where they were, instead of letting them wander. Efficiencies are fitted in
log space and bounded to [0.02, 1]; overheads are non-negative. Parameters whose effect on
every prediction is below 0.1% are not fitted. Confidence: standard errors from the
Jacobian at the optimum, cov = (J^T J)^-1 * sum(r^2) / (n - k).

Identifiability: with n measured points and k parameters, n <= k is refused (the fit would
reproduce the data exactly whatever the truth). After the fit, a parameter whose Jacobian
column is zero moves no prediction (the data cannot see it), and parameters with weight in a
near-null singular vector of the column-normalized Jacobian (singular value below 1e-6 of the
largest) are only identified in combination; both are reported in FitResult.unidentified,
left at the starting profile's value (the prior), and the fit is repeated without them, so
an unidentified parameter is never both "cannot be identified" and moved.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from perfmodel.accuracy.observations import Observation
from perfmodel.errors import PerfModelError
from perfmodel.specs.profile import EFFICIENCY_KEYS, OVERHEAD_KEYS, PARAMETERS, Profile

PRIOR_WEIGHT = 0.02
OVERHEAD_PRIOR_WEIGHT = 0.002
OVERHEAD_SCALE_US = 100.0
EFF_MIN = 0.02


@dataclass
class FitResult:
    profile: Profile
    parameters: list[str]
    stderr: dict[str, float]
    rmse: float  # of relative errors
    mape: float
    points: int
    success: bool
    message: str
    unidentified: dict[str, str] = field(default_factory=dict)  # parameter -> why


def _is_eff(name: str) -> bool:
    return name.split(".")[-1] in EFFICIENCY_KEYS


def _to_x(name: str, value: float) -> float:
    return np.log(max(value, EFF_MIN)) if _is_eff(name) else value / OVERHEAD_SCALE_US


def _from_x(name: str, x: float) -> float:
    return float(np.exp(x)) if _is_eff(name) else float(x * OVERHEAD_SCALE_US)


def _relative_errors(observations: list[Observation], profile: Profile) -> np.ndarray:
    parts = [np.asarray(o.predict(profile), float) / o.measured - 1.0 for o in observations]
    return np.concatenate(parts) if parts else np.zeros(0)


def _table_weights(observations: list[Observation]) -> np.ndarray:
    """Weight 1/sqrt(rows of its table) per point: each table counts equally in the fit,
    so a long table does not outvote a short one measured on another setup."""
    rows: dict[str, int] = {}
    for o in observations:
        rows[o.table] = rows.get(o.table, 0) + len(o.measured)
    mean_rows = np.mean(list(rows.values()))
    return np.concatenate(
        [np.full(len(o.measured), np.sqrt(mean_rows / rows[o.table])) for o in observations]
    )


def sensitive_parameters(
    observations: list[Observation], base: Profile, threshold: float = 1e-3
) -> list[str]:
    """Parameters whose 10% change moves some prediction by more than `threshold`."""
    ref = _relative_errors(observations, base) + 1.0
    chosen = []
    for name in PARAMETERS:
        value = base.get(name)
        bumped = value * 0.9 if _is_eff(name) else value + 0.1 * OVERHEAD_SCALE_US
        moved = _relative_errors(observations, base.with_values(**{name: bumped})) + 1.0
        if np.max(np.abs(moved / ref - 1.0)) > threshold:
            chosen.append(name)
    return chosen


def fit_profile(
    observations: list[Observation],
    base: Profile,
    parameters: list[str] | None = None,
    name: str | None = None,
    progress: Callable[[], None] | None = None,
) -> FitResult:
    """Least-squares fit of `parameters` (default: the sensitive ones) of `base`;
    `progress` is called once per model evaluation (for a progress display). Parameters the
    data cannot identify stay at base's value (the prior) and are listed in `unidentified`;
    `parameters` of the result are those fitted."""
    if not observations:
        raise PerfModelError("no measured points to calibrate on")
    params = list(parameters or sensitive_parameters(observations, base))
    unidentified: dict[str, str] = {}
    while True:
        result = _fit_once(observations, base, params, name, progress)
        new = {p: why for p, why in result.unidentified.items() if p not in unidentified}
        if not new:
            break
        unidentified.update(new)
        params = [p for p in params if p not in new]
        if not params:  # nothing the data can see: the prior, unchanged
            result = _fit_result_at(observations, base, name, result)
            break
    result.unidentified = {
        p: f"{why}; left at the prior {base.get(p):.4g} ({base.name})"
        for p, why in unidentified.items()
    }
    return result


def _fit_result_at(observations, base: Profile, name, like: FitResult) -> FitResult:
    """The starting profile itself as the result (no parameter identified)."""
    from dataclasses import replace

    rel = _relative_errors(observations, base)
    return FitResult(
        profile=replace(base, name=name) if name else base,
        parameters=[],
        stderr={},
        rmse=float(np.sqrt(np.mean(rel**2))),
        mape=float(np.mean(np.abs(rel))),
        points=like.points,
        success=True,
        message="no parameter identified: the starting profile is returned",
    )


def _fit_once(
    observations: list[Observation],
    base: Profile,
    params: list[str],
    name: str | None,
    progress: Callable[[], None] | None,
) -> FitResult:
    """One least-squares fit of `params` (module docstring)."""
    from scipy.optimize import least_squares

    n = sum(len(o.measured) for o in observations)
    if not params:
        raise PerfModelError("no parameter moves any prediction of these rows by 0.1%")
    if n <= len(params):
        raise PerfModelError(
            f"{n} measured point(s) cannot determine {len(params)} parameter(s) "
            f"({', '.join(params)}): give more rows than parameters, or fewer with --params"
        )
    x0 = np.array([_to_x(p, base.get(p)) for p in params])
    prior0 = x0.copy()
    lower = np.array([np.log(EFF_MIN) if _is_eff(p) else 0.0 for p in params])
    upper = np.array([0.0 if _is_eff(p) else np.inf for p in params])
    x0 = np.clip(x0, lower + 1e-9, upper - 1e-9)
    prior_w = np.array(
        [PRIOR_WEIGHT / np.log(10) if _is_eff(p) else OVERHEAD_PRIOR_WEIGHT for p in params]
    )

    def profile_at(x) -> Profile:
        return base.with_values(**{p: _from_x(p, v) for p, v in zip(params, x, strict=True)})

    weights = _table_weights(observations)

    def residuals(x):
        if progress is not None:
            progress()
        rel = _relative_errors(observations, profile_at(x)) * weights
        return np.concatenate([rel, prior_w * (x - prior0)])

    sol = least_squares(residuals, x0, bounds=(lower, upper), x_scale="jac", max_nfev=400)
    rel = _relative_errors(observations, profile_at(sol.x))
    stderr: dict[str, float] = {}
    try:
        J = sol.jac[:n]
        dof = max(n - len(params), 1)
        cov = np.linalg.pinv(J.T @ J) * float(np.sum(rel**2)) / dof
        for i, p in enumerate(params):
            sx = float(np.sqrt(max(cov[i, i], 0.0)))
            value = _from_x(p, sol.x[i])
            stderr[p] = value * sx if _is_eff(p) else sx * OVERHEAD_SCALE_US
    except np.linalg.LinAlgError:
        pass
    unidentified = unidentified_parameters(np.asarray(sol.jac[:n]), params)
    fitted = profile_at(sol.x)
    if name:
        from dataclasses import replace

        fitted = replace(fitted, name=name)
    return FitResult(
        profile=fitted,
        parameters=params,
        stderr=stderr,
        rmse=float(np.sqrt(np.mean(rel**2))),
        mape=float(np.mean(np.abs(rel))),
        points=n,
        success=bool(sol.success),
        message=str(sol.message),
        unidentified=unidentified,
    )


def unidentified_parameters(jac: np.ndarray, params: list[str], tol: float = 1e-6) -> dict:
    """Parameters the data cannot identify, from the Jacobian J (points x parameters) at the
    optimum: a zero column moves no prediction; weight > 0.3 in a right-singular vector of the
    column-normalized J with singular value < tol * the largest means only a combination with
    the other parameters of that vector is determined (e.g. two overheads paid once per step)."""
    norms = np.linalg.norm(jac, axis=0) if jac.size else np.zeros(len(params))
    out: dict[str, str] = {}
    scale = float(norms.max()) if len(norms) else 0.0
    live = norms > 1e-12 * max(scale, 1e-300)
    for p, ok in zip(params, live, strict=True):
        if not ok:
            out[p] = "moves no prediction of these rows"
    idx = np.flatnonzero(live)
    if len(idx) > 1:
        _, sing, vt = np.linalg.svd(jac[:, idx] / norms[idx], full_matrices=False)
        for value, vec in zip(sing, vt, strict=True):
            if value < tol * sing[0]:
                group = [params[idx[j]] for j in np.flatnonzero(np.abs(vec) > 0.3)]
                for p in group:
                    others = [q for q in group if q != p]
                    out.setdefault(p, f"only identified together with {', '.join(others)}")
    return out


def framework_of(tables, default: str) -> str:
    """The framework the rows were measured with, from their `runner` column (torch, vllm;
    several joined by '+'); `default` when the rows do not say (published tables)."""
    runners: list[str] = []
    for t in tables:
        frame = t.frame
        if "runner" in frame.columns:
            for r in frame["runner"].dropna().astype(str).str.strip().str.lower():
                if r and r != "published" and r not in runners:
                    runners.append(r)
    return "+".join(sorted(runners)) or default


def provenance(result: FitResult, tables: list[str]) -> dict:
    return {
        "method": "perfmodel calibrate: scipy.optimize.least_squares on relative error, weak prior to the starting profile",
        "fitted_on": tables,
        "points": result.points,
        "fitted_parameters": result.parameters,
        "stderr": {k: float(f"{v:.3g}") for k, v in result.stderr.items()},
        "rmse_relative": round(result.rmse, 4),
        "mape": round(result.mape, 4),
        "date": _dt.date.today().isoformat(),
    }


def known_parameters(names: list[str]) -> list[str]:
    """The parameters asked for (--params), each a profile parameter, else one line."""
    unknown = [p for p in names if p not in PARAMETERS]
    if unknown:
        raise PerfModelError(
            f"unknown parameter(s) {', '.join(unknown)}; choose from {', '.join(PARAMETERS)}"
        )
    return names


@dataclass(frozen=True)
class FittedProfile:
    """A calibrated profile: the fit, the profile it started from, where it was written."""

    profile: Profile
    start: str  # the starting profile's name
    fit: FitResult
    out: str | None  # the YAML written, None: not written

    @property
    def values(self) -> dict[str, float]:
        """The fitted parameters' values."""
        return {p: self.profile.get(p) for p in self.fit.parameters}

    def as_dict(self) -> dict:
        return {
            "profile": self.out or self.profile.name,
            "name": self.profile.name,
            "start": self.start,
            "parameters": self.values,
            "stderr": self.fit.stderr,
            "rmse": self.fit.rmse,
            "mape": self.fit.mape,
            "points": self.fit.points,
            "unidentified": self.fit.unidentified,
        }


def save_fitted(profile: Profile, fit: FitResult, start: Profile, out) -> FittedProfile:
    """Write the fitted profile's YAML to `out` (None: nowhere) and say what was fitted."""
    if out is not None:
        write_profile_yaml(profile, out)
    return FittedProfile(profile, start.name, fit, None if out is None else str(out))


def write_profile_yaml(profile: Profile, path) -> None:
    """Write the profile YAML atomically (feasibility.write_atomic: never half a file)."""
    import yaml

    from perfmodel.planners.feasibility.outputs import write_atomic

    text = yaml.safe_dump(profile.to_yaml_dict(), sort_keys=False, width=100)
    write_atomic(
        path,
        f"# Efficiency profile '{profile.name}', written by perfmodel calibrate.\n"
        "# efficiency: fractions of datasheet peak; overhead: microseconds.\n" + text,
    )


__all__ = [
    "fit_profile",
    "FitResult",
    "FittedProfile",
    "known_parameters",
    "save_fitted",
    "framework_of",
    "provenance",
    "write_profile_yaml",
    "OVERHEAD_KEYS",
]
