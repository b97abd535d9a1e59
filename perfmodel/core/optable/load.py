"""An operator table as curves, built once per table when a deployment is made.

- GEMM y[M,N] = x[M,K] @ W[K,N]: per measured (K,N), log t and log(t / roofline) against
  log M; the ratio rows on a common log M grid, sorted by weight size log K*N. Measured times
  are floored at weight bytes / the HBM streaming rate (stream_bandwidth). FP8 rows (a
  per-row dtype) get their own curves (`fp8`), against the FP8 roofline.
- decode attention: per (heads, kv heads, head_dim), log t and log ratio on the measured
  batch x context grid, and log t against log KV bytes read (non-decreasing).
- prefill attention (causal): per configuration, log t and log ratio against log FLOPs.
  Attention curves are built per configuration when first priced (Lazy): a deployment uses
  one or two of a table's dozen.
- RMSNorm, SiLU*mul: time and ratio to bytes / W against log bytes; RMSNorm per row width.
The file itself is read and validated by specs/optables.py. A shipped table's curves are built
once, when its binary copy is written, and read back from it (stored.py): build_curves runs at
start-up only for a table given by path, or one whose copy is stale.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from perfmodel.core.optable import stored
from perfmodel.core.optable.curves import Curves, Lazy
from perfmodel.core.optable.interpolate import (
    Curve,
    grid2d,
    sorted_curve,
    sorted_curves_by_key,
    sorted_rows,
)
from perfmodel.core.optable.transfer import decode_roofline, gemm_roofline
from perfmodel.errors import PerfModelError
from perfmodel.specs.hardware import HardwareSpec, resolve_gpu
from perfmodel.specs.optables import OpTable, load_optable, stored_extra
from perfmodel.specs.profile import Profile

# Weights at least this large cannot stay in any GPU's L2 (H100/H200: 50 MB, B200: 126 MB):
# their GEMV rate is the HBM streaming rate.
STREAM_MIN_BYTES = 2.0**28
STREAM_MAX_M = 16  # GEMV: weight-streaming bound up to this many tokens


def profile_table(profile: Profile) -> Curves | None:
    """The operator table a profile names, loaded (None: the profile names none). A table
    measured on a GPU the profile is not for is an error (PerfModelError, one line)."""
    if not profile.optable:
        return None
    curves = table_curves(profile.optable)
    gpu = curves.table.gpu
    if profile.gpus and gpu not in profile.gpus:
        raise PerfModelError(
            f"{curves.table.path}: operator table measured on '{gpu}', but the profile is for "
            f"{', '.join(profile.gpus)}"
        )
    return curves


@lru_cache(maxsize=8)
def table_curves(name: str) -> Curves:
    """The curves of a shipped table name or a table path (cached: read once per process):
    a shipped table's from its binary copy (stored.py) while that copy is current and was
    made with its GPU's present peaks, else built from the table."""
    table = load_optable(name)
    hw = resolve_gpu(table.gpu)
    extra = stored_extra(name)
    cv = stored.decode(*extra, table, hw) if extra is not None and extra[0] else None
    return cv if cv is not None else build_curves(table, hw)


def build_curves(table: OpTable, hw: HardwareSpec) -> Curves:
    """The curves of `table`, measured on `hw` (its peaks: the roofline ratios)."""
    cv = Curves(table, hw.peak_flops(table.dtype), hw.hbm_bandwidth)
    v = table.values
    g = table.rows("gemm")
    fp8 = table.dtypes[g] == "fp8"
    _fill_gemm(cv, g[~fp8], 2.0)  # 16-bit GEMMs (or the CPU's fp32 ones)
    if fp8.any():  # per-tensor FP8 GEMMs measured beside them: their own curves
        cv.fp8 = Curves(table, hw.peak_flops("fp8"), hw.hbm_bandwidth, w_bytes=1.0)
        _fill_gemm(cv.fp8, g[fp8], 1.0)
    for op in ("attn_decode", "attn_prefill"):
        idx = table.rows(op)
        cfg = np.stack([v["heads"][idx], v["kv_heads"][idx], v["head_dim"][idx]], 1)
        keys = [tuple(c) for c in _unique_rows(cfg)]  # (h, kv, hd), sorted
        build = _decode_config if op == "attn_decode" else _prefill_config
        setattr(cv, op, Lazy(keys, lambda key, idx=idx, build=build: build(cv, idx, *key)))
    for op, kernels in (("rmsnorm", 1.0), ("silu_mul", 2.0)):
        idx = table.rows(op)
        if len(idx):
            by, t = v["bytes"][idx] / kernels, v["time_s"][idx] / kernels
            key = "rmsnorm" if op == "rmsnorm" else "kernel"
            cv.eltwise[key] = _bytes_curves(by, t, cv.bw)
            if op == "rmsnorm":  # one reduction per row: its latency grows with the width
                width = v["n"][idx]
                for d in np.unique(width[np.isfinite(width)]):
                    sel = width == d
                    cv.rmsnorm_by_width[float(d)] = _bytes_curves(by[sel], t[sel], cv.bw)
    if "kernel" not in cv.eltwise and "rmsnorm" in cv.eltwise:
        cv.eltwise["kernel"] = cv.eltwise["rmsnorm"]
    return cv


