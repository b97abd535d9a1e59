"""Operator times from a measured operator table (specs/optables.py), vectorized.

Each kernel's time is read off the measured curve of its operator class, in that class's
natural variables, never extrapolated silently:
- GEMM y[M,N] = x[M,K] @ W[K,N]: a measured (K,N) on the table's GPU: log t interpolated
  linearly in log M (exact at the points, monotone between them). Any other shape, dtype or
  GPU: t = r * R, with R = max(2MKN / P, bytes / W) the datasheet roofline of the new kernel
  and r = t_meas / R_meas the measured ratio, interpolated in (log M, log K*N) between the
  nearest measured weight sizes. The ratio carries the kernel behaviour (wave quantization,
  GEMV bandwidth, launch floor), the roofline the new shape and the new GPU's peaks: for
  another GPU of the same architecture a table transfers by its peak-compute and bandwidth
  ratios (aiconfigurator-style interpolation of measured tables; roofline: Williams 2009).
- decode attention (few query tokens over a KV cache): bilinear in (log batch, log context)
  over the measured grid of the same (heads, kv heads, head_dim); other configurations by
  the ratio to R = max(4 b h c hd / P, KV bytes / W) of the nearest measured configuration
  (same head_dim, nearest query-group size).
- prefill attention (causal): log t in log FLOPs per configuration, ratio likewise.
- Transferred or unmeasured shapes never run below the smallest time measured for their
  kernel class: a launch floor (~3 us in a CUDA graph) does not shrink with a faster HBM.
- RMSNorm, SiLU*mul, residual adds, KV writes: time vs bytes moved (log-log), ratio to
  bytes / W for another GPU; RMSNorm per row width (the nearest measured width).
Outside a measured range the curve is clamped (ratio held at the edge) and a notice says so.
Per layer the kernels are those of a Llama block in a PyTorch-style stack: 2 RMSNorm, QKV,
2 KV writes, attention, O, residual add, gate_up, SiLU*mul, down, residual add; plus the
final norm and the LM head per pass (RoPE not priced: the reference benchmark leaves it out).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from perfmodel.errors import PerfModelError
from perfmodel.specs.hardware import HardwareSpec, resolve_gpu
from perfmodel.specs.models import ModelSpec
from perfmodel.specs.optables import OpTable, load_optable, same_architecture

DECODE_MAX_TOKENS = 16  # query tokens per sequence up to which attention is decode-like
# Weights at least this large cannot stay in any GPU's L2 (H100/H200: 50 MB, B200: 126 MB):
# their GEMV rate is the HBM streaming rate.
STREAM_MIN_BYTES = 2.0**28
STREAM_MAX_M = 16  # GEMV: weight-streaming bound up to this many tokens


@dataclass(frozen=True)
class Curve:
    x: np.ndarray  # sorted log natural variable
    y: np.ndarray  # log time (exact curve) or log ratio (ratio curve)


@dataclass
class Curves:
    """Curves of one table; `peaks` of the table's GPU for the ratios."""

    table: OpTable
    flops: float
    bw: float
    gemm: dict = field(default_factory=dict)  # (K, N) -> (Curve log t, Curve log r)
    gemm_grid: np.ndarray | None = None  # common log M grid
    gemm_ratio_by_size: tuple = ()  # (log K*N sorted, ratio rows on gemm_grid)
    gemm_floor_s: float = 0.0  # smallest measured GEMM time: the launch floor of any GEMM
    stream_bw: float = np.inf  # HBM weight-streaming rate of the table's largest GEMVs, B/s
    # (h, kv, hd) -> (log b, log c, log t grid, log ratio grid, log ratio vs log KV bytes)
    attn_decode: dict = field(default_factory=dict)
    attn_prefill: dict = field(default_factory=dict)  # (h, kv, hd) -> (Curve t, Curve r)
    eltwise: dict = field(default_factory=dict)  # 'rmsnorm' | 'kernel' -> (Curve t, Curve r)
    rmsnorm_by_width: dict = field(default_factory=dict)  # row width d -> (Curve t, Curve r)


