"""SpecPrefill: time to first token when a small speculator picks the prompt tokens to keep.

Speculative Prefill (Liu et al., ICML 2025, "Speculative Prefill: Turbocharging TTFT with
Lightweight and Training-Free Token Importance Estimation"):
  TTFT(keep) = T_spec_prefill(b, L)                      speculator prefill of the whole prompt
             + n_look * T_spec_decode(b, L)               its look-ahead decode steps
             + T_score(b, L)                              attention scores of the look-ahead
                                                          queries over all prompt keys, all
                                                          layers and heads, then top-k
             + T_target_prefill(b, ceil(keep * L))        target prefill of the kept tokens
                                                          (original position ids kept; the
                                                          first token's logits included)
Speculator and target share the GPUs (times add), as in the published setup (TP8 for both on
the same 8 GPUs). Scoring: see specprefill_cost.scoring_op.

Planner (plan_specprefill): speedup and quality per keep rate, recommended keep rate under a
LongBench quality budget (perfmodel.planners.quality), break-even prompt length (exact to one token),
and max QPS under a TTFT SLO (max_qps; speculator on shared GPUs or on its own, pipelined).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from perfmodel.core.arrays import sorted_unique
from perfmodel.core.deployment import Deployment
from perfmodel.core.memory import max_batch, memory_report
from perfmodel.errors import PerfModelError
from perfmodel.planners.feasibility.context import context_verdict
from perfmodel.planners.quality import min_keep_rate_for_drop, quality_drop
from perfmodel.planners.slo import SPECPREFILL_SLO_FACTOR
from perfmodel.planners.specprefill_cost import (
    DEFAULT_LOOKAHEAD,
    SpecPrefillTimes,
    check_keep_rates,
    kept_tokens,
    specprefill_times,
)
from perfmodel.planners.speculation.deploy import (
    FIRST_STAGE,
    OWN_GPUS,
    check_helper,
    helper_memory,
    helper_placement,
)
from perfmodel.specs.units import plural

DEFAULT_KEEP_RATES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
MAX_QPS_BATCH = 4096  # largest batch the QPS search considers (memory usually binds first)
_GRID_PER_OCTAVE = 16  # coarse log grid that brackets the break-even length before bisection


def _as_int(x) -> int | None:
    x = float(np.asarray(x))
    return int(x) if np.isfinite(x) else None


def memory_max_batch(
    target: Deployment, speculator: Deployment, prompt_len, keep_rate, colocated: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Largest batch that fits in memory: (baseline, SpecPrefill), SpecPrefill per keep rate.
    Prefill-only requests (1 output token). Baseline: the target's weights, KV of L tokens and
    activations. SpecPrefill on shared GPUs: the target's KV holds only ceil(keep*L) tokens, but
    the speculator's weights and the KV of its full-prompt prefill sit on the same GPUs (vLLM
    runs the speculator as a second engine with its own reserved cache). On its own GPUs the
    speculator's memory is checked there, and the smaller of the two batches binds.
    """
    L = np.asarray(prompt_len, float)
    kept = kept_tokens(L, keep_rate)
    base = max_batch(target, L, 1.0)
    if colocated:
        helper = helper_memory(speculator, L)
        sp = max_batch(
            target,
            kept,
            1.0,
            extra_bytes_per_seq=helper.kv_bytes_per_seq,
            extra_bytes=helper.weight_bytes,
        )
    else:
        sp = np.minimum(max_batch(target, kept, 1.0), max_batch(speculator, L, 1.0))
    return base, sp


class QpsEstimate(NamedTuple):
    """Max QPS under a TTFT SLO, prefill-bound (see max_qps)."""

    slo_ttft_s: float
    slo_is_default: bool
    baseline_qps: float
    baseline_batch: int
    specprefill_qps: np.ndarray  # per keep rate
    specprefill_batch: np.ndarray  # per keep rate
    baseline_gpus: int
    specprefill_gpus: int
    pipelined: bool


