"""How a measured kernel time carries over to a new shape or another GPU: t = r * R, with R
the datasheet roofline of the new kernel and r = t_meas / R_meas the measured ratio. The
ratio carries the kernel behaviour (wave quantization, GEMV bandwidth, launch floor), the
roofline the new shape and the new GPU's peaks (roofline: Williams 2009; aiconfigurator-style
interpolation of measured tables). A table transfers only to a GPU of the same architecture
(specs/optables.py ARCHITECTURE): another one has other kernels."""

from __future__ import annotations

import numpy as np

from perfmodel.specs.hardware import HardwareSpec
from perfmodel.specs.optables import same_architecture


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
