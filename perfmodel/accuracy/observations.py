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

from perfmodel.accuracy.window import drop_beyond_context
from perfmodel.core.deployment import make_deployment
from perfmodel.core.inference import mean_decode_context
from perfmodel.errors import PerfModelError
from perfmodel.specs import inputs
from perfmodel.specs.profile import Profile, load_profile
from perfmodel.specs.units import plural

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
    lines: tuple[int, ...] = ()  # the rows' `line` column (source line), when the file has one
    path: str = ""  # the file the rows were read from

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
    notes: list[str] = field(default_factory=list)  # rows dropped, and why


TIME_COLUMNS = ("ttft_s", "tpot_s", "t_draft_ms", "t_verify_ms", "t_sd_ms", "t_autoregressive_ms")
SHAPE_COLUMNS = ("num_gpus", "batch_size", "prompt_len")
OPTIONAL_SHAPE_COLUMNS = ("tp", "output_len")  # may be blank; else as the shape columns
MAX_SHAPE = 1 << 30  # as specs.units.MAX_SIZE: a larger count is a typo
# columns a row's prediction depends on besides its deployment; rows equal in all of them
# (and in the deployment) have the same prediction, so each distinct shape is predicted once
PREDICT_COLUMNS = (
    "batch_size",
    "prompt_len",
    "output_len",
    "keep_rate",
    "gamma",
    "acceptance_len",
    "draft_kv_budget",
)
DEPLOYMENT_COLUMNS = ("model", "gpu", "num_gpus", "tp", "weight_dtype", "kv_dtype")
PATH_COLUMNS = ("model", "gpu", "speculator", "draft_model")  # names, or paths to spec files
MAX_CSV_BYTES = 500_000_000


def _col(frame, name, default):
    return frame[name] if name in frame.columns else default


def read_table(path: str | Path, name: str | None = None, notes: list[str] | None = None):
    """Read and check a measurement CSV (one clear line on any problem).

    Rows that cannot be predicted or scored are dropped and counted in `notes` (one line per
    cause, e.g. "dropped 3 rows: NaN ttft_s"): a shape column (num_gpus, batch_size,
    prompt_len; tp and output_len where given) missing, not positive, not whole or over 2^30
    drops the row; a time that is NaN, inf,
    zero or negative drops that quantity of the row (its other times are still used).
    """
    import pandas as pd

    notes = notes if notes is not None else []
    path = Path(path)
    if path.is_dir():
        raise PerfModelError(f"{path}: is a directory, not a measurement CSV")
    if not path.is_file():
        raise PerfModelError(f"measurements file not found: {path}")
    buffer = inputs.text_buffer(path, "measurement CSV", max_bytes=MAX_CSV_BYTES)
    try:
        frame = pd.read_csv(buffer)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise PerfModelError(f"{path}: not a readable CSV ({exc.__class__.__name__})") from None
    _resolve_paths(frame, path.parent)
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if not any(c in frame.columns for c in ("ttft_s", "tpot_s", "t_sd_ms")):
        missing.append("ttft_s or tpot_s")
    if missing:
        raise PerfModelError(f"{path}: missing column(s) {', '.join(missing)}")
    if frame.empty:
        raise PerfModelError(f"{path}: no data rows (only a header)")
    for col in NUMERIC_COLUMNS:
        if col in frame.columns:
            try:
                converted = pd.to_numeric(frame[col], errors="coerce")
            except (OverflowError, TypeError, ValueError):  # a 400-digit integer
                converted = pd.Series([inputs.to_float(x) for x in frame[col]], frame.index)
                converted[frame[col].isna()] = np.nan
            bad = converted.isna() & frame[col].notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise PerfModelError(
                    f"{path}: column '{col}' row {row + 2}: '{frame[col].iloc[row]}' is not a number"
                )
            frame[col] = converted.astype(float)
    if "output_len" not in frame.columns:  # optional: decode context then uses 1 token
        frame["output_len"] = np.nan
    frame["status"] = (
        frame["status"].astype(object).fillna("ok").astype(str).str.strip().str.lower()
        if "status" in frame.columns
        else "ok"
    )
    ok = (frame["status"] == "ok").to_numpy()
    keep = np.ones(len(frame), bool)
    for col in (*SHAPE_COLUMNS, *OPTIONAL_SHAPE_COLUMNS):
        if col not in frame.columns:
            continue
        values = frame[col].to_numpy(float)
        for cause, bad in _bad_shape(values):
            if col in OPTIONAL_SHAPE_COLUMNS and cause == "NaN":
                continue  # blank: the default (tp = num_gpus, output_len 1)
            bad &= keep
            if bad.any():
                notes.append(f"dropped {plural(int(bad.sum()), 'row')}: {cause} {col}")
                keep &= ~bad
    if not keep.all():
        frame = frame[keep].reset_index(drop=True)
        ok = ok[keep]
    for col in TIME_COLUMNS:
        if col not in frame.columns:
            continue
        values = frame[col].to_numpy(float)
        for cause, bad in _bad_time(values):
            bad &= ok
            if bad.any():
                notes.append(f"dropped {plural(int(bad.sum()), 'row')}: {cause} {col}")
        invalid = ~(np.isfinite(values) & (values > 0))
        frame.loc[invalid, col] = np.nan
    if frame.empty:
        raise PerfModelError(f"{path}: no usable rows ({'; '.join(notes)})")
    return frame