def _sorted_curve(x, y) -> Curve:
    """Sort by x, average y over duplicate x."""
    xs, inv = np.unique(np.round(np.asarray(x, float), 9), return_inverse=True)
    ys = np.bincount(inv, weights=y) / np.bincount(inv)
    return Curve(xs, ys)


def gemm_roofline(m, k, n, w_bytes, flops, bw, act_bytes=2.0):
    return np.maximum(2.0 * m * k * n / flops, (k * n * w_bytes + m * (k + n) * act_bytes) / bw)


def decode_roofline(b, c, h, kv, hd, flops, bw, kv_bytes=2.0):
    return np.maximum(4.0 * b * h * c * hd / flops, 2.0 * b * c * kv * hd * kv_bytes / bw)


@lru_cache(maxsize=8)
def table_curves(name: str) -> Curves:
    table = load_optable(name)
    hw = resolve_gpu(table.gpu)
    cv = Curves(table, hw.peak_flops(table.dtype), hw.hbm_bandwidth)
    v = table.values
    g = table.rows("gemm")
    g = g[table.dtypes[g] != "fp8"]  # 16-bit (or the CPU's fp32) GEMMs; fp8 rows priced apart
    if len(g):
        m, k, n, t = (v[c][g] for c in ("m", "k", "n", "time_s"))
        cv.stream_bw = stream_bandwidth(m, k, n, t)
        t = np.maximum(t, k * n * 2.0 / cv.stream_bw)
        grid = np.unique(np.log(m))
        sizes, rows = [], []
        for kk, nn in sorted({(a, b) for a, b in zip(k, n, strict=True)}):
            sel = (k == kk) & (n == nn)
            r = t[sel] / gemm_roofline(m[sel], kk, nn, 2.0, cv.flops, cv.bw)
            exact = _sorted_curve(np.log(m[sel]), np.log(t[sel]))
            ratio = _sorted_curve(np.log(m[sel]), np.log(r))
            cv.gemm[(kk, nn)] = (exact, ratio)
            sizes.append(np.log(kk * nn))
            rows.append(np.interp(grid, ratio.x, ratio.y))
        order = np.argsort(sizes)
        cv.gemm_grid = grid
        cv.gemm_ratio_by_size = _sorted_rows(np.array(sizes)[order], np.array(rows)[order])
        cv.gemm_floor_s = float(t.min())
    for op in ("attn_decode", "attn_prefill"):
        idx = table.rows(op)
        cfgs = {
            tuple(x) for x in np.stack([v["heads"][idx], v["kv_heads"][idx], v["head_dim"][idx]], 1)
        }
        for h, kv, hd in sorted(cfgs):
            sel = idx[
                (v["heads"][idx] == h) & (v["kv_heads"][idx] == kv) & (v["head_dim"][idx] == hd)
            ]
            b, c, t = v["batch"][sel], v["ctx"][sel], v["time_s"][sel]
            if op == "attn_decode":
                roof = decode_roofline(b, c, h, kv, hd, cv.flops, cv.bw)
                by = 2.0 * b * c * kv * hd * 2.0
                cv.attn_decode[(h, kv, hd)] = (
                    *_grid2d(b, c, t, roof),
                    _sorted_curve(np.log(by), np.log(t / roof)),
                )
            else:
                f = 2.0 * b * h * c * c * hd
                r = t / np.maximum(f / cv.flops, 4.0 * b * c * h * hd * 2.0 / cv.bw)
                cv.attn_prefill[(h, kv, hd)] = (
                    _sorted_curve(np.log(f), np.log(t)),
                    _sorted_curve(np.log(f), np.log(r)),
                )
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


def _bytes_curves(by, t, bw) -> tuple[Curve, Curve]:
    """Time vs bytes moved (log-log) and its ratio to the bandwidth roofline."""
    return _sorted_curve(np.log(by), np.log(t)), _sorted_curve(np.log(by), np.log(t * bw / by))


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