def max_qps(
    target: Deployment,
    speculator: Deployment,
    prompt_len,
    keep_rate,
    slo_ttft_s: float,
    lookahead=DEFAULT_LOOKAHEAD,
    colocated: bool = True,
    max_batch_cap: int = MAX_QPS_BATCH,
) -> tuple[float, int, np.ndarray, np.ndarray]:
    """Max QPS of prefill-bound serving of requests of `prompt_len` tokens under a TTFT SLO.

    Model: requests arrive continuously and are prefilled in batches of B, one batch after
    the other; a request's TTFT is its batch's prefill time (queueing ignored). The best B is
    the one with the highest B / T(B) among batches with T(B) <= SLO that fit in memory
    (T grows ~linearly in B, so that is the largest feasible B); QPS = replicas * B / T(B).
    - baseline: T(B) = target prefill of B x L tokens.
    - SpecPrefill on the same GPUs: the stages run one after the other, T(B) = TTFT(B) =
      speculator + target(keep), and QPS = replicas * B / TTFT(B).
    - SpecPrefill with the speculator on its own GPUs: a batch's TTFT is still the sum of the
      two stages (must be <= SLO), but the stages pipeline (the speculator scores batch i+1
      while the target prefills batch i), so QPS = replicas * B / max(T_spec(B), T_target(B)).
    Decode is not modeled (prefill-bound: output of ~1 token, or decode on other instances).
    Returns (baseline_qps, baseline_batch, specprefill_qps[keep], specprefill_batch[keep]);
    batch 0 and QPS 0 when no batch meets the SLO.
    """
    keep = np.atleast_1d(check_keep_rates(keep_rate)).astype(float)
    L = float(prompt_len)
    mem_base, mem_sp, cap = _qps_memory(target, speculator, L, keep, colocated, max_batch_cap)
    b = np.arange(1.0, cap + 1.0)[:, None]  # (B, 1) x keep (1, K)
    times = specprefill_times(target, speculator, b, L, keep[None, :], lookahead)
    return _qps_of(times, b, mem_base, mem_sp, slo_ttft_s, target.replicas, colocated)


def _qps_memory(target, speculator, L: float, keep, colocated: bool, max_batch_cap: int):
    """(baseline, SpecPrefill per keep rate) largest batch in memory, and the largest batch
    max_qps considers (at least 1)."""
    mem_base, mem_sp = memory_max_batch(target, speculator, L, keep, colocated)
    cap = int(min(max_batch_cap, max(float(mem_base), float(np.max(mem_sp)), 1.0)))
    return mem_base, mem_sp, cap


def _qps_of(times, b, mem_base, mem_sp, slo_ttft_s, replicas, colocated):
    """max_qps's answer from the times of batches b = 1..cap (B, 1) x keep rates (1, K)."""
    base_t = times.baseline_s[:, 0]
    ok = (base_t <= slo_ttft_s) & (b[:, 0] <= mem_base)
    rate = np.where(ok, replicas * b[:, 0] / base_t, 0.0)
    i = int(np.argmax(rate))
    base_qps, base_batch = float(rate[i]), int(b[i, 0]) if rate[i] > 0 else 0

    stage = times.ttft_s if colocated else np.maximum(times.speculator_s, times.target_s)
    ok = (times.ttft_s <= slo_ttft_s) & (b <= mem_sp[None, :])
    rate = np.where(ok, replicas * b / stage, 0.0)
    j = np.argmax(rate, axis=0)
    sp_qps = rate[j, np.arange(rate.shape[1])]
    sp_batch = np.where(sp_qps > 0, b[j, 0], 0.0)
    return base_qps, base_batch, sp_qps, sp_batch


