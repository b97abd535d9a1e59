"""Fleet sizing under TTFT/TPOT SLOs at a given request rate, and cost per token.

The cheapest candidate per GPU type (search.candidates_for_gpu; queueing formulas in
queueing.py), checked by a seeded simulation of one replica (simulate.py), which adds
replicas (up to MAX_SIM_EXTRA_REPLICAS) where the formulas were optimistic.

Ranking (the stated objective): meets both SLOs first, then cost per hour, then TTFT p90,
then TPOT (rank_key). Options are ranked after every adjustment: candidates are checked in
the formulas' order and the simulation can only add replicas (cost never falls), so the
formulas' (cost, TTFT, TPOT) is a lower bound on a candidate's checked key; checking stops
at the first candidate whose lower bound cannot beat the best checked one (branch and
bound, exact up to MAX_SIM_CANDIDATES checks). Each option says why it won (`why`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from perfmodel.core.basis import basis_by_class
from perfmodel.core.options import DeploymentPins
from perfmodel.errors import PerfModelError
from perfmodel.planners.capacity.queueing import (
    BINDING,
    UTILIZATION_TARGET,
    cost_per_mtok,
    load_metrics,
)
from perfmodel.planners.capacity.rank import (
    MAX_SIM_EXTRA_REPLICAS,
    best_checked,
    rank_key,
)
from perfmodel.planners.capacity.records import (
    CapacityOption,
    FeasibleCapacity,
    InfeasibleCapacity,
)
from perfmodel.planners.capacity.search import (
    PP_DEPTHS,
    Candidates,
    candidates_for_gpu,
    check_possible,
    fleet_cost,
    subset,
)
from perfmodel.planners.capacity.simulate import SIM_REQUESTS, simulate_replica
from perfmodel.planners.capacity.workload import Workload
from perfmodel.planners.critical import from_raw_array
from perfmodel.planners.precision_policy import PRECISION_POLICY
from perfmodel.planners.pricing_memo import decode_step_time, prefill_time, with_memo
from perfmodel.planners.specdecode import critical_length, planner_configs, planner_policy
from perfmodel.planners.speculation.acceptance import resolve_bases
from perfmodel.specs.dtypes import PRECISIONS
from perfmodel.specs.hardware import load_gpu
from perfmodel.specs.models import resolve_model

ASSUMPTIONS = (
    "Each replica (tp x pp GPUs, one model copy) alternates prefills of arriving requests (one "
    "request per pass, prefill first, no chunked prefill) and continuous-batching decode steps "
    "over at most B sequences.",
    "Utilization rho = lam * (S_prefill + O * D(B) / B) <= {util:g} per replica; D(B) is the "
    "decode step at the full batch B (an upper bound on the step at lighter load).",
    "TPOT = D(B) / (1 - rho_prefill): decode stalls while prefills run.",
    "TTFT p90 = S_prefill(L_p90) + D(B) + M/M/1 prefill-queue wait tail "
    "S/(1-rho_p) * max(0, ln(10 rho_p)).",
    "Requests are routed to replicas at random (each sees Poisson arrivals at QPS/replicas); a "
    "smarter load balancer does better, so fleet sizes are conservative.",
    "SLO checks use p90 prompt and output lengths, throughput uses their means, memory uses p90.",
    "TP in 1, 2, 4, 8 within one node, dividing the attention heads; PP stages per replica as "
    "the deployment search lays them out (replicas tile nodes; pipelines cross nodes only on "
    "GPU types with inter-node data), the {pp_depths} shallowest per TP that hold one p90 "
    "request; "
    "precision from bf16/bf16, "
    "fp8/bf16, fp8/fp8, int4/fp8 (weights/KV) unless fixed; options are ranked after the "
    "simulation check by the precision policy shared with recommend (int4 weights only when "
    "no other precision meets the SLOs), then cost per hour, then TTFT p90, then TPOT. A pipelined replica prefills one request at a time through all its "
    "stages (prefills of different requests do not overlap across stages: conservative for "
    "PP); its decode step is the pipeline round of core.pipeline.",
    "Cost = replicas x tp x pp GPUs x price per GPU-hour (hardware YAML price_per_gpu_hour_usd unless --prices); "
    "cost per million output tokens = cost per hour / (3600 x QPS x mean output) x 1e6.",
    "Check: a seeded discrete-event simulation of one replica ({n} Poisson requests, lengths "
    "drawn from the workload, first 10% dropped as warm-up) estimates p50/p90 TTFT and TPOT at "
    "the chosen fleet; where it misses an SLO, replicas are added (up to 8 more) until it meets "
    "it ('replicas_added_by_simulation').",
    "All times are modeled (cost model and efficiency profile named in 'profile'), not measured.",
)


@dataclass(frozen=True)
class CapacityPlan:
    model: str
    workload: Workload
    slo_ttft_s: float
    slo_tpot_s: float
    options: list[CapacityOption]
    curves: dict  # per option label: QPS grid and cost per hour; TTFT/TPOT vs batch
    assumptions: list[str]
    profile: str
    critical: dict | None = None

    def ranked(self) -> list[CapacityOption]:
        """The options in the objective's order (rank_key); the first wins if it meets both."""
        return sorted(self.options, key=rank_key)

    def why(self) -> str:
        """Why the winner won, against the runner-up option (another GPU type or speculation)."""
        ranked = self.ranked()
        if not ranked or not ranked[0].meets_slo:
            return "no option meets both SLOs"
        w = ranked[0]
        name = f"{w.gpu}{' with speculation' if w.with_spec else ''}"
        text = f"{name} wins: ${w.cost_per_hour:.2f}/h, the cheapest option that meets both SLOs"
        if len(ranked) > 1 and ranked[1].meets_slo:
            r = ranked[1]
            other = f"{r.gpu}{' with speculation' if r.with_spec else ''}"
            if r.cost_per_hour == w.cost_per_hour:
                text += (
                    f"; ties on cost with {other}, lower TTFT p90 ({w.ttft_s:.3g} s vs "
                    f"{r.ttft_s:.3g} s)"
                )
            else:
                text += f" (next: {other} at ${r.cost_per_hour:.2f}/h)"
        elif len(ranked) > 1:
            text += "; no other option meets both SLOs"
        return text + (f". {w.why}" if w.why else "")

    def as_dict(self) -> dict:
        ranked = self.ranked()
        options = [{**o.as_dict(), "rank": n + 1} for n, o in enumerate(ranked)]
        best = options[0] if options and options[0]["meets_slo"] else None
        return {
            "model": self.model,
            "workload": self.workload.as_dict(),
            "slo": {"ttft_s": self.slo_ttft_s, "tpot_s": self.slo_tpot_s},
            "options": options,
            "best": best,
            "why": self.why(),
            "objective": "meets both SLOs, then a quality precision before int4 weights, then "
            "cost per hour, then TTFT p90, then TPOT",
            "precision_policy": PRECISION_POLICY,
            "assumptions": self.assumptions,
            "profile": self.profile,
            "basis": f"modeled: profile {self.profile}; utilization-based queueing model "
            "checked by a seeded simulation" + _speculation_basis(best),
        }


