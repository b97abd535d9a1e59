"""SpecPrefill TTFT components (the cost side; planner in specprefill.py).

Speculative Prefill (Liu et al., ICML 2025):
  TTFT(keep) = T_spec_prefill(b, L) + n_look * T_spec_decode(b, L) + T_score(b, L)
             + T_target_prefill(b, ceil(keep * L))
Speculator and target share the GPUs (times add). Scoring is an attention-kind operator:
FLOPs 2*b*n*L*h*hd per layer (QK^T), bytes = K-cache read b*L*h_kv'*hd*kv_bytes + fp32
scores written and re-read (b*n*h/t*L*4*2) per layer, plus a per-sequence selection overhead
(profile overhead.select_us_per_seq, select_us_per_token).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from perfmodel.core.cost import op_time
from perfmodel.core.deployment import Deployment
from perfmodel.core.ops import ATTENTION, OpCost, kv_heads_per_gpu
from perfmodel.errors import PerfModelError
from perfmodel.planners.pricing_memo import decode_step_time, prefill_time

DEFAULT_LOOKAHEAD = 8


def check_keep_rates(keep) -> np.ndarray:
    keep = np.asarray(keep, dtype=float)
    if keep.size == 0 or np.any(~np.isfinite(keep)) or np.any(keep <= 0) or np.any(keep > 1):
        raise PerfModelError(f"keep rate must be in (0, 1], got {np.ravel(keep).tolist()}")
    return keep


def kept_tokens(prompt_len, keep) -> np.ndarray:
    """ceil(keep * L), at least 1 token."""
    return np.maximum(np.ceil(np.asarray(keep, float) * np.asarray(prompt_len, float) - 1e-9), 1.0)


def scoring_op(spec: Deployment, batch, prompt_len, lookahead) -> OpCost:
    """Attention scores of the look-ahead queries over every prompt key (all layers, heads),
    an attention-kind operator: FLOPs 2*b*n*L*h*hd per layer (QK^T), bytes = K-cache read
    b*L*h_kv'*hd*kv_bytes + fp32 scores written and re-read (b*n*h/t*L*4*2) per layer; the
    per-sequence selection (top-k, gather, re-batching on the host) is the profile's
    overhead.select_us_per_seq."""
    m = spec.model
    b, L, n = np.broadcast_arrays(*(np.asarray(x, float) for x in (batch, prompt_len, lookahead)))
    n = np.maximum(n, 1.0)  # at least the last prompt token scores the prompt
    t = spec.tp
    heads = m.num_heads / t
    k_read = m.num_layers * b * L * kv_heads_per_gpu(m, t) * m.head_dim * spec.kv_bytes
    scores = m.num_layers * b * n * heads * L * 4.0 * 2.0
    z = np.zeros_like(b)
    return OpCost(
        name="token_scoring",
        kind=ATTENTION,
        flops=m.num_layers * 2.0 * b * n * L * heads * m.head_dim,
        weight_bytes=z,
        act_bytes=scores,
        kv_read_bytes=k_read,
        kv_write_bytes=z,
        comm_bytes=z,
        comm_calls=z,
    )


class SpecPrefillTimes(NamedTuple):
    """The parts of SpecPrefill's TTFT and the baseline's (seconds), broadcast arrays."""

    baseline_s: np.ndarray
    speculator_prefill_s: np.ndarray
    lookahead_s: np.ndarray
    scoring_s: np.ndarray
    target_s: np.ndarray

    @property
    def speculator_s(self) -> np.ndarray:
        """Everything the speculator side costs: prefill, look-ahead, scoring/selection."""
        return self.speculator_prefill_s + self.lookahead_s + self.scoring_s

    @property
    def ttft_s(self) -> np.ndarray:
        return self.speculator_s + self.target_s

    @property
    def speedup(self) -> np.ndarray:
        return self.baseline_s / self.ttft_s


def specprefill_times(
    target: Deployment,
    speculator: Deployment,
    batch,
    prompt_len,
    keep_rate,
    lookahead=DEFAULT_LOOKAHEAD,
) -> SpecPrefillTimes:
    """All components of SpecPrefill TTFT (seconds), broadcast over every argument.

    The speculator's side and the baseline do not depend on the keep rate: they are priced
    once per (batch, prompt) point and spread over the keep rates (read-only views). The
    target's two prefills (of the kept tokens, and of the whole prompt for the baseline) are
    one call (each point of a sweep is priced as on its own)."""
    keep = check_keep_rates(keep_rate)
    b0, L0 = np.broadcast_arrays(np.asarray(batch, float), np.asarray(prompt_len, float))
    b, L, k = np.broadcast_arrays(b0, L0, keep)
    if b0.ndim == 0 and b.ndim:  # one point over keep rates: priced as a sweep, as before
        b0, L0 = b0[None], L0[None]
    spec_prefill = prefill_time(speculator, b0, L0)
    look = np.asarray(lookahead, float) * decode_step_time(speculator, b0, L0)
    score_op = scoring_op(speculator, b0, L0, lookahead)
    scoring = op_time(score_op, speculator.gpu, speculator.profile, "bf16", speculator.mode).time_s
    prof = speculator.profile
    scoring = scoring + (prof.select_us_per_seq * b0 + prof.select_us_per_token * b0 * L0) * 1e-6
    kept = kept_tokens(L, k)
    both = prefill_time(
        target,
        np.concatenate((b.ravel(), b0.ravel())),
        np.concatenate((kept.ravel(), L0.ravel())),
    )
    target_time, baseline = both[: b.size].reshape(b.shape), both[b.size :].reshape(b0.shape)
    baseline, spec_prefill, look, scoring = (
        _over(x, b.shape) for x in (baseline, spec_prefill, look, scoring)
    )
    return SpecPrefillTimes(baseline, spec_prefill, look, scoring, target_time)


def _over(x, shape: tuple) -> np.ndarray:
    """x spread over `shape` (a read-only view; x's own extra dimensions kept)."""
    return np.broadcast_to(x, np.broadcast_shapes(np.shape(x), shape))