def break_even_prompt_len(
    target: Deployment,
    speculator: Deployment,
    batch,
    keep_rate,
    lookahead=DEFAULT_LOOKAHEAD,
    max_len: int | None = None,
) -> np.ndarray:
    """Smallest prompt length L (tokens) at which SpecPrefill is faster than the baseline.

    Vectorized over keep rates (and batch, broadcast). A coarse log grid (16 points per
    octave, one vectorized call) finds the first grid length where SpecPrefill pays; integer
    bisection between it and the previous grid point then makes it exact to one token:
    TTFT(L) < baseline(L) and TTFT(L-1) >= baseline(L-1). nan where it never pays up to
    max_len (default: the target's context window).
    """
    keep = np.asarray(check_keep_rates(keep_rate), float)
    b, keep = np.broadcast_arrays(np.asarray(batch, float), keep)
    max_len = int(max_len or target.model.max_position_embeddings)
    octaves = np.log2(max_len)
    grid = sorted_unique(
        np.append(
            np.round(2.0 ** np.linspace(0, octaves, int(octaves * _GRID_PER_OCTAVE) + 2)), max_len
        )
    )
    grid = grid[(grid >= 1) & (grid <= max_len)]

    def pays(lengths) -> np.ndarray:
        t = specprefill_times(target, speculator, b, lengths, keep, lookahead)
        return t.ttft_s < t.baseline_s

    g = grid.reshape((-1,) + (1,) * b.ndim)
    grid_pays = pays(g)  # (G, *shape)
    any_pays = grid_pays.any(axis=0)
    first = np.argmax(grid_pays, axis=0)
    hi = grid[first].astype(float)
    lo = np.where(first > 0, grid[np.maximum(first - 1, 0)], 0.0).astype(float)
    # invariant: SpecPrefill pays at hi, does not at lo (lo = 0: nothing below 1 token)
    while True:
        open_ = any_pays & (hi - lo > 1)
        if not np.any(open_):
            break
        mid = np.floor((lo + hi) / 2.0)
        mid = np.where(open_, mid, hi)
        p = pays(np.maximum(mid, 1.0))
        hi = np.where(open_ & p, mid, hi)
        lo = np.where(open_ & ~p, mid, lo)
    return np.where(any_pays, hi, np.nan)


