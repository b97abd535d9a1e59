"""MagicDec: speculative decoding at large batch and long context with a sparse-KV draft.

Chen et al., "MagicDec: Breaking the Latency-Throughput Tradeoff for Long Context
Generation with Speculative Decoding" (ICLR 2025); Leviathan et al. 2023 for E(a, gamma).
- accepted tokens per round: E = (1 - a^(g+1)) / (1 - a), 1 <= E <= g+1.
- T_draft  = g * T_draft_step(b, min(B, ctx))   (the draft reads a KV budget B, or all of it)
- T_verify = T_target(b, ctx, q = g+1)           (one target pass over g+1 tokens per sequence)
- T_SD     = (T_draft + T_verify + T_round) / E   (T_round: sampling, acceptance, KV rollback:
                                                   profile overhead.sd_step_us)
- speedup  = T_auto / T_SD with T_auto one plain target decode step at the same context.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perfmodel.deployment import Deployment
from perfmodel.errors import PerfModelError
from perfmodel.inference import decode_step_time


def check_acceptance_rate(a) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    if np.any(~np.isfinite(a)) or np.any(a < 0) or np.any(a >= 1):
        raise PerfModelError(f"acceptance rate must be in [0, 1), got {np.ravel(a).tolist()}")
    return a


def expected_accepted(a, gamma) -> np.ndarray:
    """E = (1 - a^(g+1)) / (1 - a): mean tokens produced per draft+verify round."""
    a = check_acceptance_rate(a)
    g = np.asarray(gamma, dtype=float)
    return (1.0 - a ** (g + 1.0)) / (1.0 - a)


def acceptance_rate_from_length(length, gamma, tol: float = 1e-12) -> np.ndarray:
    """Invert E(a, g) = length for a (vectorized bisection; E is increasing in a)."""
    length = np.asarray(length, float)
    g = np.asarray(gamma, float)
    length, g = np.broadcast_arrays(length, g)
    if np.any(length < 1) or np.any(length >= g + 1):
        raise PerfModelError(
            f"acceptance length must be in [1, gamma+1), got {np.ravel(length).tolist()}"
        )
    lo, hi = np.zeros_like(length), np.full_like(length, 1.0 - 1e-12)
    for _ in range(60):
        mid = (lo + hi) / 2
        too_low = (1.0 - mid ** (g + 1.0)) / (1.0 - mid) < length
        lo = np.where(too_low, mid, lo)
        hi = np.where(too_low, hi, mid)
    return (lo + hi) / 2


@dataclass(frozen=True)
class SpecDecodeTimes:
    gamma: np.ndarray
    draft_s: np.ndarray  # all gamma draft steps
    verify_s: np.ndarray
    round_overhead_s: np.ndarray
    acceptance_len: np.ndarray
    autoregressive_s: np.ndarray

    @property
    def sd_s(self) -> np.ndarray:
        """Time per generated token with speculation."""
        return (self.draft_s + self.verify_s + self.round_overhead_s) / self.acceptance_len

    @property
    def speedup(self) -> np.ndarray:
        return self.autoregressive_s / self.sd_s


def specdecode_times(
    target: Deployment,
    draft: Deployment,
    batch,
    context,
    gamma,
    acceptance_len,
    kv_budget=np.inf,
) -> SpecDecodeTimes:
    """Draft, verify and per-token times of one speculative round (seconds), broadcast."""
    b, c, g, e, budget = np.broadcast_arrays(
        *(np.asarray(x, float) for x in (batch, context, gamma, acceptance_len, kv_budget))
    )
    if np.any(g < 1):
        raise PerfModelError("gamma must be >= 1")
    if np.any(budget <= 0):
        raise PerfModelError("KV budget must be positive")
    draft_step = decode_step_time(draft, b, c, 1, kv_budget=budget)
    verify = decode_step_time(target, b, c, g + 1.0)
    auto = decode_step_time(target, b, c, 1)
    overhead = np.full_like(b, target.profile.sd_step_us * 1e-6)
    return SpecDecodeTimes(g, g * draft_step, verify, overhead, e, auto)


def specdecode_memory(
    target: Deployment,
    draft: Deployment,
    batch,
    prompt_len,
    output_len=0,
    kv_budget=np.inf,
    self_speculation=False,
):
    """Memory per GPU with the draft: target weights + KV, plus the draft's weights (unless
    it is the target itself) and its KV cache (min(budget, tokens) per sequence)."""
    from perfmodel.memory import kv_cache_bytes_per_gpu, memory_report, weight_bytes_per_gpu

    tokens = np.asarray(prompt_len, float) + np.asarray(output_len, float)
    draft_tokens = np.minimum(np.asarray(kv_budget, float), tokens)
    extra = kv_cache_bytes_per_gpu(draft, batch, draft_tokens)
    if not self_speculation:
        extra = extra + weight_bytes_per_gpu(draft)
    return memory_report(target, batch, prompt_len, output_len, extra_bytes=extra)