def _resolve_paths(frame, folder: Path) -> None:
    """Relative config.json / GPU YAML paths in the file resolve against the CSV's folder
    (not the working directory), so a measurement folder can be moved or shared whole."""
    for col in PATH_COLUMNS:
        if col not in frame.columns:
            continue

        def resolve(value, col=col):
            if not isinstance(value, str) or not value.strip():
                return value
            text = value.strip()
            if Path(text).is_absolute():
                return text
            candidate = folder / text
            looks_like_file = text.lower().endswith((".json", ".yaml", ".yml"))
            try:
                exists = candidate.exists()
            except OSError:  # a name too long to be a path is a name
                exists = False
            return str(candidate) if looks_like_file or exists else value

        frame[col] = frame[col].map(resolve)


def _bad_shape(values: np.ndarray):
    with np.errstate(invalid="ignore"):
        yield "NaN", np.isnan(values)
        yield "infinite", np.isinf(values)
        yield "non-positive", np.isfinite(values) & (values <= 0)
        yield "non-integer", np.isfinite(values) & (values > 0) & (values != np.round(values))
        yield "too large (over 2^30)", np.isfinite(values) & (values > MAX_SHAPE)


def _bad_time(values: np.ndarray):
    with np.errstate(invalid="ignore"):
        yield "NaN", np.isnan(values)
        yield "infinite", np.isinf(values)
        yield "zero", values == 0
        yield "negative", values < 0


@dataclass(frozen=True)
class _Group:
    """Rows sharing a deployment (and speculator/draft): predicted in one vectorized call
    over their distinct shapes, then scattered back to the rows."""

    key: tuple
    positions: np.ndarray  # where the group's rows sit in the observation's arrays
    shapes: object  # pandas DataFrame: one row per distinct shape
    inverse: np.ndarray  # row -> index into shapes


def _deployment_key(sub) -> tuple:
    first = sub.iloc[0]

    def text(col):
        value = first[col] if col in sub.columns else None
        return str(value) if isinstance(value, str) and value.strip() else "bf16"

    tp = first["tp"] if "tp" in sub.columns else np.nan
    return (
        str(first["model"]),
        str(first["gpu"]),
        int(first["num_gpus"]),
        int(tp) if tp == tp else None,
        text("weight_dtype"),
        text("kv_dtype"),
    )