class SpecPrefillPlan(NamedTuple):
    """Everything the SpecPrefill planner found for one batch and prompt length."""

    target: Deployment
    speculator: Deployment
    batch: int
    prompt_len: int
    lookahead: int
    colocated: bool
    keep_rates: np.ndarray
    times: SpecPrefillTimes  # arrays over keep rates
    quality: object  # quality.QualityEstimate
    meets_quality: np.ndarray
    max_quality_drop: float
    quality_min_keep_rate: float
    best_keep_rate: float | None  # fastest keep rate within the quality budget (may not pay)
    recommended_keep_rate: float | None  # best_keep_rate where it beats the baseline and fits
    reason: str  # why this recommendation (use, or skip SpecPrefill)
    break_even_prompt_len: int | None
    qps: QpsEstimate
    fits: np.ndarray  # per keep rate: batch x prompt fits in memory with SpecPrefill
    baseline_fits: bool
    # GB per GPU on the target's GPUs: per keep rate (with the speculator where it shares them)
    memory_gb: np.ndarray | None = None
    baseline_memory_gb: float | None = None
    capacity_gb: float | None = None

    @property
    def baseline_ttft_s(self) -> float:
        return float(np.ravel(self.times.baseline_s)[0])

    @property
    def pays(self) -> bool:
        """True when a keep rate within the quality budget beats the baseline and fits."""
        return self.recommended_keep_rate is not None

    def rows(self) -> list[dict]:
        return [self.row(i) for i in range(len(self.keep_rates))]

    def row(self, i: int) -> dict:
        """The i-th keep rate's row of rows()."""
        t, k = self.times, self.keep_rates[i]
        return {
            "keep_rate": float(k),
            "kept_tokens": int(kept_tokens(self.prompt_len, k)),
            "ttft_s": float(t.ttft_s[i]),
            "speculator_s": float(t.speculator_s[i]),
            "target_s": float(t.target_s[i]),
            "speedup": float(t.speedup[i]),
            "breakdown_s": {
                "speculator_prefill": float(t.speculator_prefill_s[i]),
                "lookahead": float(t.lookahead_s[i]),
                "scoring_selection": float(t.scoring_s[i]),
                "target_prefill": float(t.target_s[i]),
            },
            "quality": self.quality.row(i),
            "meets_quality": bool(self.meets_quality[i]),
            "fits": bool(self.fits[i]),
            "memory_gb": None if self.memory_gb is None else float(self.memory_gb[i]),
            "qps": float(self.qps.specprefill_qps[i]),
            "qps_batch": int(self.qps.specprefill_batch[i]),
        }

    def _index(self, keep: float | None) -> int | None:
        if keep is None:
            return None
        return int(np.flatnonzero(self.keep_rates == keep)[0])

    def _rec_index(self) -> int | None:
        return self._index(self.recommended_keep_rate)

    @property
    def best_speedup(self) -> float | None:
        """The best keep rate's speedup (None: no keep rate within the quality budget)."""
        j = self._index(self.best_keep_rate)
        return None if j is None else float(self.times.speedup[j])

    def as_dict(self) -> dict:
        i = self._rec_index()
        return {
            "baseline_ttft_s": self.baseline_ttft_s,
            "baseline_fits": self.baseline_fits,
            "baseline_memory_gb": self.baseline_memory_gb,
            "capacity_gb": self.capacity_gb,
            "rows": self.rows(),
            "recommended_keep_rate": self.recommended_keep_rate,
            "recommended_speedup": None if i is None else float(self.times.speedup[i]),
            "pays": self.pays,
            "reason": self.reason,
            "best_keep_rate": self.best_keep_rate,
            "best_speedup": self.best_speedup,
            "max_quality_drop": self.max_quality_drop,
            "quality_min_keep_rate": self.quality_min_keep_rate,
            "break_even_prompt_len": self.break_even_prompt_len,
            "break_even_keep_rate": self.best_keep_rate,
            "qps": self.qps_dict(),
            "batch": self.batch,
            "prompt_len": self.prompt_len,
            "lookahead": self.lookahead,
            # one vocabulary with recommend and capacity (speculation.helper_placement)
            "speculator_placement": FIRST_STAGE if self.colocated else OWN_GPUS,
            "speculator_gpus": self.speculator.num_gpus,
        }

    def qps_dict(self) -> dict:
        """as_dict's "qps": at the recommended keep rate, else the best QPS among the keep
        rates within the quality budget (all keep rates only when none is within it;
        meets_quality says which)."""
        q = self.qps
        i = self._rec_index()
        within = np.where(self.meets_quality, q.specprefill_qps, -1.0)
        best = int(np.argmax(within if np.any(self.meets_quality) else q.specprefill_qps))
        at = i if i is not None else best
        sp_qps = float(q.specprefill_qps[at])
        return {
            "baseline": q.baseline_qps,
            "baseline_batch": q.baseline_batch,
            "specprefill": sp_qps,
            "specprefill_batch": int(q.specprefill_batch[at]),
            "keep_rate": float(self.keep_rates[at]),
            "keep_rate_basis": "recommended"
            if i is not None
            else "best QPS within the quality budget (SpecPrefill not recommended: see reason)",
            "meets_quality": bool(self.meets_quality[at]),
            "improvement": sp_qps / q.baseline_qps if q.baseline_qps > 0 else None,
            "slo_ttft_s": q.slo_ttft_s,
            "slo_is_default": q.slo_is_default,
            "slo_note": (
                f"default SLO: {SPECPREFILL_SLO_FACTOR:g}x the baseline TTFT of one request of "
                "this length (no --slo-ttft given)"
                if q.slo_is_default
                else "SLO given by the user"
            ),
            "baseline_gpus": q.baseline_gpus,
            "specprefill_gpus": q.specprefill_gpus,
            "pipelined": q.pipelined,
            "model": "prefill-bound: batches of B requests prefilled back to back; largest "
            "B/T(B) with TTFT(B) <= SLO that fits in memory; QPS = replicas*B/T(B), T = TTFT "
            "(shared GPUs) or the slower stage (speculator on its own GPUs)",
        }


def recommend_keep_rate(
    target_dep: Deployment,
    speculator_dep: Deployment,
    batch,
    prompt_len,
    keep_rates=DEFAULT_KEEP_RATES,
    lookahead=DEFAULT_LOOKAHEAD,
    max_quality_drop=1.0,
):
    """(recommended keep rate or None, times per keep rate, quality per keep rate, meets
    quality mask): the lowest-TTFT keep rate whose published LongBench drop is within
    max_quality_drop. The cheap core of plan_specprefill (no break-even search, no QPS)."""
    keep = np.atleast_1d(check_keep_rates(keep_rates)).astype(float).ravel()
    times = specprefill_times(target_dep, speculator_dep, batch, prompt_len, keep, lookahead)
    quality = quality_drop(keep)
    ok = quality.meets(max_quality_drop)
    return _fastest_within(keep, times.ttft_s, ok), times, quality, ok


def _fastest_within(keep: np.ndarray, ttft_s: np.ndarray, ok: np.ndarray) -> float | None:
    """The lowest-TTFT keep rate among those meeting the quality budget (None: none does)."""
    return float(keep[np.flatnonzero(ok)[np.argmin(ttft_s[ok])]]) if np.any(ok) else None


