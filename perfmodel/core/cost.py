"""Time of operators under an efficiency profile: roofline or additive, plus overheads.

For an op with F FLOPs and M bytes on a GPU with peak P (FLOP/s of the compute dtype) and
bandwidth W (B/s), and efficiencies e_c (matmul or attention) and e_m (memory):
  roofline:  t = max(F / (P e_c), M / (W e_m))   (perfect overlap; Williams et al. 2009)
  additive:  t = F / (P e_c) + M / (W e_m)        (no overlap; MagicDec reports this mode)
Per-kernel floor: t >= kernels * kernel_floor_us (KERNELS_PER_LAYER below).
Communication: t = calls * latency + bytes / (link bandwidth * e_comm), never overlapped;
the link is the node's (NVLink/PCIe) unless a TP group spans nodes (deployment.tp_link).
A forward pass adds per_layer_us * L + per_step_us + per_token_us * sampled tokens.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from perfmodel.core.arrays import zeros_like
from perfmodel.core.deployment import TpLink
from perfmodel.core.ops import ATTENTION, COMM, MATMUL, OpCost
from perfmodel.errors import PerfModelError
from perfmodel.specs.hardware import HardwareSpec
from perfmodel.specs.profile import Profile


class OpTime(NamedTuple):
    """Time of one operator (seconds) and its compute / memory / communication parts."""

    name: str
    kind: str
    time_s: np.ndarray
    compute_s: np.ndarray
    memory_s: np.ndarray
    comm_s: np.ndarray


# Kernels per layer of each operator in a serving stack (vLLM-style fusions): a GEMM is one
# kernel; attention writes the KV cache and runs the attention kernel; the elementwise op is
# 2 fused add+RMSNorm, RoPE and SiLU-and-mul; the LM head runs once per pass. ~10 per layer.
KERNELS_PER_LAYER = {
    "qkv_proj": 1,
    "o_proj": 1,
    "mlp_gate_up": 1,
    "mlp_down": 1,
    "moe_router": 1,
    "moe_experts": 1,
    "attention": 2,
    "mla_kv_up": 1,
    "norm_rope_act": 4,
}
KERNELS_PER_PASS = {"lm_head": 1}


def kernels_per_pass(name: str, num_layers: int) -> float:
    """Kernel launches of an operator in one forward pass (0 for unknown operators)."""
    return KERNELS_PER_LAYER.get(name, 0) * num_layers + KERNELS_PER_PASS.get(name, 0)


def op_time(
    op: OpCost,
    hw: HardwareSpec,
    profile: Profile,
    compute_dtype: str,
    mode: str,
    kernels: float = 0.0,
    link: TpLink | None = None,
) -> OpTime:
    """Time of one operator (seconds, per GPU; arrays broadcast); at least `kernels` times
    the profile's per-kernel floor. `link`: what a TP all-reduce runs over (default: the
    node's link; deployment.tp_link gives the inter-node network for TP across nodes)."""
    if op.kind == COMM:
        link = link or TpLink(hw.link_bandwidth, 0.0, hw.link_kind)
        if link.bandwidth <= 0 and np.any(np.asarray(op.comm_calls) > 0):
            raise PerfModelError(
                f"{hw.name} has no interconnect (link_bandwidth_gbps 0): tensor parallelism "
                "across devices needs one; use --tp 1"
            )
        bw = link.bandwidth if link.bandwidth > 0 else np.inf
        latency = profile.comm_latency_us * 1e-6 + link.extra_latency_s
        comm = op.comm_calls * latency + op.comm_bytes / (bw * profile.comm)
        z = zeros_like(comm)
        return OpTime(op.name, op.kind, comm, z, z, comm)
    if op.kind == MATMUL:
        peak = hw.peak_flops(compute_dtype)
        eff = profile.matmul * matmul_size_factor(op.rows, profile.matmul_half_rows)
    elif op.kind == ATTENTION:
        peak, eff = hw.peak_flops("bf16"), profile.attention
    else:
        peak, eff = hw.peak_flops("bf16"), 1.0
    compute = op.flops / (peak * eff)
    mem_eff = profile.memory
    if op.kind == ATTENTION and profile.attention_decode > 0:
        mem_eff = profile.attention_decode
    memory = op.mem_bytes / (hw.hbm_bandwidth * mem_eff)
    total = np.maximum(compute, memory) if mode == "roofline" else compute + memory
    if kernels and profile.kernel_floor_us > 0:
        total = np.maximum(total, kernels * profile.kernel_floor_us * 1e-6)
    return OpTime(op.name, op.kind, total, compute, memory, zeros_like(total))


def matmul_size_factor(rows, half_rows: float) -> np.ndarray:
    """GEMM efficiency falls for a small M (tokens): M / (M + M_half).

    Tiles of 64-128 rows and wave quantization leave tensor cores idle when few tokens
    share each weight tile; M_half (profile matmul_half_rows) is the token count at which a
    GEMM runs at half its large-M efficiency.
    """
    rows = np.asarray(rows, float)
    return rows / (rows + half_rows) if half_rows > 0 else np.ones_like(rows)


def overhead_time(profile: Profile, num_layers: int, sampled_tokens) -> np.ndarray:
    """Fixed costs of one forward pass: per layer, per step, per sampled token (seconds)."""
    return (
        profile.per_layer_us * num_layers
        + profile.per_step_us
        + profile.per_token_us * np.asarray(sampled_tokens, dtype=float)
    ) * 1e-6