def _speculation_basis(best: dict | None) -> str:
    """'; best option's MagicDec acceptance: assumed 0.8' where the best option speculates."""
    spec = (best or {}).get("speculation") or {}
    parts = []
    if "specprefill_keep_rate" in spec:
        parts.append(
            f"SpecPrefill keep {spec['specprefill_keep_rate']:g} (published LongBench quality)"
        )
    if "acceptance" in spec:
        parts.append(f"MagicDec acceptance {spec['acceptance']}")
    return "; best option: " + ", ".join(parts) if parts else ""


def _fleet(c: Candidates, i: int, wl: Workload, replicas: int) -> dict:
    """Candidate i served by `replicas` replicas (each sees QPS / replicas): fleet size,
    cost and the load metrics."""
    lam = wl.qps / replicas
    ttft, tpot, u = load_metrics(
        c.s_mean[i], c.s_p90[i], c.d_p90[i], c.d_mean[i], c.batch[i], wl.output_mean, lam
    )
    gpus = replicas * int(c.tp[i]) * int(c.pp[i])  # fleet cost = replicas x tp x pp x price
    cost = gpus * c.price
    return {
        "replicas": replicas,
        "gpus_needed": gpus,
        "nodes": -(-gpus // c.gpus_per_node),
        "cost_per_hour": cost,
        "cost_per_mtok": float(cost_per_mtok(cost, wl.qps, wl.output_mean)),
        "ttft_s": float(ttft),
        "tpot_s": float(tpot),
        "utilization": float(u),
    }


def _with_replicas(c: Candidates, opt: FeasibleCapacity, wl: Workload, replicas: int):
    """The same option served by `replicas` replicas (each sees QPS / replicas)."""
    return replace(opt, **_fleet(c, opt.index, wl, replicas))


def _sim_meets(sim: dict, slo_ttft_s: float, slo_tpot_s: float) -> bool:
    return bool(
        sim["stable"]
        and sim["ttft_p90_s"] is not None
        and sim["ttft_p90_s"] <= slo_ttft_s
        and (sim["tpot_p90_s"] or 0.0) <= slo_tpot_s
    )


def _option(c: Candidates, i: int | None, wl: Workload, with_spec: bool) -> CapacityOption:
    if i is None:
        return InfeasibleCapacity(
            c.gpu,
            with_spec,
            c.profile,
            "no TP x PP layout, precision and batch meets both SLOs and fits in memory",
        )
    lam_max = float(c.lam[i])
    replicas = max(1, int(math.ceil(wl.qps / lam_max - 1e-9)))  # a tiny QPS still needs one
    return FeasibleCapacity(
        gpu=c.gpu,
        with_spec=with_spec,
        meets_slo=True,
        profile=c.profile,
        weight_dtype=c.weight_dtype[i],
        kv_dtype=c.kv_dtype[i],
        tp=int(c.tp[i]),
        pp=int(c.pp[i]),
        gpus_per_node=c.gpus_per_node,
        batch=int(c.batch[i]),
        price_per_gpu_hour=c.price,
        qps_per_replica_max=lam_max,
        binding_constraint=BINDING[int(c.binding[i])],
        prefill_s=float(c.s_p90[i]),
        decode_step_s=float(c.d_p90[i]),
        speculation=c.spec[i],
        index=i,
        **_fleet(c, i, wl, replicas),
    )


@with_memo  # one memo per search: the speculator's and drafts' times are shared
def plan_capacity(
    pins: DeploymentPins,
    workload: Workload,
    slo_ttft_s: float,
    slo_tpot_s: float,
    gpus=("h100", "h200", "a100"),
    prices: dict[str, float] | None = None,
    with_spec: bool = False,
    precisions=None,
    util: float = UTILIZATION_TARGET,
    simulate: bool = True,
    max_quality_drop: float = 1.0,
    acceptance_rate: float | None = None,
) -> CapacityPlan:
    """Cheapest fleet per GPU type (and with speculation) meeting both SLOs at the QPS, for
    the model, mode and profile `pins` names (core.options.DeploymentPins, the record the CLI
    and the pages build). precisions: the (weights, KV) pairs searched; None = what pins
    fixes, else every pair as the checkpoint is served (DeploymentPins.precisions). The GPU
    types compared are `gpus`; the replica shape is searched per type."""
    model, profile, mode = pins.model, pins.profile, pins.mode
    if precisions is None:
        precisions = pins.precisions(resolve_model(model).checkpoint_format, PRECISIONS)
    for name, v in (("--slo-ttft", slo_ttft_s), ("--slo-tpot", slo_tpot_s)):
        if not (v is not None and np.isfinite(v) and v > 0):
            raise PerfModelError(f"{name} must be positive, got {v}")
    if not (np.isfinite(workload.qps) and workload.qps > 0):
        raise PerfModelError(f"--qps must be positive, got {workload.qps}")
    if not 0 < util <= 1:
        raise PerfModelError(f"--utilization (target per replica) must be in (0, 1], got {util}")
    hws = list({hw.name: hw for hw in (load_gpu(g) for g in gpus)}.values())  # aliases once
    if not hws:
        raise PerfModelError("--gpus: no GPU given")
    prices = prices or {}
    compared = [hw.name for hw in hws]
    for name in prices:
        if name not in compared:
            raise PerfModelError(
                f"--prices: {name} is not among the GPUs compared ({', '.join(compared)}); "
                "price only those, or add it to --gpus"
            )
    wl = workload
    prompt_samples = (
        wl.prompt_samples if wl.prompt_samples is not None else np.array([wl.prompt_mean])
    )
    output_samples = (
        wl.output_samples if wl.output_samples is not None else np.array([wl.output_mean])
    )
    samples = (prompt_samples, output_samples)
    sets: list[tuple[Candidates, bool]] = []
    for hw in hws:
        price = prices.get(hw.name, hw.price_per_gpu_hour_usd)
        # one search per GPU type: with speculation its plain rows are the plain set (the
        # same rows, in the same order, as a search without it) and the rest the speculative
        c = candidates_for_gpu(
            model,
            hw.name,
            wl,
            slo_ttft_s,
            slo_tpot_s,
            price,
            with_spec,
            profile,
            mode,
            precisions,
            util,
            max_quality_drop,
            acceptance_rate,
        )
        if not with_spec:
            sets.append((c, False))
            continue
        speculative = np.array([s is not None for s in c.spec])
        sets.append((subset(c, ~speculative), False))
        if speculative.any():
            sets.append((subset(c, speculative), True))
    check_possible([c for c, _ in sets], slo_ttft_s, slo_tpot_s)
    options, curves = [], {}
    qgrid = np.geomspace(wl.qps / 10, wl.qps * 10, 41)
    for c, spec in sets:

        def option(i, c=c, spec=spec):
            return _option(c, i, wl, spec)

        def check(i, c=c, spec=spec):
            return _checked(c, i, wl, spec, slo_ttft_s, slo_tpot_s, samples)

        opt, i = best_checked(c, wl, option, check if simulate else None)
        if i is not None:  # how its times are priced, per operator class (as recommend)
            dep = c.deps[(c.weight_dtype[i], c.kv_dtype[i], int(c.tp[i]), int(c.pp[i]))]
            opt = replace(opt, basis_by_class=basis_by_class(dep))
        options.append(opt)
        _, cost = fleet_cost(c, qgrid)
        label = f"{c.gpu}{' + spec' if spec else ''}"
        curves[label] = {
            "qps": qgrid.tolist(),
            "cost_per_hour": np.min(cost, axis=1).tolist(),
        }
        if i is not None:
            same = (
                (c.tp == c.tp[i])
                & (c.pp == c.pp[i])
                & np.array(
                    [
                        (w, k) == (c.weight_dtype[i], c.kv_dtype[i])
                        for w, k in zip(c.weight_dtype, c.kv_dtype, strict=True)
                    ]
                )
            )
            if spec:
                same &= np.array([s is not None for s in c.spec])
            curves[label].update(
                {
                    "batch": c.batch[same].tolist(),
                    "ttft_s": (c.s_p90 + c.d_p90)[same].tolist(),
                    "tpot_s": c.d_p90[same].tolist(),
                    "config": _config(int(c.tp[i]), int(c.pp[i]), c.weight_dtype[i], c.kv_dtype[i]),
                }
            )
    if with_spec:
        crit = _critical_curve(sets, options, acceptance_rate)
    else:
        crit = None
    assumptions = [a.format(util=util, n=SIM_REQUESTS, pp_depths=PP_DEPTHS) for a in ASSUMPTIONS]
    assumptions.append(f"Workload: {wl.source}.")
    if with_spec:
        assumptions.append(
            "With speculation: SpecPrefill at the planner's recommended keep rate (speculator on "
            "the same GPUs - the first pipeline stage's under PP - its weights and one "
            "full-prompt KV beside the target there) where it is faster; MagicDec's best "
            "draft/KV budget (256..4096)/gamma per batch where it is faster and fits (draft on "
            "the first stage's GPUs, or the target itself; acceptance from published data "
            "where it exists, else assumed)."
        )
    profiles = sorted({c.profile for c, _ in sets})
    options = sorted(options, key=rank_key)
    return CapacityPlan(
        sets[0][0].deps and next(iter(sets[0][0].deps.values())).model.name,
        wl,
        slo_ttft_s,
        slo_tpot_s,
        options,
        curves,
        assumptions,
        ", ".join(profiles),
        crit,
    )


def _config(tp: int, pp: int, w: str, k: str) -> str:
    """'TP8 fp8/fp8', 'TP8 x PP2 fp8/fp8'."""
    return f"TP{tp}" + (f" x PP{pp}" if pp > 1 else "") + f" {w}/{k}"


def _checked(c, i, wl, spec, slo_ttft_s, slo_tpot_s, samples) -> FeasibleCapacity:
    """Candidate i at the formulas' fleet, checked by the simulation: where the simulation
    misses an SLO (the utilization model ignores waiting for a free batch slot), replicas
    are added (at most MAX_SIM_EXTRA_REPLICAS) until it meets both."""
    opt = _option(c, i, wl, spec)
    sim = _simulate_option(c, opt, wl, *samples)
    first = opt.replicas
    while (
        not _sim_meets(sim, slo_ttft_s, slo_tpot_s)
        and opt.replicas < first + MAX_SIM_EXTRA_REPLICAS
    ):
        opt = _with_replicas(c, opt, wl, opt.replicas + 1)
        sim = _simulate_option(c, opt, wl, *samples)
    sim["meets_slo"] = _sim_meets(sim, slo_ttft_s, slo_tpot_s)
    return replace(
        opt,
        replicas_added_by_simulation=opt.replicas - first,
        meets_slo=sim["meets_slo"],
        simulation=sim,
    )


def _simulate_option(c: Candidates, opt: FeasibleCapacity, wl: Workload, prompts, outputs) -> dict:
    """Simulate one replica of the chosen option at QPS / replicas (plain step times; with
    speculation the modeled per-token decode time replaces the step at the full batch)."""
    i = opt.index
    dep = c.deps[(c.weight_dtype[i], c.kv_dtype[i], int(c.tp[i]), int(c.pp[i]))]
    b = int(c.batch[i])
    n = np.arange(1, b + 1, dtype=float)
    ctx = wl.prompt_mean + wl.output_mean / 2
    step = decode_step_time(dep, n, ctx)
    scale = c.d_mean[i] / float(step[-1]) if step[-1] > 0 else 1.0
    step = step * min(scale, 1.0)  # speculation: same relative gain at every batch
    s_ratio = c.s_mean[i] / float(prefill_time(dep, 1.0, wl.prompt_mean))

    def prefill(lengths):
        return prefill_time(dep, 1.0, lengths) * min(s_ratio, 1.0)

    return simulate_replica(wl.qps / opt.replicas, b, prefill, step, prompts, outputs)


def _critical_curve(sets, options, acceptance_rate) -> dict | None:
    """Critical sequence length vs batch from the MagicDec planner (the compressed-KV drafts
    of specdecode.planner_configs under specdecode.planner_policy), for the cheapest
    with-spec option's deployment (None when unavailable)."""
    spec_opts = [o for o in options if o.with_spec and o.meets_slo]
    if not spec_opts:
        return None
    o = min(spec_opts, key=lambda x: x.cost_per_hour)
    c = next(c for c, s in sets if s and c.gpu == o.gpu)
    dep = c.deps[(o.weight_dtype, o.kv_dtype, o.tp, o.pp)]
    batches = np.array([1, 4, 16, 64, 256], float)
    configs = [cfg for cfg in planner_configs(dep) if cfg.method != "full"]
    policy = planner_policy(acceptance_rate)
    bases = resolve_bases(dep, configs, [1.0], policy)
    configs = [cfg for cfg, b in zip(configs, bases, strict=True) if b.ranked]
    if not configs:
        return None
    crit = critical_length(dep, configs, batches, acceptance_rate=policy)
    answers = from_raw_array(crit, batches, dep.model.max_position_embeddings)
    labels = sorted({b.label for b in bases if b.ranked})
    return {
        "gpu": o.gpu,
        "config": _config(o.tp, o.pp, o.weight_dtype, o.kv_dtype),
        "batch": batches.tolist(),
        "critical_seq_len": [a.tokens for a in answers],
        "pays_at_every_context": [a.pays_at_every_context for a in answers],
        "critical_seq_len_text": [a.text() for a in answers],
        "acceptance": ", ".join(labels),
        "drafts": sorted({cfg.label for cfg in configs})[:6],
    }