def decide_keep_rate(
    keep_rates,
    speedup,
    fits,
    best: float | None,
    max_quality_drop: float,
    prompt_len: int,
    break_even: int | None,
) -> tuple[float | None, str]:
    """(recommended keep rate or None = skip SpecPrefill, why). The one rule every planner
    follows: never recommend what the plan shows to be no faster than the baseline.
    best: the fastest keep rate within the quality budget (None: none meets it); it is
    recommended only where its speedup > 1 and the configuration fits in memory."""
    if best is None:
        return None, (
            "skip SpecPrefill: no keep rate meets the quality budget of "
            f"{plural(float(max_quality_drop), 'LongBench point')}"
        )
    i = int(np.flatnonzero(np.asarray(keep_rates) == best)[0])
    s = float(np.ravel(speedup)[i])
    if s <= 1.0:
        return None, (
            f"skip SpecPrefill: at {prompt_len} tokens the fastest keep rate within "
            f"{plural(float(max_quality_drop), 'LongBench point')} ({best:g}) is {s:.2f}x the "
            "baseline TTFT "
            "(the speculator costs more than the prompt it saves)"
            + (f"; it pays from {break_even} tokens" if break_even else "")
        )
    if not bool(np.ravel(fits)[i]):
        return None, (
            f"skip SpecPrefill: keep {best:g} would give {s:.2f}x TTFT, but the speculator "
            "(weights and the KV of its full-prompt prefill) does not fit beside the target"
        )
    return (
        best,
        f"use keep rate {best:g}: {s:.2f}x TTFT within "
        f"{plural(float(max_quality_drop), 'LongBench point')}",
    )


MAX_LOOKAHEAD = 4096  # speculator decode steps before scoring (the paper uses 8)


def _planned_times(target, speculator, b: int, L: int, keep, lookahead, cap: int):
    """(times at the workload's batch b per keep rate, as recommend_keep_rate prices them;
    batch 1's baseline TTFT prefill_time(target, 1, L), the default SLO's basis; times of
    batches 1..cap (B, 1) x keep rates (1, K), as max_qps prices them). Each point of a
    sweep is priced as on its own, so all three are rows of one sweep over batches 1..cap,
    and b after them when larger: one call per pass instead of three."""
    batches = np.arange(1.0, cap + 1.0)
    if b > cap:
        batches = np.append(batches, float(b))
    sweep = specprefill_times(
        target, speculator, batches[:, None], float(L), keep[None, :], lookahead
    )
    at_b = SpecPrefillTimes(*(f[min(b, cap + 1) - 1] for f in sweep))  # batch b's row
    return at_b, float(sweep.baseline_s[0, 0]), SpecPrefillTimes(*(f[:cap] for f in sweep))