def _unique_rows(a: np.ndarray) -> np.ndarray:
    """np.unique(a, axis=0) (rows sorted, first column first) without its slow sort of a
    structured view (18 ms for a table's 3,600 attention rows, here 0.3 ms)."""
    s = a[np.lexsort(a.T[::-1])]
    return s[np.r_[True, np.any(np.diff(s, axis=0) != 0, axis=1)]] if len(s) else s


def _config_rows(cv: Curves, idx: np.ndarray, h, kv, hd) -> np.ndarray:
    v = cv.table.values
    return idx[(v["heads"][idx] == h) & (v["kv_heads"][idx] == kv) & (v["head_dim"][idx] == hd)]


def _decode_config(cv: Curves, idx: np.ndarray, h, kv, hd):
    """(log b axis, log c axis, log t grid, log ratio grid, log t vs log KV bytes) of the
    decode-attention rows `idx` measured with (h, kv, hd). The bytes curve never decreases
    (a longer KV read is never faster: measurement noise is not passed on), like the grid."""
    v, sel = cv.table.values, _config_rows(cv, idx, h, kv, hd)
    b, c, t = v["batch"][sel], v["ctx"][sel], v["time_s"][sel]
    roof = decode_roofline(b, c, h, kv, hd, cv.flops, cv.bw)
    by = 2.0 * b * c * kv * hd * 2.0
    by_bytes = sorted_curve(np.log(by), np.log(t))
    by_bytes = Curve(by_bytes.x, np.maximum.accumulate(by_bytes.y))
    return (*grid2d(b, c, t, roof), by_bytes)


def _prefill_config(cv: Curves, idx: np.ndarray, h, kv, hd):
    """(Curve log t, Curve log ratio) against log FLOPs of the prefill-attention rows `idx`
    measured with (h, kv, hd)."""
    v, sel = cv.table.values, _config_rows(cv, idx, h, kv, hd)
    b, c, t = v["batch"][sel], v["ctx"][sel], v["time_s"][sel]
    f = 2.0 * b * h * c * c * hd
    r = t / np.maximum(f / cv.flops, 4.0 * b * c * h * hd * 2.0 / cv.bw)
    exact = sorted_curve(np.log(f), np.log(t))
    # more FLOPs never take less time (noise between batch x length points of equal work is
    # not passed on as a longer prompt that runs faster)
    exact = Curve(exact.x, np.maximum.accumulate(exact.y))
    return exact, sorted_curve(np.log(f), np.log(r))


def _fill_gemm(cv: Curves, g: np.ndarray, w_bytes: float) -> None:
    """GEMM curves of rows `g` (weights of `w_bytes` per element) into `cv`."""
    if not len(g):
        return
    v = cv.table.values
    m, k, n, t = (v[c][g] for c in ("m", "k", "n", "time_s"))
    cv.stream_bw = stream_bandwidth(m, k, n, t, w_bytes)
    t = np.maximum(t, k * n * w_bytes / cv.stream_bw)
    lm = np.log(m)
    grid = np.unique(lm)
    logt, logr = np.log(t), np.log(t / gemm_roofline(m, k, n, w_bytes, cv.flops, cv.bw))
    # the curves of each weight shape (K, N), shapes in sorted order
    sizes, rows = [], []
    for (kk, nn), (exact, ratio) in sorted_curves_by_key(k, n, lm, logt, logr).items():
        cv.gemm[(kk, nn)] = (exact, ratio)
        sizes.append(np.log(kk * nn))
        rows.append(np.interp(grid, ratio.x, ratio.y))
    order = np.argsort(sizes)
    cv.gemm_grid = grid
    cv.gemm_ratio_by_size = sorted_rows(np.array(sizes)[order], np.array(rows)[order])
    cv.gemm_floor_s = float(t.min())


def _bytes_curves(by, t, bw) -> tuple[Curve, Curve]:
    """Time vs bytes moved (log-log) and its ratio to the bandwidth roofline."""
    return sorted_curve(np.log(by), np.log(t)), sorted_curve(np.log(by), np.log(t * bw / by))


def stream_bandwidth(m, k, n, t, w_bytes: float = 2.0) -> float:
    """Weight-streaming rate (B/s) of the table's GEMVs (M <= STREAM_MAX_M) whose weights
    cannot stay in L2 (>= STREAM_MIN_BYTES): the fastest a GEMM can read weights from HBM.

    Microbenchmarks launch one GEMM back to back on the same weights, so a matrix that fits
    in L2 (e.g. 8B o_proj, 34 MB of H100's 50 MB) is re-read from L2 and looks faster than
    HBM allows (3.3-3.9 TB/s); in a forward pass every kernel reads new weights. Measured
    GEMM times are therefore floored at weight bytes / this rate (inf: no such GEMV)."""
    big = (k * n * w_bytes >= STREAM_MIN_BYTES) & (m <= STREAM_MAX_M)
    if not np.any(big):
        return np.inf
    return float(np.max(k[big] * n[big] * w_bytes / t[big]))
