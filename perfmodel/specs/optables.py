"""Operator tables: measured kernel times of one framework on one GPU, read from a CSV.

Long format, one row per measured point (written by `perfmodel profile --ops`, or converted
from the shared H100 reference by validation/build_measured.py). Columns:
- op: gemm | attn_decode | attn_prefill | rmsnorm | silu_mul | copy | allreduce
- shape (qkv, o, gate_up, down, lm_head; blank otherwise), m (tokens), k, n (weight K x N of
  y[m, n] = x[m, k] @ W[k, n]), batch, ctx, heads, kv_heads, head_dim, bytes, flops
- time_ms: one kernel (or one op) on the device, inside a CUDA graph (no launch gaps)
- dtype, gpu (perfmodel GPU key, e.g. h100-sxm), gpu_name, framework (e.g. torch-cudagraph),
  framework_version, driver, timestamp, source (provenance; unknown extra columns ignored).
Loading checks the columns, the times (finite, > 0) and the GPU; any problem is one
PerfModelError line. Parsing uses the csv module and numpy (no pandas: `recommend` starts
in under 0.5 s), and a table is read once per process (lru_cache).
Shipped tables: perfmodel/optables/<gpu>__<framework>.csv.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from perfmodel.errors import PerfModelError, suggest
from perfmodel.paths import PACKAGE_DIR
from perfmodel.specs import inputs
from perfmodel.specs.dtypes import KV_BYTES

OPTABLE_DIR = PACKAGE_DIR / "optables"
OPS = ("gemm", "attn_decode", "attn_prefill", "rmsnorm", "silu_mul", "copy", "allreduce")
NUMERIC = ("m", "k", "n", "batch", "ctx", "heads", "kv_heads", "head_dim", "bytes", "flops")
REQUIRED = ("op", *NUMERIC, "time_ms", "dtype", "gpu", "framework")
PROVENANCE = ("gpu_name", "framework_version", "driver", "timestamp", "source")

# GPU architecture families: a table transfers (scaled by peak ratios) only within one.
ARCHITECTURE = {
    "h100-sxm": "hopper",
    "h100-pcie": "hopper",
    "h200": "hopper",
    "a100-40gb": "ampere",
    "a100-80gb": "ampere",
    "l40s": "ada",
    "rtx4090": "ada",
    "b200": "blackwell",
    "mi300x": "cdna3",
}


@dataclass(frozen=True)
class OpTable:
    """Columns as numpy arrays (NaN where blank), one entry per measured point."""

    gpu: str
    framework: str
    path: str
    op: np.ndarray  # str
    shape: np.ndarray  # str
    values: dict[str, np.ndarray]  # NUMERIC columns and time_s
    dtype: str = "bf16"
    provenance: dict = field(default_factory=dict)

    def rows(self, op: str) -> np.ndarray:
        return np.flatnonzero(self.op == op)

    def col(self, name: str, op: str) -> np.ndarray:
        return self.values[name][self.rows(op)]

    @property
    def name(self) -> str:
        return f"{self.gpu}__{self.framework}"


def _number(text: str, path: Path, line: int, column: str) -> float:
    if text is None or text.strip() == "":
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise PerfModelError(
            f"{path}: column '{column}' line {line}: '{text}' is not a number"
        ) from None


def read_optable(path: str | Path, gpu: str | None = None) -> OpTable:
    """Read and check an operator table; `gpu`: the GPU key it must have been measured on."""
    path = Path(path)
    if not path.is_file():
        raise PerfModelError(f"operator table not found: {path}")
    try:  # any text encoding (specs/inputs.py); binary is one line naming the file
        reader = csv.DictReader(inputs.text_buffer(path, "operator table CSV"))
        header = reader.fieldnames or []
        records = list(reader)
    except csv.Error as exc:
        raise PerfModelError(f"{path}: not a readable CSV ({exc})") from None
    if any(None in r or any(v is None for v in r.values()) for r in records):
        raise PerfModelError(f"{path}: a row has more or fewer cells than the header")
    if is_profiler_output(header):  # `perfmodel profile --ops` output, read as it was written
        records = [
            {k: str(v) for k, v in row.items()} for row in from_profiler_rows(records, str(path))
        ]
        header = TABLE_COLUMNS
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise PerfModelError(f"{path}: operator table missing column(s) {', '.join(missing)}")
    if not records:
        raise PerfModelError(f"{path}: operator table has no rows")
    values = {c: np.empty(len(records)) for c in (*NUMERIC, "time_s")}
    for i, r in enumerate(records):
        line = i + 2
        if r["op"] not in OPS:
            raise PerfModelError(
                f"{path}: line {line}: unknown op '{r['op']}' (known: {', '.join(OPS)})"
            )
        for c in NUMERIC:
            values[c][i] = _number(r[c], path, line, c)
        t = _number(r["time_ms"], path, line, "time_ms")
        if not math.isfinite(t) or t <= 0:
            raise PerfModelError(
                f"{path}: line {line}: time_ms must be a positive finite number, got '{r['time_ms']}'"
            )
        values["time_s"][i] = t * 1e-3
    gpus = sorted({r["gpu"] for r in records})
    frameworks = sorted({r["framework"] for r in records})
    if len(gpus) != 1 or len(frameworks) != 1:
        raise PerfModelError(
            f"{path}: one GPU and one framework per operator table, got {gpus} / {frameworks}"
        )
    if gpu is not None and gpus[0] != gpu:
        raise PerfModelError(f"{path}: operator table measured on '{gpus[0]}', not on '{gpu}'")
    prov = {c: records[0].get(c, "") for c in PROVENANCE if c in header}
    return OpTable(
        gpu=gpus[0],
        framework=frameworks[0],
        path=str(path),
        op=np.array([r["op"] for r in records]),
        shape=np.array([r.get("shape", "") or "" for r in records]),
        values=values,
        dtype=records[0]["dtype"] or "bf16",
        provenance=prov,
    )


def shipped_tables() -> dict[str, Path]:
    """Shipped tables by name '<gpu>__<framework>'."""
    return {p.stem: p for p in sorted(OPTABLE_DIR.glob("*.csv"))}


@lru_cache(maxsize=16)
def load_optable(name_or_path: str, gpu: str | None = None) -> OpTable:
    """A shipped table by name or a CSV path (cached: read once per process)."""
    if name_or_path.endswith(".csv") or "/" in name_or_path:
        return read_optable(name_or_path, gpu)
    shipped = shipped_tables()
    if name_or_path not in shipped:
        raise suggest(name_or_path, list(shipped), "operator table")
    return read_optable(shipped[name_or_path], gpu)


def same_architecture(gpu_a: str, gpu_b: str) -> bool:
    arch = ARCHITECTURE.get(gpu_a)
    return arch is not None and arch == ARCHITECTURE.get(gpu_b)


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