def _sorted_rows(sizes: np.ndarray, rows: np.ndarray):
    """Average ratio rows of weight shapes with equal size (e.g. 4096x14336 vs 8192x7168)."""
    keys, inv = np.unique(np.round(sizes, 9), return_inverse=True)
    out = np.zeros((len(keys), rows.shape[1]))
    np.add.at(out, inv, rows)
    return keys, out / np.bincount(inv)[:, None]


def _grid2d(b, c, t, roof):
    lb, lc = np.unique(np.log(b)), np.unique(np.log(c))
    logt = np.full((len(lb), len(lc)), np.nan)
    logr = np.full_like(logt, np.nan)
    ib, ic = np.searchsorted(lb, np.log(b)), np.searchsorted(lc, np.log(c))
    logt[ib, ic], logr[ib, ic] = np.log(t), np.log(t / roof)
    for a, slope in ((logt, 1.0), (logr, 0.0)):
        # fill holes (points skipped for memory) along the context axis; past a batch's
        # longest measured context the KV read grows with it: t proportional to context
        # (slope 1 in log-log), the ratio to the roofline held
        for i in range(len(lb)):
            ok = ~np.isnan(a[i])
            last = np.flatnonzero(ok)[-1]
            a[i] = np.interp(lc, lc[ok], a[i][ok])
            a[i, last + 1 :] += slope * (lc[last + 1 :] - lc[last])
    return lb, lc, logt, logr


def _interp2d(lb, lc, grid, x, y):
    """Bilinear on a rectilinear grid, clamped at the edges (vectorized)."""

    def axis(g, v):
        if len(g) == 1:
            return np.zeros(np.shape(v), int), np.zeros(np.shape(v))
        i = np.clip(np.searchsorted(g, v) - 1, 0, len(g) - 2)
        f = np.clip((v - g[i]) / (g[i + 1] - g[i]), 0.0, 1.0)
        return i, f

    (i, fx), (j, fy) = axis(lb, x), axis(lc, y)
    j1 = np.minimum(j + 1, len(lc) - 1)
    i1 = np.minimum(i + 1, len(lb) - 1)
    return (1 - fx) * ((1 - fy) * grid[i, j] + fy * grid[i, j1]) + fx * (
        (1 - fy) * grid[i1, j] + fy * grid[i1, j1]
    )


def _blend(inside, exact: Curve, ratio: Curve, x, roof) -> np.ndarray:
    """Measured curve inside its range. Above it, the edge ratio times the roofline (a
    clamped efficiency, not a clamped time: a GEMM with twice the tokens takes twice as
    long); below it, the smallest measured time (a kernel's launch floor)."""
    t = np.exp(np.interp(x, exact.x, exact.y))
    if np.all(inside):
        return t
    above = np.exp(np.interp(x, ratio.x, ratio.y)) * roof
    return np.where(inside | (x < exact.x[0]), t, above)


