"""Operator tables: measured kernel times of one framework on one GPU, read from a CSV.

Long format, one row per measured point (written by `perfmodel profile --ops`, or converted
from the shared H100 reference by validation/build_measured.py). Columns:
- op: gemm | attn_decode | attn_prefill | rmsnorm | silu_mul | copy | allreduce
- shape (qkv, o, gate_up, down, lm_head; blank otherwise), m (tokens), k, n (weight K x N of
  y[m, n] = x[m, k] @ W[k, n]), batch, ctx, heads, kv_heads, head_dim, bytes, flops
- time_ms: one kernel (or one op) on the device, inside a CUDA graph (no launch gaps)
- dtype (per row: bf16 | fp8 GEMMs may share a table), gpu (perfmodel GPU key, e.g.
  h100-sxm), gpu_name, framework (e.g. torch-cudagraph, vllm), framework_version, driver,
  timestamp, source (provenance; unknown extra columns ignored).
- optional: num_gpus (collective rows: op allreduce, GPUs in the group, `bytes` = message
  bytes, time_ms = one all-reduce), license and source_package (imported public tables:
  specs/optable_import.py).
Loading checks the columns, the times (finite, > 0), the GPU and the collective rows (num_gpus
>= 2, bytes > 0); any problem is one PerfModelError line. Parsing uses the csv module and
numpy (no pandas), and a table is read once per process (lru_cache); a shipped table is read
from its checked binary copy (specs/optable_store.py) when that copy is current.
Shipped tables: perfmodel/optables/<gpu>__<framework>[-<version>].csv; a table's name is its
file name without .csv.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from perfmodel.errors import PerfModelError, suggest
from perfmodel.paths import PACKAGE_DIR
from perfmodel.specs import inputs, optable_store
from perfmodel.specs.dtypes import KV_BYTES
from perfmodel.specs.hardware import resolve_gpu

OPTABLE_DIR = PACKAGE_DIR / "optables"
OPS = ("gemm", "attn_decode", "attn_prefill", "rmsnorm", "silu_mul", "copy", "allreduce")
NUMERIC = ("m", "k", "n", "batch", "ctx", "heads", "kv_heads", "head_dim", "bytes", "flops")
REQUIRED = ("op", *NUMERIC, "time_ms", "dtype", "gpu", "framework")
OPTIONAL_NUMERIC = ("num_gpus",)
# sanity bounds: one kernel moves at most 1e18 bytes or FLOPs, a shape is at most 2^30, a
# measured kernel takes at most 1e7 ms; past them a cell is a typo (and overflows the curves)
MAX_SHAPE, MAX_COUNT, MAX_TIME_MS = float(1 << 30), 1e18, 1e7
ATTENTION_SHAPE = ("batch", "ctx", "heads", "kv_heads", "head_dim")
NEEDED_BY_OP = {
    "gemm": ("m", "k", "n"),
    "attn_decode": ATTENTION_SHAPE,
    "attn_prefill": ATTENTION_SHAPE,
    "rmsnorm": ("bytes",),
    "silu_mul": ("bytes",),
    "copy": ("bytes",),
}
PROVENANCE = (
    "gpu_name",
    "framework_version",
    "driver",
    "timestamp",
    "source",
    "license",
    "source_package",
)


@dataclass(frozen=True, eq=False)
class OpTable:
    """Columns as numpy arrays (NaN where blank), one entry per measured point."""

    gpu: str
    framework: str
    path: str
    op: np.ndarray  # str
    shape: np.ndarray  # str
    values: dict[str, np.ndarray]  # NUMERIC and OPTIONAL_NUMERIC columns and time_s
    dtype: str = "bf16"  # of the first row
    provenance: dict = field(default_factory=dict)
    dtypes: np.ndarray | None = None  # str per row (None: all `dtype`)

    def rows(self, op: str, dtype: str | None = None) -> np.ndarray:
        """Row indices of one op (and one dtype, when given)."""
        sel = self.op == op
        if dtype is not None:
            sel &= (
                self.dtypes if self.dtypes is not None else np.full(len(self.op), self.dtype)
            ) == dtype
        return np.flatnonzero(sel)

    def col(self, name: str, op: str) -> np.ndarray:
        return self.values[name][self.rows(op)]

    @property
    def name(self) -> str:
        """'<gpu>__<framework>', with '-<version>' when the framework version is a bare
        release number (imported vLLM tables: 'h100-sxm__vllm-0.24.0'); a shipped table's
        file is named so."""
        return _table_name(self.gpu, self.framework, self.framework_version)

    @property
    def framework_version(self) -> str:
        return str(self.provenance.get("framework_version", "") or "")


class _Decoded:
    """A text column of CodedOpTable: decoded on its first read, then kept in the instance
    (a non-data descriptor: the instance's own value hides it from then on)."""

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, table, owner=None):
        if table is None:
            return self
        column = optable_store.decode_strings(*table._coded[self.name])
        object.__setattr__(table, self.name, column)
        return column


