"""SpecPrefill answer quality vs keep rate, from the published LongBench table (with provenance).

Data: perfmodel/data/specprefill_longbench_quality.csv, the paper's "Quality Test on LongBench"
table transcribed row by row (source file, line range and row line in every row). Only the
LongBench average (`is_average` rows) of Llama-3.1-8B-Instruct is used: the base model and
SpecPrefill at 50/70/90% keep.

- drop(keep) = base average - SpecPrefill average, in LongBench points (positive = worse).
- drop(1) = 0 by definition (every token kept = the base model).
- Between published keep rates: linear interpolation.
- Below the lowest published keep rate (50%): not measured. No value is extrapolated; the
  estimate says `extrapolated=True`, `drop=nan`, and the planner never recommends such a rate.
- The table measures Llama-3.1-8B-Instruct; for other targets (70B, 405B) it is a proxy, and
  the `source` text says so.

Read with the csv module (no pandas at import), parsed once and cached.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

from perfmodel.errors import PerfModelError
from perfmodel.paths import DATA_DIR

QUALITY_CSV = DATA_DIR / "specprefill_longbench_quality.csv"
QUALITY_MODEL = "Llama 3.1 8B Inst"
SPECPREFILL_METHOD = "SpecPrefill (ours)"
BASE_METHOD = "base model (no acceleration method)"


class QualityTable(NamedTuple):
    """Published LongBench averages vs keep rate, keep rates ascending, ending with 1.0."""

    model: str
    base_avg: float
    keep_rates: np.ndarray  # measured keep rates, ascending, plus 1.0 (the base model)
    drops: np.ndarray  # LongBench points lost at each keep rate (0 at 1.0)
    provenance: tuple[dict, ...]  # one entry per point: keep_rate, avg, source, row_line, file
    base_row_line: int = 0

    @property
    def min_measured_keep(self) -> float:
        return float(self.keep_rates[0])

    def source_text(self) -> str:
        lines = ", ".join(str(p["row_line"]) for p in self.provenance)
        first = self.provenance[0]
        return (
            f"LongBench average, {self.model}, '{first['table']}' ({first['source']}, base "
            f"line {self.base_row_line}, SpecPrefill lines {lines}; {Path(first['file']).name})"
        )


class QualityEstimate(NamedTuple):
    """Quality drop at given keep rates (arrays of the keep rates' shape)."""

    keep_rate: np.ndarray
    drop: np.ndarray  # LongBench points; nan where not measured
    extrapolated: np.ndarray  # bool: below the lowest measured keep rate (no value given)
    source: str

    def meets(self, max_drop) -> np.ndarray:
        """True where the keep rate is measured (or interpolated) and its drop <= max_drop."""
        drop = np.nan_to_num(self.drop, nan=np.inf)
        return ~self.extrapolated & (drop <= np.asarray(max_drop) + 1e-12)

    def row(self, i: int) -> dict:
        """JSON-ready {drop, source, extrapolated} for one keep rate (flat index)."""
        extrapolated = bool(np.ravel(self.extrapolated)[i])
        drop = float(np.ravel(self.drop)[i])
        return {
            "drop": None if extrapolated else drop,
            "source": (
                f"unmeasured: below the lowest published keep rate; {self.source}"
                if extrapolated
                else self.source
            ),
            "extrapolated": extrapolated,
        }


def _float(row: dict, key: str, path: Path) -> float:
    try:
        return float(row[key])
    except (KeyError, ValueError) as exc:
        raise PerfModelError(f"{path}: row {row.get('row_line')}: bad '{key}'") from exc


@lru_cache(maxsize=4)
def load_quality(path: str | Path = QUALITY_CSV, model: str = QUALITY_MODEL) -> QualityTable:
    """Parse the published quality CSV into a QualityTable for one base model."""
    path = Path(path)
    try:
        with path.open(newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if r.get("is_average", "").lower() == "true"]
    except OSError as exc:
        raise PerfModelError(f"cannot read quality data {path}: {exc}") from exc
    rows = [r for r in rows if r.get("base_model") == model]
    base = [r for r in rows if r.get("method") == BASE_METHOD]
    spec = [r for r in rows if r.get("method") == SPECPREFILL_METHOD]
    if len(base) != 1 or not spec:
        raise PerfModelError(f"{path}: no base and SpecPrefill LongBench averages for '{model}'")
    base_avg = _float(base[0], "longbench_score", path)
    points = []
    for r in spec:
        setting = r.get("method_setting", "").strip().rstrip("%")
        try:
            keep = float(setting) / 100.0
        except ValueError as exc:
            raise PerfModelError(f"{path}: cannot read keep rate '{setting}'") from exc
        avg = _float(r, "longbench_score", path)
        points.append(
            {
                "keep_rate": keep,
                "longbench_avg": avg,
                "drop": base_avg - avg,
                "source": r["source"],
                "table": r["table_caption"],
                "row_line": int(r["row_line"]),
                "file": str(path),
            }
        )
    points.sort(key=lambda p: p["keep_rate"])
    keeps = np.array([p["keep_rate"] for p in points] + [1.0])
    drops = np.array([p["drop"] for p in points] + [0.0])
    if np.any(np.diff(keeps) <= 0):
        raise PerfModelError(f"{path}: keep rates must be distinct and below 100%")
    return QualityTable(model, base_avg, keeps, drops, tuple(points), int(base[0]["row_line"]))


def quality_drop(keep_rate, table: QualityTable | None = None) -> QualityEstimate:
    """LongBench points lost at each keep rate (linear between published rates, 0 at keep=1).

    Keep rates below the lowest published one get drop=nan and extrapolated=True.
    """
    table = table or load_quality()
    k = np.asarray(keep_rate, float)
    if np.any(~np.isfinite(k)) or np.any(k <= 0) or np.any(k > 1):
        raise PerfModelError(f"keep rate must be in (0, 1], got {np.ravel(k).tolist()}")
    below = k < table.min_measured_keep - 1e-12
    drop = np.where(below, np.nan, np.interp(k, table.keep_rates, table.drops))
    return QualityEstimate(k, drop, below, table.source_text())


def meets_quality(keep_rate, max_drop, table: QualityTable | None = None) -> np.ndarray:
    """True where the keep rate is measured (or interpolated) and its drop <= max_drop."""
    return quality_drop(keep_rate, table).meets(max_drop)


def min_keep_rate_for_drop(max_drop, table: QualityTable | None = None) -> np.ndarray:
    """Lowest keep rate whose interpolated drop is <= max_drop (vectorized over max_drop).

    The binding constraint of a quality budget: every measured keep rate at or above it meets
    the budget when the drop falls with the keep rate (as published). Never below the lowest
    published keep rate (unmeasured); 1.0 when max_drop < 0 is impossible to meet except by
    keeping everything (drop 0). Works per linear segment, so a non-monotone table is fine.
    """
    table = table or load_quality()
    d = np.asarray(max_drop, float)[..., None]
    k0, k1 = table.keep_rates[:-1], table.keep_rates[1:]
    d0, d1 = table.drops[:-1], table.drops[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.clip((d - d0) / (d1 - d0), 0.0, 1.0)
    inside = np.where(d0 <= d, k0, np.where(d1 <= d, k0 + frac * (k1 - k0), np.inf))
    best = np.min(inside, axis=-1)
    return np.where(np.isfinite(best), best, 1.0)


# The issue named it so; "max" meant "for a maximum drop". Same function.
max_keep_rate_for_drop = min_keep_rate_for_drop
