"""One kernel's time read off an operator table, with the notices of any clamp returned
beside it (``Priced``), never collected on the side.

In each operator class's natural variables, never extrapolated silently:
- GEMM: a measured (K,N) on the table's GPU in BF16: log t interpolated linearly in log M
  (exact at the points, monotone between them). Any other shape, dtype or GPU: the measured
  time/roofline ratio interpolated in (log M, log K*N) between the nearest measured weight
  sizes, times the new kernel's roofline (transfer.py); never below the smallest measured
  GEMM time (a launch floor, ~3 us in a CUDA graph, does not shrink with a faster HBM).
- decode attention: bilinear in (log batch, log context) over the measured grid of the same
  (heads, kv heads, head_dim), the edge ratio held beyond it; other configurations (and FP8
  KV) by the ratio at the same KV bytes read of the nearest measured configuration (same
  head_dim, nearest query-group size). Never faster with a longer context, by construction.
- prefill attention (causal): log t in log FLOPs per configuration, ratio likewise.
- RMSNorm, SiLU*mul, residual adds, KV writes: time vs bytes moved (log-log), ratio to
  bytes / W for another GPU; RMSNorm per row width (the nearest measured width).
Outside a measured range the curve is clamped (ratio held at the edge) and a notice says so.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from perfmodel.core.identity_memo import by_identity
from perfmodel.core.optable.interpolate import (
    Curve,
    blend,
    interp2d,
    interp_rows,
    max_of,
    monotone_interp,
    monotone_interp_one,
)
from perfmodel.core.optable.load import Curves
from perfmodel.core.optable.transfer import (
    SMALL_GEMM_MAX_TOKENS,
    GemmWork,
    decode_roofline,
    gemm_work,
    table_label,
    transfer_latencies,
    transferred,
    transfers_to,
    work_roofline,
)
from perfmodel.specs.hardware import HardwareSpec, resolve_gpu

NUMBERS = (int, float, np.number)  # one value, not an array: the scalar paths


class Priced(NamedTuple):
    """A kernel's time (seconds, array) and what its table had to clamp to give it."""

    time_s: np.ndarray
    notices: tuple[str, ...] = ()


def notices_of(*parts: Priced) -> tuple[str, ...]:
    """The notices of several priced kernels, first occurrence first, without repeats."""
    return tuple(dict.fromkeys(n for p in parts for n in p.notices))


def clamp_notices(table: str, what: str, logv, lo: float, hi: float, unit: str = ""):
    """Notices for values outside the measured range [lo, hi] (logs): below it a kernel is
    held at the smallest measured time (its launch floor); above it the measured
    time/roofline ratio at the edge is held and scaled by the roofline."""
    v = np.asarray(logv)
    if not v.size:
        return ()
    out = []
    if v.min() < lo - 1e-9:
        out.append(
            f"{what} down to {np.exp(v.min()):.4g}{unit}, below the {np.exp(lo):.4g}{unit} "
            f"measured in {table}: held at the smallest measured time (launch floor)"
        )
    if v.max() > hi + 1e-9:
        out.append(
            f"{what} up to {np.exp(v.max()):.4g}{unit}, beyond the {np.exp(hi):.4g}{unit} "
            f"measured in {table}: clamped (edge efficiency held, scaled by the roofline)"
        )
    return tuple(out)


@by_identity(owners=1)
def _nearest_config(store, h: float, kv: float, hd: float, by_heads: bool):
    """KernelPricing._config, kept per table store and configuration (a search asks for the
    same one hundreds of times)."""
    if (h, kv, hd) in store:
        return (h, kv, hd), True

    def distance(c):
        second = c[0] / h if by_heads else (c[0] / c[1]) / (h / kv)
        return (abs(np.log(c[2] / hd)), abs(np.log(second)))

    return min(store, key=distance), False


@by_identity(owners=1)
def _launch_floor(curves: Curves, cfg) -> float:
    """The smallest measured time of a decode attention configuration, once per table."""
    return np.exp(curves.attn_decode[cfg][2].min())