class CodedOpTable(OpTable):
    """An OpTable read from its binary copy (specs/optable_store.py): the same fields, values
    and results, but its text columns (op, shape, dtypes) stay codes into their sorted
    distinct values until first read (making the string arrays took ~0.5 ms a table, and a
    command with stored curves reads none), and `rows` compares the codes."""

    def __init__(self, coded: dict | None = None, **fields):
        """`coded`: name -> (sorted distinct values, numpy dtype, codes) of the text columns
        not in `fields` (dataclasses.replace passes every field, the text columns as arrays)."""
        for name, value in fields.items():
            object.__setattr__(self, name, value)
        coded = {c: s for c, s in (coded or {}).items() if c not in fields}
        object.__setattr__(self, "_coded", coded)

    op = _Decoded()
    shape = _Decoded()
    dtypes = _Decoded()

    def rows(self, op: str, dtype: str | None = None) -> np.ndarray:
        """OpTable.rows: the rows whose code is the value's (none when it does not occur)."""
        if "op" not in self._coded or (dtype is not None and "dtypes" not in self._coded):
            return super().rows(op, dtype)  # given as strings
        sel = self._matches("op", op)
        if dtype is not None:
            sel &= self._matches("dtypes", dtype)
        return np.flatnonzero(sel)

    def _matches(self, column: str, value: str) -> np.ndarray:
        vocab, _, codes = self._coded[column]
        if value not in vocab:
            return np.zeros(len(codes), dtype=bool)
        return codes == vocab.index(value)


@lru_cache(maxsize=64)
def _table_name(gpu: str, framework: str, version: str) -> str:
    """OpTable.name, worked out once per table (the pricing path asks ~600 times a run)."""
    bare = re.fullmatch(r"\d+(\.\d+)+[\w.+-]*", version) is not None
    return f"{gpu}__{framework}" + (f"-{version}" if bare else "")


def _number(text: str, path: Path, line: int, column: str) -> float:
    if text is None or text.strip() == "":
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise PerfModelError(
            f"{path}: column '{column}' line {line}: '{text}' is not a number"
        ) from None


def _column(texts: list[str], path: Path, column: str) -> np.ndarray:
    """One numeric column, parsed at once (blank -> NaN); a bad cell is one error line."""
    try:
        return np.array([t.strip() or "nan" for t in texts], dtype=float)
    except ValueError:
        for i, t in enumerate(texts):
            _number(t, path, i + 2, column)
        raise  # unreachable: _number raised on the bad cell