def _groups(frame, rows: list[int], path: str, extra: tuple[str, ...] = ()) -> list[_Group]:
    """Group `rows` of `frame` by deployment columns (+ `extra`), once, at build time.

    Every group's deployment is checked here, so an unknown model or GPU in the file is one
    line naming the file and row, before any prediction."""
    sel = frame.iloc[rows].reset_index(drop=True)
    keys = [c for c in (*DEPLOYMENT_COLUMNS, *extra) if c in sel.columns]
    filled = sel[keys].astype(str)  # NaN -> 'nan', one group per spelling
    out = []
    for _, positions in filled.groupby(keys, sort=False).indices.items():
        positions = np.asarray(positions)
        sub = sel.iloc[positions]
        key = _deployment_key(sub)
        try:
            make_deployment(*key)
        except PerfModelError as exc:
            raise PerfModelError(f"{path}: row {rows[positions[0]] + 2}: {exc}") from None
        shape_cols = [c for c in PREDICT_COLUMNS if c in sub.columns]
        codes = (
            sub[shape_cols].groupby(shape_cols, sort=False, dropna=False).ngroup().to_numpy()
            if shape_cols
            else np.zeros(len(sub), int)
        )
        _, first = np.unique(codes, return_index=True)
        order = np.argsort(first)  # shapes in first-seen order, codes are first-seen too
        shapes = sub.iloc[first[order]].reset_index(drop=True)
        out.append(_Group(key, positions, shapes, codes))
    return out


def _grouped_predict(groups: list[_Group], n: int, fn):
    """Predict all rows for a profile: one deployment and one vectorized call per group."""

    def predict(profile: Profile) -> np.ndarray:
        out = np.empty(n)
        for g in groups:
            dep = make_deployment(*g.key, profile=profile)
            values = np.broadcast_to(np.asarray(fn(dep, g.shapes, profile), float), len(g.shapes))
            out[g.positions] = values[g.inverse]
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
    """'<model> b=<batch> L=<prompt>[ keep=<k>][ <draft_kv>[:<budget>]][ g=<gamma>]' per row."""
    sel = frame.iloc[list(rows)]
    if sel.empty:
        return []

    def whole(col):
        return sel[col].round().astype("Int64").astype(str)

    label = sel["model"].astype(str) + " b=" + whole("batch_size") + " L=" + whole("prompt_len")
    if "keep_rate" in sel.columns:
        keep = sel["keep_rate"].map(lambda v: f" keep={v:g}" if v == v else "")
        label = label + keep
    if "draft_kv" in sel.columns:
        budget = sel["draft_kv_budget"] if "draft_kv_budget" in sel.columns else [np.nan] * len(sel)
        kv = [
            (f" {m}" + (f":{int(b)}" if b == b and b else "")) if isinstance(m, str) else ""
            for m, b in zip(sel["draft_kv"], budget, strict=True)
        ]
        label = label + kv
    if "gamma" in sel.columns:
        label = label + sel["gamma"].map(lambda v: f" g={int(v)}" if v == v else "")
    return label.tolist()


def _lines(frame, rows) -> tuple[int, ...]:
    """The published rows' `line` column (the line of the source they were read from)."""
    if "line" not in frame.columns:
        return ()
    values = frame["line"].iloc[list(rows)]
    return tuple(int(v) for v in values) if values.notna().all() else ()


