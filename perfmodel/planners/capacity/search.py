"""Candidate search of the capacity planner: every (precision, TP x PP, batch) of one GPU type.

Replica layouts (TP x PP) are deployment_search.replica_layouts' (TP inside a node, replicas
tiling nodes, no inter-node pipeline on a GPU type without node data), bounded as
capacity_layouts says: per TP degree, the PP_DEPTHS shallowest pipelines that hold one
sequence at the p90 lengths in the leanest precision searched (a deeper pipeline adds
stages for KV room the fleet can also get from more replicas). Replicas (DP) are the fleet
size, queueing.fleet; a replica costs tp * pp GPUs.

Per candidate: prefill service times (mean and p90 prompt), decode step times at the batch
(mean and p90 context = prompt + output/2), whether the batch fits in memory (p90 lengths),
and the largest per-replica rate meeting the SLOs (queueing.replica_rate). Vectorized over
batch sizes and, without PP, TP degrees (the operators broadcast over an array of TP
degrees); each pipelined layout is one call per precision and phase.

With speculation (one extra row set per TP x PP layout where it helps):
- placement: the speculator or draft runs on the first pipeline stage's GPUs
  (speculation.helper_deployment; its memory counted there, core.memory).
- prefill: SpecPrefill at the planner's recommended keep rate (specprefill.recommend_keep_rate
  at batch 1 and the p90 prompt), where it is faster at both prompt lengths; the target's KV
  holds the kept tokens, the speculator's memory (speculation.helper_memory) sits beside it.
- decode: MagicDec's best configuration per batch (specdecode.planner_configs,
  planner_policy, choices_at: the same search and acceptance basis as recommend) where it is
  faster and fits.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np

from perfmodel.core.deployment import Deployment, make_deployment
from perfmodel.core.memory import max_batch
from perfmodel.errors import PerfModelError
from perfmodel.planners.capacity.queueing import fleet, replica_rate
from perfmodel.planners.capacity.workload import Workload
from perfmodel.planners.deployment_search import MAX_GPUS, replica_layouts
from perfmodel.planners.pricing_memo import (
    decode_step_time,
    deployment_key,
    memoized,
    prefill_time,
)
from perfmodel.planners.specdecode import (
    SpecDecodeChoice,
    choices_at,
    evaluate_grid,
    planner_configs,
    planner_policy,
)
from perfmodel.planners.specprefill import DEFAULT_KEEP_RATES, decide_keep_rate, recommend_keep_rate
from perfmodel.planners.specprefill_cost import kept_tokens, specprefill_times
from perfmodel.planners.speculation.deploy import (
    FIRST_STAGE,
    SELF,
    default_speculator,
    helper_deployment,
    helper_memory,
    helper_placement,
)
from perfmodel.specs.dtypes import PRECISIONS, kv_bytes, weight_bytes
from perfmodel.specs.hardware import load_gpu
from perfmodel.specs.models import resolve_model

TP_CHOICES = (1, 2, 4, 8)  # TP degrees searched (those that divide the node and the heads)
PP_DEPTHS = 3  # pipeline depths per TP degree, from the shallowest that holds the model
BATCH_GRID = np.unique(np.round(np.geomspace(1, 2048, 72))).astype(float)


@dataclass(frozen=True)
class ServiceTimes:
    """Per-replica service times (seconds), broadcast over (TP, batch)."""

    prefill_mean_s: np.ndarray
    prefill_p90_s: np.ndarray
    decode_mean_s: np.ndarray
    decode_p90_s: np.ndarray


@dataclass(frozen=True)
class SpecPrefillService:
    """SpecPrefill where it pays at batch 1: TTFT at the mean and p90 prompt."""

    speculator: Deployment
    keep_rate: float
    ttft_mean_s: float
    ttft_p90_s: float
    kept_tokens_p90: float

    def as_dict(self) -> dict:
        return {
            "specprefill_keep_rate": self.keep_rate,
            "speculator": self.speculator.model.name,
            "speculator_weight_dtype": self.speculator.weight_dtype,
            "kept_tokens_p90": self.kept_tokens_p90,
        }


@dataclass(frozen=True)
class SpecDecodeService:
    """MagicDec's best configuration per batch of BATCH_GRID (None where nothing is ranked or
    fits), its time per token at the p90 and mean contexts (inf where unavailable)."""

    sd_p90_s: np.ndarray
    sd_mean_s: np.ndarray
    choices_p90: list[SpecDecodeChoice | None]

    @functools.cached_property
    def basis(self) -> str:
        """The acceptance basis of the choices ('published', 'assumed 0.8', ...), read for
        every row of the candidate set: computed once."""
        labels = [c.acceptance.label for c in self.choices_p90 if c is not None]
        return ", ".join(dict.fromkeys(labels)) or "unknown"


@dataclass(frozen=True)
class Variant:
    """One row set: service times over (layouts, BATCH_GRID), fit mask, speculation; the
    layouts are (tp, pp) pairs, several only when pp = 1 (broadcast over TP)."""

    layouts: list[tuple[int, int]]
    times: ServiceTimes
    fits: np.ndarray
    prefill: SpecPrefillService | None = None
    decode: SpecDecodeService | None = None
    use_sd: np.ndarray | None = None  # per batch: MagicDec replaces plain decoding

    @property
    def speculative(self) -> bool:
        return self.prefill is not None or self.decode is not None


@dataclass
class Candidates:
    """Every (precision, TP x PP, batch) of one GPU type, flattened; per-replica quantities."""

    gpu: str
    price: float
    weight_dtype: list
    kv_dtype: list
    tp: np.ndarray
    pp: np.ndarray
    batch: np.ndarray
    s_mean: np.ndarray
    s_p90: np.ndarray
    d_mean: np.ndarray
    d_p90: np.ndarray
    lam: np.ndarray  # max per-replica rate meeting the SLOs (0 = infeasible)
    binding: np.ndarray
    spec: list  # per candidate: dict of the speculation used, or None
    profile: str
    deps: dict  # (weight, kv, tp, pp) -> Deployment (one replica)
    gpus_per_node: int = 8

    @property
    def replica_gpus(self) -> np.ndarray:
        """GPUs per replica: tp * pp."""
        return self.tp * self.pp


def capacity_layouts(hw, model, wl: Workload, precisions, mode=None, profile=None):
    """(tp, pp) replica layouts searched on one GPU type (module docstring): replica_layouts
    with TP in TP_CHOICES, per TP the PP_DEPTHS shallowest pipelines whose replica holds one
    sequence at the p90 lengths in the leanest of `precisions`."""
    m = resolve_model(model)
    lean = min(precisions, key=lambda p: (weight_bytes(p[0]), kv_bytes(p[1])))
    base = make_deployment(m, hw, 1, 1, lean[0], lean[1], mode, profile)
    out = []
    for tp in TP_CHOICES:
        if tp > 1 and hw.link_bandwidth <= 0:
            continue
        depths = [pp for t, pp in replica_layouts(hw, m.num_heads, m.num_layers, MAX_GPUS, tp)]
        held = [
            pp
            for pp in depths
            if max_batch(
                replace(base, num_gpus=tp * pp, tp=tp, pp=pp), wl.prompt_p90, wl.output_p90
            )
            >= 1
        ]
        out += [(tp, pp) for pp in held[:PP_DEPTHS]]
    return out


def _tp_deployment(dep: Deployment, tps: np.ndarray) -> Deployment:
    """A deployment whose tp is an array (T, 1): the operator costs broadcast over it."""
    return replace(dep, tp=tps[:, None], num_gpus=tps[:, None])


def spec_prefill_service(dep_t: Deployment, wl: Workload, max_quality_drop: float):
    """SpecPrefillService where the planner's recommended keep rate pays at both the mean and
    the p90 prompt (batch 1), else None."""
    name = default_speculator(dep_t.model, dep_t.tp)
    if name is None:
        return None
    spec = helper_deployment(dep_t, name, "speculator")
    p90 = int(round(wl.prompt_p90))
    best, times, _, _ = recommend_keep_rate(dep_t, spec, 1, p90, max_quality_drop=max_quality_drop)
    # the planners' one rule (specprefill.decide_keep_rate): never a keep rate that is no
    # faster than the baseline; memory is the candidate search's own check (max_batch)
    fits = np.ones(np.size(DEFAULT_KEEP_RATES), bool)
    keep, _ = decide_keep_rate(
        DEFAULT_KEEP_RATES, times.speedup, fits, best, max_quality_drop, p90, None
    )
    if keep is None:
        return None
    if wl.prompt_mean == wl.prompt_p90 == p90:  # a fixed workload: times already in hand
        i = int(np.flatnonzero(np.asarray(DEFAULT_KEEP_RATES, float) == keep)[0])
        ttft, base = np.repeat(times.ttft_s[i], 2), np.repeat(times.baseline_s[i], 2)
    else:
        t = specprefill_times(dep_t, spec, 1, [wl.prompt_mean, wl.prompt_p90], keep)
        ttft, base = t.ttft_s, t.baseline_s
    if not np.all(ttft < base):
        return None
    return SpecPrefillService(
        spec, keep, float(ttft[0]), float(ttft[1]), float(kept_tokens(wl.prompt_p90, keep))
    )


def spec_decode_service(dep_t: Deployment, wl: Workload, acceptance_rate: float | None):
    """SpecDecodeService over BATCH_GRID at the p90 and mean contexts (memory at output/2
    generated tokens, as recommend). Self-speculation is always a candidate and the planner
    policy assumes a rate where no data exists, so there is always a ranked configuration."""
    configs = planner_configs(dep_t)
    policy = planner_policy(acceptance_rate)
    points = (
        (wl.prompt_p90 + wl.output_p90 / 2, wl.output_p90 / 2),
        (wl.prompt_mean + wl.output_mean / 2, wl.output_mean / 2),
    )
    out: dict = {}
    for ctx, out_len in dict.fromkeys(points):  # a fixed workload (mean = p90): one grid
        g = evaluate_grid(
            dep_t, configs, BATCH_GRID, ctx, acceptance_rate=policy, output_len=out_len
        )
        choices = choices_at(g, require_fit=True)
        sd = np.array([np.inf if c is None else c.t_sd_s for c in choices])
        out[(ctx, out_len)] = (sd, choices)
    (sd_p90, choices_p90), (sd_mean, _) = out[points[0]], out[points[1]]
    return SpecDecodeService(sd_p90, sd_mean, choices_p90)


def _plain_times(dv: Deployment, wl: Workload) -> ServiceTimes:
    """Plain service times of one deployment (tp may be an array (T, 1)): (T, 1) and (T, NB)."""
    B = BATCH_GRID[None, :]
    ctx_mean, ctx_p90 = wl.prompt_mean + wl.output_mean / 2, wl.prompt_p90 + wl.output_p90 / 2
    prefill_p90 = np.atleast_2d(prefill_time(dv, 1.0, wl.prompt_p90))
    decode_p90 = np.atleast_2d(decode_step_time(dv, B, ctx_p90))
    same_prompt, same_ctx = wl.prompt_mean == wl.prompt_p90, ctx_mean == ctx_p90  # fixed: once
    return ServiceTimes(
        prefill_p90 if same_prompt else np.atleast_2d(prefill_time(dv, 1.0, wl.prompt_mean)),
        prefill_p90,
        decode_p90 if same_ctx else np.atleast_2d(decode_step_time(dv, B, ctx_mean)),
        decode_p90,
    )


def _variants(deps, layouts, wl, with_spec, max_quality_drop, acceptance_rate) -> list[Variant]:
    """The plain row sets (all pp = 1 layouts broadcast over TP in one, one per pipelined
    layout), plus one speculative row set per layout."""
    B = BATCH_GRID[None, :]
    flat = [lay for lay in layouts if lay[1] == 1]
    groups = ([flat] if flat else []) + [[lay] for lay in layouts if lay[1] > 1]
    out, plain_of = [], {}
    for group in groups:
        if group[0][1] == 1:
            dv = _tp_deployment(deps[group[0]], np.array([t for t, _ in group], float))
        else:
            dv = deps[group[0]]
        plain = _plain_times(dv, wl)
        mb = np.array([float(max_batch(deps[lay], wl.prompt_p90, wl.output_p90)) for lay in group])
        out.append(Variant(list(group), plain, B <= mb[:, None]))
        for i, lay in enumerate(group):
            plain_of[lay] = (plain, i, mb[i])
    if not with_spec:
        return out
    for lay in layouts:
        plain, i, mb_lay = plain_of[lay]
        d_t = deps[lay]
        sp = spec_prefill_service(d_t, wl, max_quality_drop)
        sd = spec_decode_service(d_t, wl, acceptance_rate)
        dm, d9 = plain.decode_mean_s[i : i + 1], plain.decode_p90_s[i : i + 1]
        if sp is not None:
            # target KV holds the kept prompt tokens; speculator weights and one full-prompt
            # speculator KV sit beside it
            extra = helper_memory(sp.speculator, wl.prompt_p90).total(1)
            mb_i = float(max_batch(d_t, sp.kept_tokens_p90, wl.output_p90, extra_bytes=extra))
        else:
            mb_i = float(mb_lay)
        use = (sd.sd_p90_s[None, :] < d9) & np.isfinite(sd.sd_p90_s[None, :])
        d9 = np.where(use, sd.sd_p90_s[None, :], d9)
        dm = np.where(use, np.minimum(sd.sd_mean_s[None, :], dm), dm)
        times = ServiceTimes(
            np.full((1, 1), sp.ttft_mean_s if sp else plain.prefill_mean_s[i, 0]),
            np.full((1, 1), sp.ttft_p90_s if sp else plain.prefill_p90_s[i, 0]),
            dm,
            d9,
        )
        out.append(Variant([lay], times, B <= mb_i, sp, sd, use[0]))
    return out


def _memo_variants(deps, layouts, wl, with_spec, max_quality_drop, acceptance_rate):
    """_variants, memoized inside `with memo():` (pricing_memo.memoized). They depend on the
    deployments, the layouts, the workload's four length statistics, speculation and its two
    limits, not on the QPS or the SLOs: a new QPS or SLO on the dashboard reuses them."""
    key = (
        "capacity_variants",
        tuple((lay, deployment_key(deps[lay])) for lay in layouts),
        (wl.prompt_mean, wl.prompt_p90, wl.output_mean, wl.output_p90),
        with_spec,
        max_quality_drop,
        acceptance_rate,
    )
    return memoized(
        key,
        lambda: tuple(_variants(deps, layouts, wl, with_spec, max_quality_drop, acceptance_rate)),
    )


def _spec_info(v: Variant, layout: tuple[int, int], n: int, dep: Deployment) -> dict | None:
    """The JSON record of the speculation a candidate uses (None for plain rows)."""
    if not v.speculative:
        return None
    info: dict = {"tp": layout[0], "pp": layout[1]}
    if v.prefill is not None:
        info.update(v.prefill.as_dict())
        info["speculator_placement"] = helper_placement(dep, v.prefill.speculator)
    if v.decode is not None:
        info["acceptance"] = v.decode.basis
        if v.use_sd is not None and v.use_sd[n]:
            c = v.decode.choices_p90[n]
            info["specdecode"] = c.label
            info["acceptance_basis"] = c.acceptance.kind
            info["draft_placement"] = SELF if c.draft == SELF else FIRST_STAGE
    return info


def candidates_for_gpu(
    model,
    gpu: str,
    wl: Workload,
    slo_ttft: float,
    slo_tpot: float,
    price: float,
    with_spec: bool,
    profile=None,
    mode=None,
    precisions=PRECISIONS,
    util: float = 0.8,
    max_quality_drop: float = 1.0,
    acceptance_rate: float | None = None,
) -> Candidates:
    """Every candidate of one GPU type with its per-replica rate (see the module docstring).
    Bad input (an unknown profile, dtype or mode) raises; a layout that does not divide the
    heads, exceeds the node or cannot hold one sequence is skipped."""
    hw = load_gpu(gpu)
    m = resolve_model(model)
    layouts = capacity_layouts(hw, m, wl, precisions, mode, profile)
    if not layouts:
        raise PerfModelError(
            f"no TP x PP layout of up to {MAX_GPUS} {hw.name} GPUs holds one sequence of "
            f"{m.name} at {wl.prompt_p90:.0f}+{wl.output_p90:.0f} tokens"
        )
    names = ("tp", "pp", "batch", "s_mean", "s_p90", "d_mean", "d_p90", "fits")
    cols: dict[str, list] = {k: [] for k in names}
    w_list, k_list, spec_list = [], [], []
    deps: dict = {}
    prof_name = ""
    for w, k in precisions:
        base = make_deployment(m, hw, 1, 1, w, k, mode, profile)
        by_lay = {
            (t, p): make_deployment(m, hw, t * p, t, w, k, mode, base.profile, pp=p)
            for t, p in layouts
        }
        deps.update({(w, k, t, p): d for (t, p), d in by_lay.items()})
        prof_name = base.profile.name
        for v in _memo_variants(by_lay, layouts, wl, with_spec, max_quality_drop, acceptance_rate):
            shape = (len(v.layouts), BATCH_GRID.size)
            st = v.times
            arrays = (
                np.array([t for t, _ in v.layouts], float)[:, None],
                np.array([p for _, p in v.layouts], float)[:, None],
                BATCH_GRID[None, :],
                st.prefill_mean_s,
                st.prefill_p90_s,
                st.decode_mean_s,
                st.decode_p90_s,
                v.fits,
            )
            for key, arr in zip(names, arrays, strict=True):
                cols[key].append(np.broadcast_to(arr, shape).ravel())
            n = shape[0] * shape[1]
            w_list += [w] * n
            k_list += [k] * n
            spec_list += [
                _spec_info(v, lay, j, by_lay[lay])
                for lay in v.layouts
                for j in range(BATCH_GRID.size)
            ]
    cat = {key: np.concatenate(v) for key, v in cols.items()}
    # the largest rate per candidate, elementwise: one call over every row set at once
    lam, binding = replica_rate(
        cat["s_mean"],
        cat["s_p90"],
        cat["d_p90"],
        cat["d_mean"],
        cat["batch"],
        wl.output_mean,
        slo_ttft,
        slo_tpot,
        util,
    )
    cat["lam"] = np.where(cat.pop("fits"), lam, 0.0)
    cat["binding"] = binding.astype(int)
    return Candidates(
        gpu=hw.name,
        price=price,
        weight_dtype=w_list,
        kv_dtype=k_list,
        spec=spec_list,
        profile=prof_name,
        deps=deps,
        gpus_per_node=hw.max_gpus_per_node,
        **cat,
    )


def fleet_cost(c: Candidates, qps) -> tuple[np.ndarray, np.ndarray]:
    """(replicas, cost per hour) of every candidate at each QPS: arrays (Q, N); inf where
    infeasible."""
    q = np.atleast_1d(np.asarray(qps, float))[:, None]
    replicas, _, cost, _ = fleet(c.lam[None, :], c.replica_gpus[None, :], c.price, q, 1.0)
    return replicas, cost


def subset(c: Candidates, keep: np.ndarray) -> Candidates:
    idx = np.flatnonzero(keep)
    return Candidates(
        c.gpu,
        c.price,
        [c.weight_dtype[i] for i in idx],
        [c.kv_dtype[i] for i in idx],
        c.tp[idx],
        c.pp[idx],
        c.batch[idx],
        c.s_mean[idx],
        c.s_p90[idx],
        c.d_mean[idx],
        c.d_p90[idx],
        c.lam[idx],
        c.binding[idx],
        [c.spec[i] for i in idx],
        c.profile,
        c.deps,
        c.gpus_per_node,
    )


def best_index(c: Candidates, qps: float) -> int | None:
    """The cheapest candidate at this QPS (ties: the lower unloaded TTFT)."""
    _, cost = fleet_cost(c, qps)
    cost = cost[0]
    if not np.any(np.isfinite(cost)):
        return None
    ttft = np.where(np.isfinite(cost), c.s_p90 + c.d_p90, np.inf)
    return int(np.lexsort((ttft, cost))[0])


def check_possible(all_c: list[Candidates], slo_ttft, slo_tpot) -> None:
    """Raise when an SLO cannot be met even at batch 1 on the best configuration."""
    best_t, best_d = (np.inf, None), (np.inf, None)
    for c in all_c:
        one = c.batch == 1
        if not np.any(one):
            continue
        it = np.flatnonzero(one)[np.argmin((c.s_p90 + c.d_p90)[one])]
        idd = np.flatnonzero(one)[np.argmin(c.d_p90[one])]
        if c.s_p90[it] + c.d_p90[it] < best_t[0]:
            best_t = (float(c.s_p90[it] + c.d_p90[it]), (c, it))
        if c.d_p90[idd] < best_d[0]:
            best_d = (float(c.d_p90[idd]), (c, idd))
    for label, slo, (value, where) in (("TTFT", slo_ttft, best_t), ("TPOT", slo_tpot, best_d)):
        if where is not None and value > slo:
            c, i = where
            raise PerfModelError(
                f"--slo-{label.lower()} {slo:g} s is impossible: the best is {value:.3g} s at batch 1 on "
                f"{int(c.replica_gpus[i])}x {c.gpu} (TP{int(c.tp[i])} x PP{int(c.pp[i])}, "
                f"{c.weight_dtype[i]}/{c.kv_dtype[i]})"
            )