def read_optable(path: str | Path, gpu: str | None = None) -> OpTable:
    """Read and check an operator table (CSV, or gzip-compressed CSV: .csv.gz); `gpu`: the
    GPU key it must have been measured on. Columns are parsed at once with numpy (a 10,000-row
    table in ~20 ms)."""
    import csv  # here: a shipped table is read from its binary copy, without these
    import gzip
    import io

    path = Path(path)
    if not path.is_file():
        raise PerfModelError(f"operator table not found: {path}")
    try:  # any text encoding (specs/inputs.py), gzipped or not; binary is one line
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                text = inputs.decode(fh.read(), str(path), "operator table CSV")
            stream = io.StringIO(text, newline="")
        else:
            stream = inputs.text_buffer(path, "operator table CSV")
        reader = csv.reader(stream)
        header = next(reader, [])
        body = list(reader)
    except (csv.Error, OSError, EOFError) as exc:
        raise PerfModelError(f"{path}: not a readable CSV ({exc.__class__.__name__})") from None
    if is_profiler_output(header):  # `perfmodel profile --ops` output, read as it was written
        raw = [dict(zip(header, r, strict=False)) for r in body]
        rows = from_profiler_rows(raw, str(path))
        header = TABLE_COLUMNS
        body = [[str(r[c]) for c in TABLE_COLUMNS] for r in rows]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise PerfModelError(f"{path}: operator table missing column(s) {', '.join(missing)}")
    if not body:
        raise PerfModelError(f"{path}: operator table has no rows")
    width = len(header)
    body = [r + [""] * (width - len(r)) if len(r) < width else r for r in body]
    cols = dict(zip(header, zip(*body, strict=False), strict=False))
    blank = ("",) * len(body)
    op = np.array(cols["op"])
    unknown = ~np.isin(op, OPS)
    if unknown.any():
        i = int(np.flatnonzero(unknown)[0])
        raise PerfModelError(
            f"{path}: line {i + 2}: unknown op '{op[i]}' (known: {', '.join(OPS)})"
        )
    values = {c: _column(cols.get(c, blank), path, c) for c in (*NUMERIC, *OPTIONAL_NUMERIC)}
    for name, needed in NEEDED_BY_OP.items():  # the columns an op's curve is read along
        for c in needed:
            bad = (op == name) & np.isnan(values[c])
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise PerfModelError(
                    f"{path}: line {i + 2}: a {name} row needs {', '.join(needed)}; "
                    f"column '{c}' is blank"
                )
    for c, v in values.items():  # a shape, byte or FLOP count is blank or a positive number
        top = MAX_COUNT if c in ("bytes", "flops") else MAX_SHAPE
        bad = ~np.isnan(v) & ~(np.isfinite(v) & (v > 0) & (v <= top))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise PerfModelError(
                f"{path}: line {i + 2}: column '{c}' must be blank or a number from 0 to "
                f"{top:g} (excluded 0), got '{cols.get(c, blank)[i]}'"
            )
    t = _column(cols["time_ms"], path, "time_ms")
    bad = ~(np.isfinite(t) & (t > 0) & (t <= MAX_TIME_MS))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise PerfModelError(
            f"{path}: line {i + 2}: time_ms must be a positive number up to {MAX_TIME_MS:g}, got "
            f"'{cols['time_ms'][i]}'"
        )
    values["time_s"] = t * 1e-3
    ar = op == "allreduce"
    bad = ar & ~((values["num_gpus"] >= 2) & (values["bytes"] > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise PerfModelError(
            f"{path}: line {i + 2}: an allreduce row needs num_gpus >= 2 and bytes > 0 "
            f"(message bytes), got num_gpus '{cols.get('num_gpus', blank)[i]}', bytes "
            f"'{cols['bytes'][i]}'"
        )
    gpus, frameworks = sorted(set(cols["gpu"])), sorted(set(cols["framework"]))
    if len(gpus) != 1 or len(frameworks) != 1:
        raise PerfModelError(
            f"{path}: one GPU and one framework per operator table, got {gpus} / {frameworks}"
        )
    _check_gpu(path, gpus[0], gpu)
    prov = {c: cols[c][0] for c in PROVENANCE if c in cols}
    dtypes = np.array([d or "bf16" for d in cols["dtype"]])
    return OpTable(
        gpu=gpus[0],
        framework=frameworks[0],
        path=str(path),
        op=op,
        shape=np.array(cols.get("shape", blank)),
        values=values,
        dtype=str(dtypes[0]),
        provenance=prov,
        dtypes=dtypes,
    )


def _check_gpu(path, measured_on: str, gpu: str | None) -> None:
    if gpu is not None and measured_on != gpu:
        raise PerfModelError(f"{path}: operator table measured on '{measured_on}', not on '{gpu}'")


def table_name(path: str | Path) -> str:
    """A table's name: its file name without .csv or .csv.gz."""
    name = Path(path).name
    for suffix in (".csv.gz", ".csv"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


def shipped_tables() -> dict[str, Path]:
    """Shipped tables by name '<gpu>__<framework>[-<version>]' (CSV, or gzip-compressed CSV
    for the imported ones)."""
    return dict(_shipped_tables())


@lru_cache(maxsize=1)
def _shipped_tables() -> dict[str, Path]:
    """The package's tables, listed once per process (load_optable asks for each table)."""
    files = [*OPTABLE_DIR.glob("*.csv"), *OPTABLE_DIR.glob("*.csv.gz")]
    return {table_name(p): p for p in sorted(files)}


def _is_path(name_or_path: str) -> bool:
    return name_or_path.endswith((".csv", ".csv.gz")) or "/" in name_or_path


@lru_cache(maxsize=16)
def load_optable(name_or_path: str, gpu: str | None = None) -> OpTable:
    """A shipped table by name or a CSV path (cached: read once per process). A shipped
    table is read from its binary copy when that copy is current (specs/optable_store.py:
    the same arrays, without parsing the CSV), else from the CSV; a path always from the CSV."""
    if _is_path(name_or_path):
        return read_optable(name_or_path, gpu)
    shipped = _shipped_tables()
    if name_or_path not in shipped:
        raise suggest(name_or_path, list(shipped), "operator table")
    stored = _shipped_copy(name_or_path)
    if stored is None:
        return read_optable(shipped[name_or_path], gpu)
    _check_gpu(stored.columns["path"], stored.columns["gpu"], gpu)
    return CodedOpTable(stored.coded, **stored.columns)


@lru_cache(maxsize=16)
def _shipped_copy(name: str) -> optable_store.StoredTable | None:
    """The current binary copy of a shipped table (read once per process), or None."""
    return optable_store.read(_shipped_tables()[name])


def stored_extra(name_or_path: str) -> tuple[dict, dict[str, np.ndarray]] | None:
    """(meta, arrays) stored with a shipped table's columns in its current copy (the curves
    core/optable/stored.py builds from it); None for a path, an unknown name or no copy."""
    if _is_path(name_or_path) or name_or_path not in _shipped_tables():
        return None
    stored = _shipped_copy(name_or_path)
    return None if stored is None else (stored.extra_meta, stored.extra)


def same_architecture(gpu_a: str, gpu_b: str) -> bool:
    """True when both GPUs belong to one architecture family (`architecture:` in their
    hardware YAML): a table transfers, scaled, only within one."""
    try:
        arch_a, arch_b = resolve_gpu(gpu_a).architecture, resolve_gpu(gpu_b).architecture
    except PerfModelError:
        return False
    return bool(arch_a) and arch_a not in ("cpu",) and arch_a == arch_b


# ---- `perfmodel profile --ops` output -> operator-table rows --------------------------------
# The profiler writes one row per microbenchmark with the model's op name in `op`, the kernel
# class in `kernel` and `context` for attention; the rows below are this module's format.
# Byte counts per op (e = bytes per element of the row's dtype): GEMM (K*N + M*K + M*N) e;
# decode attention K+V read 2 B C kv hd e; causal prefill attention 4 B S h hd e; RMSNorm read
# + write 2 M d e; SiLU*mul (two kernels) 5 M f e; copy read + write as measured.
PROFILER_FRAMEWORK = {"cuda_graph": "torch-cudagraph", "wall": "torch-eager"}
TABLE_COLUMNS = (
    "op,shape,m,k,n,batch,ctx,heads,kv_heads,head_dim,bytes,flops,time_ms,dtype,gpu,"
    "gpu_name,framework,framework_version,driver,timestamp,source"
).split(",")
_TIMING = {"cuda_graph": "CUDA graph", "wall": "wall clock"}
# imported public tables (specs/optable_import.py): the same columns plus these
IMPORT_COLUMNS = [*TABLE_COLUMNS, "num_gpus", "license", "source_package"]


def op_counts(op: str, e: int, m=0, k=0, n=0, batch=0, ctx=0, heads=0, kv_heads=0, head_dim=0):
    """The shape columns, bytes and FLOPs of one microbenchmark row (e bytes per element;
    the formulas in the comment above). n is the row width for rmsnorm and silu_mul."""
    if op == "gemm":
        return dict(m=m, k=k, n=n, bytes=e * (k * n + m * k + m * n), flops=2 * m * k * n)
    b, c, h, kv, hd = batch, ctx, heads, kv_heads, head_dim
    if op == "attn_decode":
        by, fl = e * 2 * b * c * kv * hd, 4 * b * h * c * hd
    elif op == "attn_prefill":
        by, fl = e * 4 * b * c * h * hd, 2 * b * h * c * c * hd
    else:  # rmsnorm: read + write; silu_mul: two kernels, 5 M f elements in all
        return dict(m=m, n=n, bytes=e * (2 if op == "rmsnorm" else 5) * m * n)
    return dict(batch=b, ctx=c, heads=h, kv_heads=kv, head_dim=hd, bytes=by, flops=fl)


def is_profiler_output(header) -> bool:
    """True for a CSV written by `perfmodel profile --ops` (kernel and timing columns)."""
    return "kernel" in header and "timing" in header and "context" in header


def from_profiler_rows(raw: list[dict], source: str) -> list[dict]:
    """Operator-table rows from the ok rows of a `profile --ops` CSV (all-reduces left out:
    the cost model prices them from the link). framework: torch-cudagraph for CUDA-graph
    timing, torch-eager for wall-clock timing (CPU)."""
    out = []
    for r in raw:
        if r.get("status", "ok") != "ok" or r["kernel"] == "allreduce":
            continue
        op, e = r["kernel"], int(KV_BYTES.get(r["dtype"], 2.0))  # bytes per element
        row = dict.fromkeys(TABLE_COLUMNS, "")
        row.update(op=op, time_ms=r["time_ms"], dtype=r["dtype"])

        def i(column: str, r=r) -> int:
            return int(float(r[column]))

        if op == "gemm":
            shape = r["op"].replace("mlp_", "").replace("_proj", "")
            row.update(shape=shape, **op_counts(op, e, m=i("m"), k=i("k"), n=i("n")))
        elif op in ("attn_decode", "attn_prefill"):
            dims = {c: i(c) for c in ("batch", "heads", "kv_heads", "head_dim")}
            row.update(op_counts(op, e, ctx=i("context"), **dims))
        elif op in ("rmsnorm", "silu_mul"):
            row.update(op_counts(op, e, m=i("m"), n=i("n")))
        elif op == "copy":
            row.update(bytes=r["bytes"])
        row.update(
            gpu=r["gpu"],
            gpu_name=r.get("gpu_name", ""),
            framework=PROFILER_FRAMEWORK.get(r.get("timing", ""), "torch-eager"),
            framework_version=r.get("framework_version", ""),
            driver=r.get("driver", ""),
            timestamp=r.get("timestamp", ""),
            source=f"{source} (perfmodel profile --ops, {_TIMING.get(r.get('timing', ''), '')} "
            f"x{r.get('reps', '')})",
        )
        out.append(row)
    return out