def build_table(
    path: str | Path, name: str | None = None, profile_override: str | None = None
) -> Table:
    """Turn a CSV into observations (and memory checks for rows marked oom)."""
    from perfmodel.core.inference import decode_step_time, prefill_time
    from perfmodel.planners.specdecode import specdecode_times
    from perfmodel.planners.specprefill_cost import specprefill_times
    from perfmodel.planners.speculation.deploy import helper_deployment

    path = Path(path)
    notes: list[str] = []
    frame = read_table(path, notes=notes)
    frame = drop_beyond_context(frame, notes)
    name = name or path.stem
    method = _col(frame, "method", None)
    if method is None:
        frame["method"] = "baseline"
    frame["method"] = frame["method"].astype(object).fillna("baseline").astype(str).str.lower()
    status = frame["status"] if "status" in frame.columns else None
    ok = (status == "ok") if status is not None else np.ones(len(frame), bool)
    profile_name = profile_override or _profile_column(frame, path)
    fit = bool(frame["fit"].iloc[0]) if "fit" in frame.columns else True
    setup = str(frame["setup"].iloc[0]) if "setup" in frame.columns else ""
    sample = str(frame["sample"].iloc[0]) if "sample" in frame.columns else ""
    table = Table(name, frame, str(path), profile_name, fit, setup, sample, notes=notes)
    gpu = str(frame["gpu"].iloc[0])

    def add(quantity, rows, measured, fn, extra=()):
        if len(rows):
            groups = _groups(frame, rows, str(path), extra)
            table.observations.append(
                Observation(
                    name,
                    quantity,
                    _labels(frame, rows),
                    np.asarray(measured, float),
                    _grouped_predict(groups, len(rows), fn),
                    profile_name,
                    fit,
                    gpu,
                    _lines(frame, rows),
                    str(path),
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
        _require(frame, sp, ("speculator", "keep_rate"), "specprefill", path)

        def sp_fn(dep, sub, p):
            spec = helper_deployment(dep, sub["speculator"].iloc[0], "speculator")
            return specprefill_times(
                dep,
                spec,
                sub["batch_size"].values,
                sub["prompt_len"].values,
                sub["keep_rate"].values,
            ).ttft_s

        rows = idx(sp & frame["ttft_s"].notna())
        add("ttft_s", rows, frame["ttft_s"].iloc[rows], sp_fn, ("speculator",))

    # MagicDec rows: draft, verify, speculative and autoregressive times
    md = (frame["method"] == "magicdec") & ok
    if md.any():
        _require(frame, md, ("draft_model", "gamma", "acceptance_len"), "magicdec", path)

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

        for quantity, col, attr in (
            ("t_autoregressive", "t_autoregressive_ms", "autoregressive_s"),
            ("t_verify", "t_verify_ms", "verify_s"),
            ("t_draft", "t_draft_ms", "draft_s"),
            ("t_sd", "t_sd_ms", "sd_s"),
        ):
            if col not in frame.columns:
                continue
            rows = idx(md & frame[col].notna())
            add(
                quantity,
                rows,
                frame[col].iloc[rows] / 1e3,
                lambda dep, sub, p, attr=attr: getattr(md_times(dep, sub), attr),
                ("draft_model",),
            )

    if status is not None:
        for i in idx(status == "oom"):
            table.memory_checks.append({"row": int(i), "label": _labels(frame, [i])[0]})
    return table


def _require(frame, mask, columns, method: str, path: Path) -> None:
    """Rows of a method need its columns, filled in: one line naming the first gap."""
    for col in columns:
        if col not in frame.columns:
            raise PerfModelError(f"{path}: rows with method {method} need a column '{col}'")
        empty = np.asarray(mask) & frame[col].isna().to_numpy()
        if empty.any():
            row = int(np.flatnonzero(empty)[0])
            raise PerfModelError(f"{path}: row {row + 2} (method {method}) has no '{col}'")


def _profile_column(frame, path: Path) -> str:
    """The profile named in the file's `profile` column ('' = none); an unknown name is an
    error naming the file, not a silent fallback to the GPU's default."""
    if "profile" not in frame.columns:
        return ""
    value = frame["profile"].iloc[0]
    name = str(value).strip() if isinstance(value, str) else ""
    if name:
        try:
            load_profile(name)
        except PerfModelError as exc:
            raise PerfModelError(f"{path}: column 'profile': {exc}") from None
    return name


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