@by_identity(owners=2)
def _by_bytes_shift(curves: Curves, hw: HardwareSpec, cfg, h, kv, hd, kv_bytes) -> float:
    """log(rho_new / rho_measured) of KernelPricing._decode_by_bytes: a constant of a
    measured configuration and a new one, worked out once per table, GPU and pair (a
    search prices the same pair for every pass)."""
    mh, mkv, mhd = cfg
    rho_measured = decode_roofline(1.0, 1.0, mh, mkv, mhd, curves.flops, curves.bw) / (
        4.0 * mkv * mhd
    )
    bf16, bw = hw.peak_flops("bf16"), hw.hbm_bandwidth
    rho_new = decode_roofline(1.0, 1.0, h, kv, hd, bf16, bw, kv_bytes) / (2.0 * kv * hd * kv_bytes)
    return float(np.log(rho_new) - np.log(rho_measured))


class KernelPricing(NamedTuple):
    """A loaded table pricing kernels on `hw`: its own GPU (`same_gpu`) or transferred."""

    curves: Curves
    hw: HardwareSpec
    same_gpu: bool
    explain: bool = True  # False: times only, no clamp notices (quiet)

    def quiet(self) -> KernelPricing:
        """The same pricing without clamp notices: the same times, for callers that read the
        times alone (a tabulation over a grid far beyond any table, a search's passes)."""
        return _quiet(self)

    @property
    def label(self) -> str:
        cv = self.curves
        return table_label(cv.table.name, cv.table.gpu, cv.flops, cv.bw, cv.table.dtype, self.hw)

    def _clamp(self, what: str, logv, lo: float, hi: float, unit: str = ""):
        if not self.explain:
            return ()
        return clamp_notices(self.curves.table.name, what, logv, lo, hi, unit)

    def gemm(
        self,
        name: str,
        m,
        k: float,
        n: float,
        w_bytes: float,
        compute_dtype: str | None = None,
        work: GemmWork | None = None,
        roof=None,
    ) -> Priced:
        """One GEMM kernel, M tokens (array), weight K x N (scalars); its roofline at the peak
        of `compute_dtype` (specs.dtypes.compute_dtype of the weights: the one rule, so int4
        weights are priced at the BF16 peak they dequantize to, not FP8's; None: BF16 for
        2-byte weights, else FP8). FP8 matmuls take the table's measured FP8 rows. `work`:
        gemm_work(m, k, n, w_bytes) where the caller has it (the same values); `roof`:
        work_roofline(work, peak of compute_dtype, bandwidth) on this GPU, likewise."""
        cv = self.curves
        compute_dtype = compute_dtype or ("bf16" if w_bytes >= 2 else "fp8")
        if work is None:
            work = gemm_work(m, k, n, w_bytes)
        if compute_dtype == "fp8" and cv.fp8 is not None and cv.w_bytes >= 2:
            fp8 = KernelPricing(cv.fp8, self.hw, self.same_gpu, self.explain)
            return fp8.gemm(name, m, k, n, w_bytes, "fp8", work, roof)
        lm = work.log_m
        key = (float(k), float(n))
        if roof is None:
            roof = work_roofline(work, self.hw.peak_flops(compute_dtype), self.hw.hbm_bandwidth)
        if self.same_gpu and w_bytes == cv.w_bytes and key in cv.gemm:
            exact, ratio = cv.gemm[key]
            inside = (lm >= exact.x[0]) & (lm <= exact.x[-1])
            return Priced(
                blend(inside, exact, ratio, lm, roof),
                self._clamp(f"gemm {name} M", lm, exact.x[0], exact.x[-1]),
            )
        sizes, rows = cv.gemm_ratio_by_size
        ls = np.log(k * n)
        notices = self._clamp(f"gemm {name} weight size K*N", ls, sizes[0], sizes[-1])
        notices += self._clamp(f"gemm {name} M", lm, cv.gemm_grid[0], cv.gemm_grid[-1])
        row = interp_rows(ls, sizes, rows)  # the ratio row at this weight size
        t = np.maximum(np.exp(np.interp(lm, cv.gemm_grid, row)) * roof, cv.gemm_floor_s)
        return Priced(t, notices)

    def _config(self, store: dict, h: float, kv: float, hd: float, by_heads: bool = False):
        """The measured (heads, kv heads, head_dim) nearest to a new one: same head_dim
        first, then the nearest query-group size (decode: how often each KV byte is reused)
        or, `by_heads`, the nearest head count (prefill: how many blocks run in parallel)."""
        return _nearest_config(store, h, kv, hd, by_heads)

    def attn_decode(self, b, c, h, kv, hd, kv_bytes) -> Priced:
        """Decode attention: b sequences of c cached tokens, h query / kv KV heads of hd."""
        cfg, exact = self._config(self.curves.attn_decode, h, kv, hd)
        lb, lc, logt, _, by_bytes = self.curves.attn_decode[cfg]
        on_grid = exact and self.same_gpu and kv_bytes == 2.0
        if not (on_grid or self.explain):  # by bytes, no notices: x and y have no reader
            floor = _launch_floor(self.curves, cfg)
            return Priced(self._decode_by_bytes(by_bytes, cfg, b, c, h, kv, hd, kv_bytes, floor))
        x, y = np.log(np.maximum(b, 1.0)), np.log(np.maximum(c, 1.0))
        notices = self._clamp("decode attention batch", x, lb[0], lb[-1])
        notices += self._clamp("decode attention context", y, lc[0], lc[-1], " tokens")
        if on_grid:
            # on the grid: bilinear (below it: held, the launch floor); beyond it (more
            # sequences or a longer context than measured) the edge's time/roofline ratio is
            # held, anchored at the edge: the roofline grows with the KV bytes, b x c, so
            # log t grows with log b and log c from the edge point. Continuous at the edge
            # and non-decreasing in the context, rounding included (interp2d).
            xe, ye = np.minimum(x, lb[-1]), np.minimum(y, lc[-1])
            return Priced(np.exp(interp2d(lb, lc, logt, xe, ye) + (x - xe) + (y - ye)), notices)
        floor = _launch_floor(self.curves, cfg)
        t = self._decode_by_bytes(by_bytes, cfg, b, c, h, kv, hd, kv_bytes, floor)
        return Priced(t, notices)

    def _decode_by_bytes(self, curve: Curve, cfg, b, c, h, kv, hd, kv_bytes, floor) -> np.ndarray:
        """The measured time/roofline ratio at the same KV bytes read B, times the roofline;
        never below the configuration's smallest measured time (a kernel's launch floor).

        A decode-attention roofline is proportional to B: R = rho B with rho = max(2 h /
        (kv e P), 1 / W) per configuration, dtype and GPU. So ratio x roofline is the measured
        time at B scaled by rho_new / rho_measured, and it is priced that way: log t read off
        the measured log t vs log B curve (non-decreasing, load.py) by monotone_interp, plus
        log(rho_new / rho_measured); beyond either end of the curve the edge ratio is held (t
        proportional to B). Non-decreasing in B by construction, rounding included, and the
        measured time at a measured point of the same configuration and GPU."""
        shift = _by_bytes_shift(self.curves, self.hw, cfg, h, kv, hd, kv_bytes)
        x, y = curve.x, curve.y
        if isinstance(b, NUMBERS) and isinstance(c, NUMBERS):  # one pass shape: float64s
            kv_read = np.log(max_of(2.0 * b * c * kv * hd * kv_bytes, 1.0))
            if kv_read < x[0]:
                logt = y[0] + (kv_read - x[0])
            elif kv_read > x[-1]:
                logt = y[-1] + (kv_read - x[-1])
            else:
                logt = monotone_interp_one(kv_read, x, y)
            return np.maximum(np.exp(logt + shift), floor)
        kv_read = np.log(np.maximum(2.0 * b * c * kv * hd * kv_bytes, 1.0))
        logt = np.where(
            kv_read < x[0],
            y[0] + (kv_read - x[0]),
            np.where(kv_read > x[-1], y[-1] + (kv_read - x[-1]), monotone_interp(kv_read, x, y)),
        )
        return np.maximum(np.exp(logt + shift), floor)

    def attn_prefill(self, f, by, h, kv, hd) -> Priced:
        """One causal attention kernel of f FLOPs moving `by` bytes (Q, K, V, O)."""
        cfg, exact = self._config(self.curves.attn_prefill, h, kv, hd, by_heads=True)
        ct, cr = self.curves.attn_prefill[cfg]
        if isinstance(f, NUMBERS) and isinstance(by, NUMBERS):
            return self._prefill_one(ct, cr, exact and self.same_gpu, f, by)
        lf = np.log(np.maximum(f, 1.0))
        notices = self._clamp("prefill attention FLOPs", lf, ct.x[0], ct.x[-1])
        roof = np.maximum(f / self.hw.peak_flops("bf16"), by / self.hw.hbm_bandwidth)
        if exact and self.same_gpu:
            return Priced(blend((lf >= ct.x[0]) & (lf <= ct.x[-1]), ct, cr, lf, roof), notices)
        t = np.maximum(np.exp(np.interp(lf, cr.x, cr.y)) * roof, np.exp(ct.y.min()))
        return Priced(t, notices)

    def _prefill_one(self, ct: Curve, cr: Curve, measured: bool, f, by) -> Priced:
        """attn_prefill of one kernel (float64 scalars): the same operations, blend's choice
        made by comparisons, max_of for np.maximum (the same selection)."""
        lf = np.log(max_of(f, 1.0))
        notices = self._clamp("prefill attention FLOPs", lf, ct.x[0], ct.x[-1])
        roof = max_of(f / self.hw.peak_flops("bf16"), by / self.hw.hbm_bandwidth)
        if measured:  # blend: the measured curve inside its range and below it, else above
            if ct.x[0] <= lf <= ct.x[-1] or lf < ct.x[0]:
                return Priced(np.exp(np.interp(lf, ct.x, ct.y)), notices)
            return Priced(np.exp(np.interp(lf, cr.x, cr.y)) * roof, notices)
        t = max_of(np.exp(np.interp(lf, cr.x, cr.y)) * roof, np.exp(ct.y.min()))
        return Priced(t, notices)

    def eltwise(self, kind: str, by, width: float | None = None) -> Priced:
        """An elementwise kernel moving `by` bytes. RMSNorm with a row `width`: the curve
        measured at the nearest width (log distance; exact when measured): at a few rows the
        kernel is one reduction per row and its time grows with the width (H100: 3.0, 4.5
        and 7.6 us at d = 2048, 4096, 8192), which bytes alone do not say."""
        ct, cr = self.curves.eltwise[kind]
        widths = self.curves.rmsnorm_by_width
        if kind == "rmsnorm" and width is not None and widths:
            ct, cr = widths[min(widths, key=lambda d: abs(np.log(d / width)))]
        lb = np.log(np.maximum(by, 1.0))
        what = "RMSNorm" if kind == "rmsnorm" else "elementwise kernel"
        notices = self._clamp(f"{what} bytes", lb, ct.x[0], ct.x[-1], " B")
        roof = by / self.hw.hbm_bandwidth
        if self.same_gpu:
            return Priced(blend((lb >= ct.x[0]) & (lb <= ct.x[-1]), ct, cr, lb, roof), notices)
        t = np.maximum(np.exp(np.interp(lb, cr.x, cr.y)) * roof, np.exp(ct.y.min()))
        return Priced(t, notices)


