"""How a measured kernel time carries over to a new shape or another GPU: t = r * R, with R
the datasheet roofline of the new kernel and r = t_meas / R_meas the measured ratio. The
ratio carries the kernel behaviour (wave quantization, GEMV bandwidth, launch floor), the
roofline the new shape and the new GPU's peaks (roofline: Williams 2009; aiconfigurator-style
interpolation of measured tables). A table transfers only to a GPU of the same architecture
(`architecture:` in the hardware YAML): another one has other kernels.

Across GPUs (transferred): the time measured on the table's GPU carries over as
    t_new = t0' + (t_meas - t0') * R_new / R_meas,   t0' = min(t0, t_meas)
with t0 a fixed latency per framework and operator class, measured where two GPUs of a
family both have tables (validation/fit_transfer.py -> perfmodel/data/transfer_latency.yaml:
H100 and H200; pure roofline scaling, t0 = 0, was off by 17-34% per class and direction for
small kernels, the corrected rule is within 4%). A framework without measured latencies
scales by the roofline (t0 = 0), and the label says so."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

from perfmodel.paths import PACKAGE_DIR
from perfmodel.specs import yamlio
from perfmodel.specs.hardware import HardwareSpec
from perfmodel.specs.optables import same_architecture

LATENCIES = PACKAGE_DIR / "data" / "transfer_latency.yaml"
SMALL_GEMM_MAX_TOKENS = 64  # the 'gemm_small' class (validation/fit_transfer.py)


@lru_cache(maxsize=1)
def _latency_file() -> dict:
    return yamlio.safe_load(LATENCIES.read_text()) if LATENCIES.is_file() else {}


def transfer_latencies(framework: str) -> dict[str, float]:
    """class -> measured fixed latency (seconds) for a framework's tables ({}: none, t0 = 0)."""
    classes = (_latency_file().get("frameworks") or {}).get(framework) or {}
    return {c: float(r["latency_us"]) * 1e-6 for c, r in classes.items()}


def transferred(t_meas, roof_meas, roof_new, latency_s):
    """t0' + (t_meas - t0') * R_new / R_meas with t0' = min(latency, t_meas)."""
    one = (t_meas, roof_meas, roof_new, latency_s)
    if isinstance(t_meas, np.float64) and all(isinstance(v, (float, np.number)) for v in one):
        # one kernel (float64 scalars): the same operations, without 0-d arrays
        lat = latency_s if latency_s < t_meas else t_meas  # np.minimum's choice
        return lat + (t_meas - lat) * roof_new / roof_meas
    t = np.asarray(t_meas, float)
    lat = np.minimum(latency_s, t)
    return lat + (t - lat) * np.asarray(roof_new) / np.asarray(roof_meas)


class GemmWork(NamedTuple):
    """A GEMM y[M,N] = x[M,K] @ W[K,N] apart from any GPU: its token count M (`m`), log
    max(M, 1) (the tables' variable) and the numerators of gemm_roofline, 2MKN FLOPs and
    KN w + M(K+N) a bytes. Worked out once per kernel, it serves each roofline of it (the
    table's GPU, the GPU it transfers to, the sustained compute rate) with the same
    operations in the same order as gemm_roofline's, so the same values bit for bit."""

    m: Any
    log_m: Any
    flop: Any
    bytes: Any


def gemm_work(m, k, n, w_bytes, act_bytes=2.0, log_m=None, two_m=None) -> GemmWork:
    """GemmWork of M = m tokens (array or scalar) and a K x N weight of w_bytes per element;
    `log_m` and `two_m`: np.log(np.maximum(m, 1.0)) and 2.0 * m where the caller has them
    (a grid's, worked out once for every kernel)."""
    log_m = np.log(np.maximum(m, 1.0)) if log_m is None else log_m
    two_m = 2.0 * m if two_m is None else two_m
    return GemmWork(m, log_m, two_m * k * n, k * n * w_bytes + m * (k + n) * act_bytes)


def work_roofline(work: GemmWork, flops: float, bw: float):
    """gemm_roofline of a GemmWork: max(2MKN / P, (KN w + M(K+N) a) / W), seconds."""
    return np.maximum(work.flop / flops, work.bytes / bw)


def gemm_roofline(m, k, n, w_bytes, flops, bw, act_bytes=2.0):
    """max(2MKN / P, (KN w + M(K+N) a) / W) of y[M,N] = x[M,K] @ W[K,N], seconds."""
    return np.maximum(2.0 * m * k * n / flops, (k * n * w_bytes + m * (k + n) * act_bytes) / bw)


def decode_roofline(b, c, h, kv, hd, flops, bw, kv_bytes=2.0):
    """max(4 b h c hd / P, KV bytes 2 b c kv hd e / W) of decode attention, seconds."""
    return np.maximum(4.0 * b * h * c * hd / flops, 2.0 * b * c * kv * hd * kv_bytes / bw)


def transfers_to(table_gpu: str, hw: HardwareSpec) -> bool:
    """Whether a table measured on `table_gpu` can price kernels on `hw`."""
    return hw.name == table_gpu or same_architecture(table_gpu, hw.name)


def table_label(name: str, table_gpu: str, table_flops: float, table_bw: float, dtype: str,
                hw: HardwareSpec) -> str:  # fmt: skip
    """What priced the kernels: the table measured on this GPU, or transferred (with the
    peak ratios that scale it)."""
    if hw.name == table_gpu:
        return f"operator table {name} (measured)"
    return (
        f"operator table {name} transferred to {hw.name} "
        f"(peak compute x{hw.peak_flops(dtype) / table_flops:.2f}, "
        f"bandwidth x{hw.hbm_bandwidth / table_bw:.2f})"
    )