@dataclass
class TableCost:
    """Op-table pricing for one deployment: the table, its transfer, and collected notices."""

    curves: Curves
    hw: HardwareSpec
    same_gpu: bool
    notices: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        t = self.curves.table
        if self.same_gpu:
            return f"operator table {t.name} (measured)"
        return (
            f"operator table {t.name} transferred to {self.hw.name} "
            f"(peak compute x{self.hw.peak_flops(t.dtype) / self.curves.flops:.2f}, "
            f"bandwidth x{self.hw.hbm_bandwidth / self.curves.bw:.2f})"
        )

    def _clamp(self, what: str, logv, lo: float, hi: float, unit: str = "") -> None:
        """Report values outside the measured range [lo, hi] (logs): below it a kernel is
        held at the smallest measured time (its launch floor); above it the measured
        time/roofline ratio at the edge is held and scaled by the roofline."""
        v = np.asarray(logv)
        if not v.size:
            return
        name = self.curves.table.name
        if v.min() < lo - 1e-9:
            self.notices.append(
                f"{what} down to {np.exp(v.min()):.4g}{unit}, below the {np.exp(lo):.4g}{unit} "
                f"measured in {name}: held at the smallest measured time (launch floor)"
            )
        if v.max() > hi + 1e-9:
            self.notices.append(
                f"{what} up to {np.exp(v.max()):.4g}{unit}, beyond the {np.exp(hi):.4g}{unit} "
                f"measured in {name}: clamped (edge efficiency held, scaled by the roofline)"
            )

    def gemm(self, name: str, m, k: float, n: float, w_bytes: float) -> np.ndarray:
        """Time of one GEMM kernel, M tokens (array), weight K x N (scalars)."""
        cv = self.curves
        lm = np.log(np.maximum(m, 1.0))
        flops, bw = self.hw.peak_flops("bf16" if w_bytes >= 2 else "fp8"), self.hw.hbm_bandwidth
        key = (float(k), float(n))
        roof = gemm_roofline(m, k, n, w_bytes, flops, bw)
        if self.same_gpu and w_bytes == 2.0 and key in cv.gemm:
            exact, ratio = cv.gemm[key]
            self._clamp(f"gemm {name} M", lm, exact.x[0], exact.x[-1])
            inside = (lm >= exact.x[0]) & (lm <= exact.x[-1])
            return _blend(inside, exact, ratio, lm, roof)
        sizes, rows = cv.gemm_ratio_by_size
        ls = np.log(k * n)
        self._clamp(f"gemm {name} weight size K*N", ls, sizes[0], sizes[-1])
        self._clamp(f"gemm {name} M", lm, cv.gemm_grid[0], cv.gemm_grid[-1])
        row = np.array([np.interp(ls, sizes, rows[:, j]) for j in range(rows.shape[1])])
        return np.maximum(np.exp(np.interp(lm, cv.gemm_grid, row)) * roof, cv.gemm_floor_s)

    def _config(self, store: dict, h: float, kv: float, hd: float, by_heads: bool = False):
        """The measured (heads, kv heads, head_dim) nearest to a new one: same head_dim
        first, then the nearest query-group size (decode: how often each KV byte is reused)
        or, `by_heads`, the nearest head count (prefill: how many blocks run in parallel)."""
        if (h, kv, hd) in store:
            return (h, kv, hd), True

        def distance(c):
            second = c[0] / h if by_heads else (c[0] / c[1]) / (h / kv)
            return (abs(np.log(c[2] / hd)), abs(np.log(second)))

        return min(store, key=distance), False

    def attn_decode(self, b, c, h, kv, hd, kv_bytes) -> np.ndarray:
        cfg, exact = self._config(self.curves.attn_decode, h, kv, hd)
        lb, lc, logt, _, by_bytes = self.curves.attn_decode[cfg]
        x, y = np.log(np.maximum(b, 1.0)), np.log(np.maximum(c, 1.0))
        self._clamp("decode attention batch", x, lb[0], lb[-1])
        self._clamp("decode attention context", y, lc[0], lc[-1], " tokens")
        if exact and self.same_gpu and kv_bytes == 2.0:
            inside = (x <= lb[-1]) & (y <= lc[-1])  # below the grid: held (launch floor)
            t = np.exp(_interp2d(lb, lc, logt, x, y))
            if np.all(inside):
                return t
            out = np.where(inside, t, 0.0)
            sel = ~inside
            bb, cc = np.broadcast_arrays(b, c)
            floor = float(np.exp(logt.min()))
            out[sel] = self._decode_by_bytes(by_bytes, bb[sel], cc[sel], h, kv, hd, kv_bytes, floor)
            return out
        return self._decode_by_bytes(by_bytes, b, c, h, kv, hd, kv_bytes, np.exp(logt.min()))

    def _decode_by_bytes(self, curve: Curve, b, c, h, kv, hd, kv_bytes, floor) -> np.ndarray:
        """Measured time/roofline ratio at the same KV bytes read, times the roofline; never
        below the configuration's smallest measured time (a kernel's launch floor)."""
        roof = decode_roofline(
            b, c, h, kv, hd, self.hw.peak_flops("bf16"), self.hw.hbm_bandwidth, kv_bytes
        )
        kv_read = np.log(np.maximum(2.0 * b * c * kv * hd * kv_bytes, 1.0))
        return np.maximum(np.exp(np.interp(kv_read, curve.x, curve.y)) * roof, floor)

    def attn_prefill(self, f, by, h, kv, hd) -> np.ndarray:
        """One causal attention kernel of f FLOPs moving `by` bytes (Q, K, V, O)."""
        cfg, exact = self._config(self.curves.attn_prefill, h, kv, hd, by_heads=True)
        ct, cr = self.curves.attn_prefill[cfg]
        lf = np.log(np.maximum(f, 1.0))
        self._clamp("prefill attention FLOPs", lf, ct.x[0], ct.x[-1])
        roof = np.maximum(f / self.hw.peak_flops("bf16"), by / self.hw.hbm_bandwidth)
        if exact and self.same_gpu:
            return _blend((lf >= ct.x[0]) & (lf <= ct.x[-1]), ct, cr, lf, roof)
        return np.maximum(np.exp(np.interp(lf, cr.x, cr.y)) * roof, np.exp(ct.y.min()))

    def eltwise(self, kind: str, by, width: float | None = None) -> np.ndarray:
        """An elementwise kernel moving `by` bytes. RMSNorm with a row `width`: the curve
        measured at the nearest width (log distance; exact when measured): at a few rows the
        kernel is one reduction per row and its time grows with the width (H100: 3.0, 4.5
        and 7.6 us at d = 2048, 4096, 8192), which bytes alone do not say."""
        ct, cr = self.curves.eltwise[kind]
        widths = self.curves.rmsnorm_by_width
        if kind == "rmsnorm" and width is not None and widths:
            ct, cr = widths[min(widths, key=lambda d: abs(np.log(d / width)))]
        lb = np.log(np.maximum(by, 1.0))
        self._clamp(
            f"{'RMSNorm' if kind == 'rmsnorm' else 'elementwise kernel'} bytes",
            lb,
            ct.x[0],
            ct.x[-1],
            " B",
        )
        roof = by / self.hw.hbm_bandwidth
        if self.same_gpu:
            return _blend((lb >= ct.x[0]) & (lb <= ct.x[-1]), ct, cr, lb, roof)
        return np.maximum(np.exp(np.interp(lb, cr.x, cr.y)) * roof, np.exp(ct.y.min()))