def plan_specprefill(
    target_dep: Deployment,
    speculator_dep: Deployment,
    batch,
    prompt_len,
    keep_rates=DEFAULT_KEEP_RATES,
    lookahead=DEFAULT_LOOKAHEAD,
    max_quality_drop=1.0,
    slo_ttft_s=None,
    *,
    colocated: bool | None = None,
    beyond_context: bool = False,
) -> SpecPrefillPlan:
    """Plan SpecPrefill for one batch of prompts of one length.

    - TTFT, speculator and target time and speedup per keep rate (specprefill_times).
    - Quality per keep rate from the published LongBench averages (quality.quality_drop);
      keep rates below the lowest published one are "unmeasured" and never recommended.
    - best keep rate: the fastest within max_quality_drop (None if none); recommended: the
      best where it pays and fits (decide_keep_rate), else None = skip SpecPrefill.
      break_even_prompt_len: at the best keep rate (None: none, or never pays).
    - max QPS under a TTFT SLO (max_qps); default SLO = 2x the baseline TTFT at batch 1.
    - colocated: speculator on the target's (first stage's) GPUs (default when
      speculation.helper_placement says so) or on its own GPUs (speculator_dep.num_gpus of them, per target replica).
    Raises PerfModelError for a keep rate outside (0, 1], a speculator larger than the target,
    a speculator with another vocabulary, or a prompt longer than the target's context
    (unless beyond_context: then modeled, and the caller labels it).
    """
    keep = np.atleast_1d(check_keep_rates(keep_rates)).astype(float).ravel()
    check_helper(target_dep.model, speculator_dep.model, "speculator")
    b, L = int(batch), int(prompt_len)
    if b < 1:
        raise PerfModelError(f"batch must be >= 1, got {batch}")
    if L < 1:
        raise PerfModelError(f"prompt length must be >= 1, got {prompt_len}")
    # the one context rule (feasibility.context): a TTFT-only plan holds the prompt
    context_verdict(target_dep.model, L, 0, beyond_context).require()
    if max_quality_drop < 0 or not np.isfinite(max_quality_drop):
        raise PerfModelError(
            f"--max-quality-drop must be >= 0 LongBench points, got {max_quality_drop}"
        )
    if slo_ttft_s is not None and not (slo_ttft_s > 0):
        raise PerfModelError(f"--slo-ttft must be positive, got {slo_ttft_s}")
    if not 0 <= lookahead <= MAX_LOOKAHEAD:
        raise PerfModelError(
            f"--lookahead must be from 0 to {MAX_LOOKAHEAD} decode steps, got {lookahead}"
        )
    if colocated is None:  # speculation.helper_placement: first stage's GPUs or its own
        colocated = helper_placement(target_dep, speculator_dep) != OWN_GPUS

    mem_base, mem_sp, cap = _qps_memory(
        target_dep, speculator_dep, float(L), keep, colocated, MAX_QPS_BATCH
    )
    times, batch_one_s, qps_times = _planned_times(
        target_dep, speculator_dep, b, L, keep, lookahead, cap
    )
    quality = quality_drop(keep)
    ok = quality.meets(max_quality_drop)
    rec = _fastest_within(keep, times.ttft_s, ok)

    break_even = None
    if rec is not None:
        break_even = _as_int(break_even_prompt_len(target_dep, speculator_dep, b, rec, lookahead))

    slo_default = slo_ttft_s is None
    if slo_default:
        slo_ttft_s = SPECPREFILL_SLO_FACTOR * batch_one_s
    b_qps = np.arange(1.0, cap + 1.0)[:, None]
    bq, bb, sq, sb = _qps_of(
        qps_times, b_qps, mem_base, mem_sp, float(slo_ttft_s), target_dep.replicas, colocated
    )
    extra_gpus = 0 if colocated else target_dep.replicas * speculator_dep.num_gpus
    qps = QpsEstimate(
        float(slo_ttft_s),
        slo_default,
        bq,
        bb,
        sq,
        sb,
        target_dep.num_gpus,
        target_dep.num_gpus + extra_gpus,
        not colocated,
    )

    kept = kept_tokens(L, keep)
    if colocated:
        extra = helper_memory(speculator_dep, L).total(b)
        sp_mem = memory_report(target_dep, b, kept, 1.0, extra_bytes=extra)
        fits = sp_mem.fits
    else:
        sp_mem = memory_report(target_dep, b, kept, 1.0)
        fits = sp_mem.fits & bool(np.all(memory_report(speculator_dep, b, L, 1.0).fits))
    base_mem = memory_report(target_dep, b, L, 1.0)
    baseline_fits = bool(np.all(base_mem.fits))
    recommended, reason = decide_keep_rate(
        keep, times.speedup, np.asarray(fits, bool), rec, max_quality_drop, L, break_even
    )

    return SpecPrefillPlan(
        target=target_dep,
        speculator=speculator_dep,
        batch=b,
        prompt_len=L,
        lookahead=int(lookahead),
        colocated=bool(colocated),
        keep_rates=keep,
        times=times,
        quality=quality,
        meets_quality=ok,
        max_quality_drop=float(max_quality_drop),
        quality_min_keep_rate=float(min_keep_rate_for_drop(max_quality_drop)),
        best_keep_rate=rec,
        recommended_keep_rate=recommended,
        reason=reason,
        break_even_prompt_len=break_even,
        qps=qps,
        fits=np.asarray(fits, bool),
        baseline_fits=baseline_fits,
        memory_gb=np.asarray(sp_mem.total_gb, float) + np.zeros(keep.size),
        baseline_memory_gb=float(np.max(base_mem.total_gb)),
        capacity_gb=float(base_mem.capacity_gb),
    )