class TransferredPricing(NamedTuple):
    """A table measured on another GPU of the same architecture: each kernel is priced on
    the table's own GPU (`src`, exactly where measured) and carried over by
    transfer.transferred: the part above the framework's measured latency for the kernel's
    class scales by the ratio of the two GPUs' rooflines for that kernel."""

    src: KernelPricing
    hw: HardwareSpec
    latencies: dict  # class -> seconds (transfer_latencies of the table's framework)
    same_gpu: bool = False

    def quiet(self) -> TransferredPricing:
        """KernelPricing.quiet: the source priced without clamp notices."""
        return _quiet(self)

    @property
    def curves(self) -> Curves:
        return self.src.curves

    @property
    def label(self) -> str:
        cv, hw = self.curves, self.hw
        rule = (
            f"latency measured per class on {cv.table.framework} H100/H200 tables"
            if self.latencies
            else "pure roofline scaling: no latency measured for this framework"
        )
        return (
            f"operator table {cv.table.name} transferred from {cv.table.gpu} to {hw.name} "
            f"(peak compute x{hw.peak_flops(cv.table.dtype) / cv.flops:.2f}, bandwidth "
            f"x{hw.hbm_bandwidth / cv.bw:.2f}; {rule})"
        )

    def _carry(self, p: Priced, roof_src, roof_new, cls) -> Priced:
        t0 = self.latencies.get(cls, 0.0) if isinstance(cls, str) else cls
        return Priced(transferred(p.time_s, roof_src, roof_new, t0), p.notices)

    def gemm(
        self,
        name: str,
        m,
        k: float,
        n: float,
        w_bytes: float,
        compute_dtype: str | None = None,
        work: GemmWork | None = None,
    ) -> Priced:
        dt = compute_dtype or ("bf16" if w_bytes >= 2 else "fp8")
        if work is None:
            work = gemm_work(m, k, n, w_bytes)
        src, new = self.src.hw, self.hw
        roof_src = work_roofline(work, src.peak_flops(dt), src.hbm_bandwidth)
        roof_new = work_roofline(work, new.peak_flops(dt), new.hbm_bandwidth)
        t0 = np.where(
            np.asarray(m) <= SMALL_GEMM_MAX_TOKENS,
            self.latencies.get("gemm_small", 0.0),
            self.latencies.get("gemm_large", 0.0),
        )
        src_time = self.src.gemm(name, m, k, n, w_bytes, dt, work, roof_src)  # src's roofline
        return self._carry(src_time, roof_src, roof_new, t0)

    def attn_decode(self, b, c, h, kv, hd, kv_bytes) -> Priced:
        # both rooflines are proportional to the KV bytes (b x c), so their ratio is taken
        # at b = c = 1: one number, and the carried time keeps the source's monotonicity in
        # the context (an elementwise ratio would jitter in the last bit)
        roofs = [
            decode_roofline(1.0, 1.0, h, kv, hd, g.peak_flops("bf16"), g.hbm_bandwidth, kv_bytes)
            for g in (self.src.hw, self.hw)
        ]
        return self._carry(self.src.attn_decode(b, c, h, kv, hd, kv_bytes), *roofs, "attn_decode")

    def attn_prefill(self, f, by, h, kv, hd) -> Priced:
        roofs = [
            np.maximum(f / g.peak_flops("bf16"), by / g.hbm_bandwidth)
            for g in (self.src.hw, self.hw)
        ]
        return self._carry(self.src.attn_prefill(f, by, h, kv, hd), *roofs, "attn_prefill")

    def eltwise(self, kind: str, by, width: float | None = None) -> Priced:
        roofs = [by / g.hbm_bandwidth for g in (self.src.hw, self.hw)]
        return self._carry(self.src.eltwise(kind, by, width), *roofs, "eltwise")


@by_identity
def _quiet(kp):
    """kp without clamp notices, one object per pricing (memos key on its identity)."""
    if isinstance(kp, TransferredPricing):
        return kp._replace(src=kp.src.quiet())
    return kp._replace(explain=False)


@by_identity
def kernel_pricing(
    curves: Curves | None, hw: HardwareSpec
) -> KernelPricing | TransferredPricing | None:
    """Pricing by a loaded table on `hw`: the table's own GPU, or a GPU of the same
    architecture (TransferredPricing); None when there is no table or it cannot describe
    `hw`. One object per (table, GPU) object pair (memos downstream key on it)."""
    if curves is None or not transfers_to(curves.table.gpu, hw):
        return None
    if hw.name == curves.table.gpu:
        return KernelPricing(curves, hw, True)
    src = KernelPricing(curves, resolve_gpu(curves.table.gpu), True)
    return TransferredPricing(src, hw, transfer_latencies(curves.table.framework))