def table_cost(table_name: str, hw: HardwareSpec, profile_gpus=()) -> TableCost | None:
    """Pricing by `table_name` on `hw`: the table's own GPU, or a GPU of the same
    architecture (transferred); None when the table cannot describe this GPU. A table
    measured on a GPU the profile is not for is an error (PerfModelError, one line)."""
    curves = table_curves(table_name)
    gpu = curves.table.gpu
    if profile_gpus and gpu not in profile_gpus:
        raise PerfModelError(
            f"{curves.table.path}: operator table measured on '{gpu}', but the profile is for "
            f"{', '.join(profile_gpus)}"
        )
    if hw.name != gpu and not same_architecture(gpu, hw.name):
        return None
    return TableCost(curves, hw, hw.name == gpu)


def layer_gemm_shapes(model: ModelSpec, tp: float) -> list[tuple[str, float, float]]:
    """(name, K, N) per GPU of the four projections of a dense layer (Megatron TP split)."""
    d, ffn = model.hidden_size, model.intermediate_size
    return [
        ("qkv_proj", d, (model.q_dim + 2 * model.kv_dim) / tp),
        ("o_proj", model.q_dim / tp, d),
        ("mlp_gate_up", d, 2 * ffn / tp),
        ("mlp_down", ffn / tp, d),
    ]
