"""Measured tables (published or from the profiler) turned into predictable observations.

An Observation is one measured quantity of one table (e.g. TTFT of the 70B SpecPrefill rows,
or MagicDec's T_verify column) with a function that predicts it for any efficiency profile.
validate.py compares them; calibrate.py fits profiles to them. Both read tables in the
measurement CSV schema of DESIGN.md (core columns model, gpu, num_gpus, tp, weight_dtype,
kv_dtype, batch_size, prompt_len, output_len, ttft_s, tpot_s, status), optionally extended
with method (baseline | specprefill | magicdec) and its columns (speculator, keep_rate;
draft_model, draft_kv, draft_kv_budget, gamma, acceptance_len, t_draft_ms, t_verify_ms,
t_sd_ms, t_autoregressive_ms), context_len (a tpot_s row that is one decode step with
that many tokens already cached, instead of a request's mean step), profile (which framework
profile the rows belong to), fit (false: report only, never fit) and sample (what the rows are
to that profile when it was not fitted on them, e.g. 'held-out model (never fitted)').
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from perfmodel.core.deployment import make_deployment
from perfmodel.core.inference import mean_decode_context
from perfmodel.errors import PerfModelError
from perfmodel.specs.profile import Profile

REQUIRED_COLUMNS = ("model", "gpu", "num_gpus", "batch_size", "prompt_len")
NUMERIC_COLUMNS = (
    "num_gpus",
    "tp",
    "batch_size",
    "prompt_len",
    "output_len",
    "ttft_s",
    "tpot_s",
    "keep_rate",
    "gamma",
    "acceptance_len",
    "draft_kv_budget",
    "t_draft_ms",
    "t_verify_ms",
    "t_sd_ms",
    "t_autoregressive_ms",
    "context_len",
)


@dataclass
class Observation:
    table: str
    quantity: str  # ttft_s, tpot_s, t_autoregressive, t_verify, t_draft, t_sd
    labels: list[str]
    measured: np.ndarray  # seconds
    predict: Callable[[Profile], np.ndarray]
    profile: str  # name of the profile these rows belong to ('' = by GPU)
    fit: bool = True
    gpu: str = ""

    @property
    def name(self) -> str:
        return f"{self.table}/{self.quantity}"


@dataclass
class Table:
    name: str
    frame: object  # pandas DataFrame
    path: str
    profile: str
    fit: bool
    setup: str
    sample: str = ""  # what the rows are to the profile when not fitted on (column `sample`)
    observations: list[Observation] = field(default_factory=list)
    memory_checks: list[dict] = field(default_factory=list)


def _col(frame, name, default):
    return frame[name] if name in frame.columns else default


def read_table(path: str | Path, name: str | None = None):
    """Read and check a measurement CSV (one clear line on any problem)."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise PerfModelError(f"measurements file not found: {path}")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise PerfModelError(f"{path}: not a readable CSV ({exc.__class__.__name__})") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if (
        "ttft_s" not in frame.columns
        and "tpot_s" not in frame.columns
        and "t_sd_ms" not in frame.columns
    ):
        missing.append("ttft_s or tpot_s")
    if missing:
        raise PerfModelError(f"{path}: missing column(s) {', '.join(missing)}")
    for col in NUMERIC_COLUMNS:
        if col in frame.columns:
            converted = pd.to_numeric(frame[col], errors="coerce")
            bad = converted.isna() & frame[col].notna()
            if bad.any():
                row = int(bad.idxmax())
                raise PerfModelError(
                    f"{path}: column '{col}' row {row + 2}: '{frame[col][row]}' is not a number"
                )
            frame[col] = converted
    if "status" in frame.columns:
        frame["status"] = frame["status"].fillna("ok")
    return frame


def _deployments(frame, profile: Profile | str | None, model_col="model", mode=None):
    """Cache one deployment per distinct (model, gpu, num_gpus, tp, dtypes)."""
    cache: dict = {}

    def get(i, model=None):
        r = frame.iloc[i]
        key = (
            model or r[model_col],
            r["gpu"],
            int(r["num_gpus"]),
            int(r["tp"]) if "tp" in frame.columns and r["tp"] == r["tp"] else None,
            str(r.get("weight_dtype", "bf16") or "bf16"),
            str(r.get("kv_dtype", "bf16") or "bf16"),
        )
        if key not in cache:
            cache[key] = make_deployment(*key, mode=mode, profile=profile)
        return cache[key]

    return get


def _grouped_predict(frame, rows, fn):
    """Predict rows in groups sharing a deployment key, vectorized inside each group."""

    def predict(profile: Profile) -> np.ndarray:
        out = np.empty(len(rows))
        get = _deployments(frame, profile)
        groups: dict = {}
        for j, i in enumerate(rows):
            dep = get(i)
            groups.setdefault(id(dep), (dep, []))[1].append((j, i))
        for dep, members in groups.values():
            idx = np.array([j for j, _ in members])
            sub = frame.iloc[[i for _, i in members]]
            out[idx] = fn(dep, sub, profile)
        return out

    return predict


def _context(sub) -> np.ndarray:
    """Context of the decode step a tpot_s row measures: `context_len` (tokens already in the
    KV cache: one measured step) where given, else the mean step of a request."""
    mean = mean_decode_context(sub["prompt_len"].values, sub["output_len"].fillna(1).values)
    if "context_len" not in sub.columns:
        return mean
    return np.where(sub["context_len"].notna(), sub["context_len"].values, mean)


def _labels(frame, rows) -> list[str]:
    out = []
    for i in rows:
        r = frame.iloc[i]
        label = f"{r['model']} b={int(r['batch_size'])} L={int(r['prompt_len'])}"
        if "keep_rate" in frame.columns and r["keep_rate"] == r["keep_rate"]:
            label += f" keep={r['keep_rate']:g}"
        if "draft_kv" in frame.columns and isinstance(r.get("draft_kv"), str):
            budget = r.get("draft_kv_budget")
            label += f" {r['draft_kv']}" + (
                f":{int(budget)}" if budget == budget and budget else ""
            )
        if "gamma" in frame.columns and r["gamma"] == r["gamma"]:
            label += f" g={int(r['gamma'])}"
        out.append(label)
    return out


def build_table(
    path: str | Path, name: str | None = None, profile_override: str | None = None
) -> Table:
    """Turn a CSV into observations (and memory checks for rows marked oom)."""
    from perfmodel.core.inference import decode_step_time, prefill_time
    from perfmodel.planners.specdecode import specdecode_times
    from perfmodel.planners.specprefill import specprefill_times
    from perfmodel.planners.speculation.deploy import helper_deployment

    path = Path(path)
    frame = read_table(path)
    name = name or path.stem
    method = _col(frame, "method", None)
    if method is None:
        frame["method"] = "baseline"
    frame["method"] = frame["method"].fillna("baseline").astype(str).str.lower()
    status = frame["status"] if "status" in frame.columns else None
    ok = (status == "ok") if status is not None else np.ones(len(frame), bool)
    profile_name = profile_override or str(_col(frame, "profile", [""])[0] or "")
    fit = bool(frame["fit"].iloc[0]) if "fit" in frame.columns else True
    setup = str(frame["setup"].iloc[0]) if "setup" in frame.columns else ""
    sample = str(frame["sample"].iloc[0]) if "sample" in frame.columns else ""
    table = Table(name, frame, str(path), profile_name, fit, setup, sample)
    gpu = str(frame["gpu"].iloc[0])

    def add(quantity, rows, measured, fn):
        if len(rows):
            table.observations.append(
                Observation(
                    name,
                    quantity,
                    _labels(frame, rows),
                    np.asarray(measured, float),
                    _grouped_predict(frame, rows, fn),
                    profile_name,
                    fit,
                    gpu,
                )
            )

    def idx(mask) -> list[int]:
        return [int(i) for i in np.flatnonzero(np.asarray(mask))]

    # plain prefill and decode (published baselines, profiler sweeps)
    base = (frame["method"] == "baseline") & ok
    if "ttft_s" in frame.columns:
        rows = idx(base & frame["ttft_s"].notna())
        add(
            "ttft_s",
            rows,
            frame["ttft_s"].iloc[rows],
            lambda dep, sub, p: prefill_time(
                dep, sub["batch_size"].values, sub["prompt_len"].values
            ),
        )
    if "tpot_s" in frame.columns:
        rows = idx(base & frame["tpot_s"].notna())
        add(
            "tpot_s",
            rows,
            frame["tpot_s"].iloc[rows],
            lambda dep, sub, p: decode_step_time(dep, sub["batch_size"].values, _context(sub)),
        )

    # SpecPrefill rows: speculator on the same GPUs
    sp = (frame["method"] == "specprefill") & ok
    if sp.any():

        def sp_fn(dep, sub, p):
            spec = helper_deployment(dep, sub["speculator"].iloc[0], "speculator")
            return specprefill_times(
                dep,
                spec,
                sub["batch_size"].values,
                sub["prompt_len"].values,
                sub["keep_rate"].values,
            ).ttft_s

        rows = idx(sp)
        add("ttft_s", rows, frame["ttft_s"].iloc[rows], sp_fn)

    # MagicDec rows: draft, verify, speculative and autoregressive times
    md = (frame["method"] == "magicdec") & ok
    if md.any():

        def md_times(dep, sub):
            draft = helper_deployment(dep, sub["draft_model"].iloc[0], "draft")
            budget = sub["draft_kv_budget"].fillna(np.inf).values
            return specdecode_times(
                dep,
                draft,
                sub["batch_size"].values,
                sub["prompt_len"].values,
                sub["gamma"].values,
                sub["acceptance_len"].values,
                budget,
            )

        rows = idx(md)
        sel = frame.iloc[rows]
        add(
            "t_autoregressive",
            rows,
            sel["t_autoregressive_ms"] / 1e3,
            lambda dep, sub, p: md_times(dep, sub).autoregressive_s,
        )
        add(
            "t_verify",
            rows,
            sel["t_verify_ms"] / 1e3,
            lambda dep, sub, p: md_times(dep, sub).verify_s,
        )
        add(
            "t_draft", rows, sel["t_draft_ms"] / 1e3, lambda dep, sub, p: md_times(dep, sub).draft_s
        )
        add("t_sd", rows, sel["t_sd_ms"] / 1e3, lambda dep, sub, p: md_times(dep, sub).sd_s)

    if status is not None:
        for i in idx(status == "oom"):
            table.memory_checks.append({"row": int(i), "label": _labels(frame, [i])[0]})
    return table


def published_tables(
    names: list[str] | None = None, profile_override: str | None = None
) -> list[Table]:
    from perfmodel.paths import PUBLISHED_DIR

    paths = sorted(PUBLISHED_DIR.glob("*.csv"))
    known = [p.stem for p in paths]
    if names:
        from perfmodel.errors import suggest

        for n in names:
            if n not in known:
                raise suggest(n, known, "table")
        paths = [p for p in paths if p.stem in names]
    return [build_table(p, profile_override=profile_override) for p in paths]
