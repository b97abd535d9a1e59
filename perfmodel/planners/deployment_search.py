"""Deployment search: the smallest deployment (GPU type, nodes, TP x PP x DP, precision)
that serves a requested batch, and the best one on each other GPU type.

Candidates, per GPU type with G = max_gpus_per_node GPUs per node (hardware YAML):
- ep (MoE models, nothing pinned): expert parallelism inside a node, ep = a multiple of tp
  dividing G and the experts (expert_parallel_layouts); a replica then has ep * pp GPUs;
- tp: divides G and the attention heads (TP stays inside a node);
- pp: 1 .. num_layers; a replica of tp * pp GPUs tiles nodes exactly (tp * pp divides G,
  or G divides tp * pp), so replicas never straddle nodes; a GPU type without inter-node
  data (no inter_node_bandwidth_gbps) keeps each replica inside one node;
- dp: data-parallel replicas; the batch is split over them, ceil(batch / dp) sequences on
  the largest replica, which paces the deployment; num_gpus = tp * pp * dp <= max_gpus;
- precision: (weights, KV) pairs in quality order (bf16/bf16, fp8/bf16, fp8/fp8); int4
  weights only when none of those fits on max_gpus GPUs (the rule recommend follows).
A candidate fits when core.memory.memory_report says so at its per-replica batch (the same
test predict prints; monotone in dp, so the smallest fitting dp is found by a binary search
of memory.first_fitting per (precision, tp, pp)). Choice per GPU type:
fewest GPUs, then the earlier precision, then the shortest request (TTFT + (output - 1) *
TPOT, core.inference at the per-replica batch); across GPU types (and the alternatives'
order): int4 weights last (the precision policy holds across types too), then cost per hour
of serving the batch, then cost per million output tokens, then fewest GPUs, then
precision, then latency.
Pins (recommend's --tp/--pp/--num-gpus): `tp` and `pp` fix those degrees (a fully pinned
layout need not tile nodes: make_deployment has validated it), `min_dp` is the fewest
replicas allowed; the rest is searched.
SLOs (feasibility.Slos: TTFT, TPOT, e2e of plain serving, no speculation): a candidate is
feasible when it fits and meets every SLO given; per (precision, tp, pp) the smallest such dp
is found in one vectorized request_times call over the dp values (from the smallest that
fits), so "fewest GPUs" becomes "fewest GPUs meeting the SLOs", and int4 weights are tried
only when no other precision is feasible. When nothing is, the candidate that misses its
SLOs by the smallest fraction (feasibility.worst_excess) is kept as the nearest miss.
cost_per_hour = num_gpus * price per GPU-hour (hardware YAML price_per_gpu_hour_usd unless
`prices` overrides, as capacity does); cost_per_mtok = cost_per_hour / (3600 * output
tokens per second) * 1e6, output tokens per second = batch * output_len / e2e.
"""

from __future__ import annotations

import numpy as np

from perfmodel.core.deployment import Deployment, make_deployment, topology_problem
from perfmodel.core.inference import RequestTimes, request_times
from perfmodel.core.memory import (
    first_fitting,
    memory_report,
    usable_bytes,
    weight_bytes_per_gpu,
)
from perfmodel.errors import PerfModelError
from perfmodel.planners.deployment_choice import (
    DeploymentChoice,
    GpuSearch,
    NearMiss,
    NoFeasibleDeployment,
    SearchResult,
)
from perfmodel.planners.feasibility.slo import Slos, slo_verdict
from perfmodel.planners.precision_policy import (
    FALLBACK_PRECISIONS,
    PRECISIONS,
    rank_key,
    tried_precisions,
)
from perfmodel.specs import dtypes
from perfmodel.specs.hardware import HardwareSpec, list_gpus, resolve_gpu
from perfmodel.specs.models import resolve_model
from perfmodel.specs.units import plural

MAX_GPUS = 64
NOT_SEARCHED = ("cpu-generic",)  # not an accelerator: never an alternative


def replica_layouts(
    hw: HardwareSpec,
    num_heads: int,
    num_layers: int,
    max_gpus: int,
    tp: int | None = None,
    pp: int | None = None,
    allow_cross_node_tp: bool = False,
):
    """(tp, pp) pairs a replica may use on this GPU type (module docstring rules); `tp`,
    `pp` keep only that degree (both given: exactly that layout, if the topology rule,
    core.deployment.topology_problem, places it on this type)."""
    if tp is not None and pp is not None:
        placeable = topology_problem(hw, tp * pp, tp, pp, allow_cross_node_tp) is None
        return [(tp, pp)] if tp * pp <= max_gpus and num_heads % tp == 0 and placeable else []
    per_node = hw.max_gpus_per_node
    out = []
    for t in range(1, per_node + 1):
        if tp is None or t == tp:
            out += [(t, p) for p in _stage_counts(hw, t, num_heads, num_layers, max_gpus, pp)]
    return out


def _stage_counts(hw, tp, num_heads, num_layers, max_gpus, only=None) -> list[int]:
    """PP degrees a replica of TP `tp` may use (module docstring rules)."""
    per_node = hw.max_gpus_per_node
    if per_node % tp or num_heads % tp:
        return []
    out = []
    for pp in range(1, min(num_layers, max_gpus // tp) + 1):
        size = tp * pp
        if size <= per_node:
            if per_node % size:
                continue
        elif size % per_node or not hw.has_node_data:
            continue
        if only is None or pp == only:
            out.append(pp)
    return out


def expert_parallel_layouts(hw: HardwareSpec, model, layouts, max_gpus: int):
    """(tp, pp, ep) for every (tp, pp) layout, plus for a MoE model its expert-parallel
    variants: ep = tp * a (a = 2, 3, ...) attention groups inside one node (ep divides the
    node and the experts), a replica of ep * pp GPUs tiling nodes like any other."""
    out = [(tp, pp, 1) for tp, pp in layouts]
    if not model.is_moe:
        return out
    per_node = hw.max_gpus_per_node
    for tp, pp in layouts:
        for ep in range(2 * tp, per_node + 1, tp):
            size = ep * pp
            tiles = per_node % size == 0 if size <= per_node else size % per_node == 0
            if per_node % ep == 0 and model.num_experts % ep == 0 and tiles and size <= max_gpus:
                out.append((tp, pp, ep))
    return out


def _smallest_dp(
    dep: Deployment, batch: int, prompt_len, output_len, lowest: int, max_dp: int
) -> int | None:
    """Fewest replicas (lowest .. max_dp) whose per-replica share of the batch fits in
    memory (None: none does): fits_in_memory's verdict, found by memory.first_fitting's
    binary search over the dp values (more replicas never need more memory). Exact shortcut: the total is the weights plus non-negative KV and activation
    bytes, so when the weights alone exceed the usable memory no dp fits."""
    dps = np.arange(lowest, min(max_dp, batch) + 1, dtype=float)
    if dps.size == 0 or weight_bytes_per_gpu(dep) > usable_bytes(dep):
        return None
    first = first_fitting(dep, np.ceil(batch / dps), prompt_len, output_len)
    return None if first is None else int(dps[first])


def _slo_dp(dep: Deployment, batch: int, prompt_len, output_len, lowest: int, max_dp: int, slos):
    """(smallest dp in lowest .. max_dp meeting every SLO or None, (excess, dp, times) of the
    dp nearest to meeting them); one vectorized request_times over the dp values."""
    dps = np.arange(lowest, min(max_dp, batch) + 1, dtype=float)
    if dps.size == 0:
        return None, None
    t = request_times(dep, np.ceil(batch / dps), prompt_len, output_len)
    values = {"ttft_s": t.ttft_s, "tpot_s": t.tpot_s, "e2e_s": t.e2e_s}
    excess = np.max([np.ravel(values[a]) / lim - 1.0 for a, _, _, lim in slos.items()], axis=0)
    ok = np.flatnonzero(excess <= 0)
    j = int(ok[0]) if ok.size else int(np.argmin(excess))
    one = RequestTimes(*(np.ravel(x)[j : j + 1] for x in (t.ttft_s, t.tpot_s, t.e2e_s)), None)
    near = (float(excess[j]), int(dps[j]), one)
    return (int(dps[ok[0]]) if ok.size else None), near


def _fitting(
    base: dict,
    hw,
    model,
    batch,
    prompt_len,
    output_len,
    precisions,
    max_gpus,
    pins=(None, None, 1),
    slos: Slos | None = None,
    allow_cross_node_tp: bool = False,
):
    """[(num_gpus, precision rank, tp, pp, dp, dep)]: the smallest fitting dp per (precision,
    tp, pp) group (with SLOs: the smallest that also meets them), the number of groups whose
    memory was evaluated, and the nearest SLO miss (excess, tp, pp, dp, dep, times) or None.

    Exact prunes: groups run from the smallest replica up, and one whose replica alone has
    more GPUs than the best deployment found so far cannot beat it; memory grows with the
    weight and KV bytes, so a precision needs at least as many replicas as any precision
    with no more bytes for both (a lower bound on dp), and none if that one fits nowhere.
    """
    tp_pin, pp_pin, min_dp = pins
    min_dp = min(min_dp, batch)  # a replica beyond one per sequence would serve nothing
    layouts = replica_layouts(
        hw, model.num_heads, model.num_layers, max_gpus, tp_pin, pp_pin, allow_cross_node_tp
    )
    if tp_pin is None and pp_pin is None and min_dp == 1:  # EP only where nothing is pinned
        layouts = expert_parallel_layouts(hw, model, layouts, max_gpus)
    else:
        layouts = [(tp, pp, 1) for tp, pp in layouts]
    layouts.sort(key=lambda lay: (max(lay[0], lay[2]) * lay[1], -lay[1], lay[2]))
    # leanest precisions first, so their results bound the others
    nbytes = [_nbytes(precision) for precision in precisions]
    order = sorted(range(len(precisions)), key=lambda i: nbytes[i])
    leaner = [[_leaner(a, b) for b in nbytes] for a in nbytes]  # [j][i]: j leaner than i
    found, groups, best, nearest = [], 0, max_gpus, None
    for tp, pp, ep in layouts:
        size = max(tp, ep) * pp
        if size > best:
            break
        done: dict[int, int | None] = {}  # precision index -> smallest dp (None: none fits)
        for i in order:
            w, k = precisions[i]
            lower = min_dp
            for j, dp_j in done.items():
                if leaner[j][i]:
                    lower = max(lower, dp_j if dp_j is not None else best + 1)
            if lower * size > best:
                done[i] = None
                continue
            dep = base[(w, k)].derived(num_gpus=size, tp=tp, pp=pp, ep=ep)
            groups += 1
            dp = _smallest_dp(dep, batch, prompt_len, output_len, lower, best // size)
            done[i] = dp  # the memory bound: valid for the leaner-precision prune
            if dp is not None and slos is not None and slos.given:
                dp, near = _slo_dp(dep, batch, prompt_len, output_len, dp, best // size, slos)
                if near is not None and (nearest is None or near[0] < nearest[0]):
                    nearest = (near[0], tp, pp, near[1], dep, near[2])
            if dp is not None:
                found.append((size * dp, i, tp, pp, dp, dep))
                best = min(best, size * dp)
    return found, groups, nearest


def _nbytes(precision: tuple[str, str]) -> tuple[float, float]:
    return (dtypes.weight_bytes(precision[0]), dtypes.kv_bytes(precision[1]))


def _leaner(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """True when a precision of (weight, KV) bytes `a` stores no more bytes than one of
    bytes `b`, for both weights and KV."""
    return a[0] <= b[0] and a[1] <= b[1]


def _choice(
    dep, tp, pp, dp, batch, prompt_len, output_len, price, t: RequestTimes
) -> DeploymentChoice:
    """The typed result for one deployment, its request times `t` already computed."""
    per_replica = -(-batch // dp)
    mem = memory_report(dep, per_replica, prompt_len, output_len).as_dict()
    e2e = float(np.ravel(t.e2e_s)[0])
    tok_s = batch * float(output_len) / e2e
    n = tp * dep.attn_dp * pp * dp
    per_node = dep.gpu.max_gpus_per_node
    cost = n * price
    return DeploymentChoice(
        gpu=dep.gpu.name,
        nodes=-(-n // per_node),
        gpus_per_node=per_node,
        num_gpus=n,
        tp=tp,
        pp=pp,
        dp=dp,
        weight_dtype=dep.weight_dtype,
        kv_dtype=dep.kv_dtype,
        batch=batch,
        batch_per_replica=per_replica,
        memory_per_gpu_gb=mem["total_gb"],
        capacity_gb=mem["capacity_gb"],
        ttft_s=float(np.ravel(t.ttft_s)[0]),
        tpot_s=float(np.ravel(t.tpot_s)[0]),
        e2e_s=e2e,
        throughput_tok_s=tok_s,
        price_per_gpu_hour=price,
        cost_per_hour=cost,
        cost_per_mtok=cost / (3600.0 * tok_s) * 1e6,
        deployment=dep,
        ep=dep.ep,
    )


def search_gpu(
    model,
    gpu,
    batch: int,
    prompt_len: int,
    output_len: int,
    *,
    precisions=PRECISIONS,
    fallback_precisions=FALLBACK_PRECISIONS,
    max_gpus: int = MAX_GPUS,
    profile=None,
    mode: str | None = None,
    price: float | None = None,
    tp: int | None = None,
    pp: int | None = None,
    min_dp: int = 1,
    slos: Slos | None = None,
    allow_cross_node_tp: bool = False,
) -> GpuSearch:
    """The cheapest (fewest GPUs) feasible deployment on one GPU type (module docstring):
    fits, and meets every SLO given; the nearest SLO miss when none does."""
    m = resolve_model(model)
    hw = resolve_gpu(gpu)
    price = hw.price_per_gpu_hour_usd if price is None else price
    groups, nearest = 0, None
    # a quantized checkpoint is served in its format (gpt-oss MXFP4, DeepSeek-V3 FP8)
    precisions, fallback_precisions = tried_precisions(
        m.checkpoint_format, precisions, fallback_precisions
    )
    for precs in (precisions, fallback_precisions):
        if not precs:
            continue
        base = {(w, k): make_deployment(m, hw, 1, 1, w, k, mode, profile, pp=1) for w, k in precs}
        found, n, near = _fitting(
            base,
            hw,
            m,
            batch,
            prompt_len,
            output_len,
            precs,
            max_gpus,
            (tp, pp, min_dp),
            slos,
            allow_cross_node_tp,
        )
        groups += n
        if near is not None and (nearest is None or near[0] < nearest[0]):
            nearest = near
        if not found:
            continue
        fewest = min(f[0] for f in found)
        best_rank = min(f[1] for f in found if f[0] == fewest)
        ties = [f for f in found if f[0] == fewest and f[1] == best_rank]
        timed = [(request_times(f[5], -(-batch // f[4]), prompt_len, output_len), f) for f in ties]
        t, f = min(timed, key=lambda tf: (float(np.ravel(tf[0].e2e_s)[0]), tf[1][3], tf[1][2]))
        choice = _choice(f[5], f[2], f[3], f[4], batch, prompt_len, output_len, price, t)
        return GpuSearch(choice, groups, "")
    if nearest is not None:
        excess, ntp, npp, ndp, ndep, nt = nearest
        near = _choice(ndep, ntp, npp, ndp, batch, prompt_len, output_len, price, nt)
        reasons = slo_verdict(slos, near.ttft_s, near.tpot_s, near.e2e_s).reasons
        why = (
            f"no deployment of up to {plural(max_gpus, hw.name + ' GPU')} meets the SLOs; "
            "nearest: "
            f"{near.describe()}, {reasons[0].message}"
        )
        return GpuSearch(None, groups, why, NearMiss(near, excess, reasons))
    why = f"batch {batch} x ({prompt_len}+{output_len}) tokens does not fit on up to "
    why += f"{plural(max_gpus, hw.name + ' GPU')} at any precision"
    if tp is not None or pp is not None or min_dp > 1:
        pins = [f"TP{tp}" if tp else "", f"PP{pp}" if pp else "", f"DP>={min_dp}" * (min_dp > 1)]
        why += f" with {' '.join(p for p in pins if p)}"
    if not hw.has_node_data:
        why += (
            f" inside one node ({hw.name} has no inter-node network data: "
            "inter_node_bandwidth_gbps in its hardware YAML)"
        )
    return GpuSearch(None, groups, why)


def search_deployments(
    model,
    batch: int,
    prompt_len: int,
    output_len: int,
    gpu: str | HardwareSpec | None = "h100",
    *,
    alternatives: list[str] | tuple[str, ...] | None = None,
    precisions=PRECISIONS,
    fallback_precisions=FALLBACK_PRECISIONS,
    max_gpus: int = MAX_GPUS,
    profile=None,
    mode: str | None = None,
    prices: dict[str, float] | None = None,
    tp: int | None = None,
    pp: int | None = None,
    min_dp: int = 1,
    slos: Slos | None = None,
    allow_cross_node_tp: bool = False,
) -> SearchResult:
    """The smallest deployment serving `batch` sequences of prompt_len + output_len tokens
    (with `slos`: the smallest that also meets every SLO given).

    `gpu` pins the type of the choice (None: the best of all types); `alternatives` are the
    other types to compare (default: every shipped GPU type except cpu-generic); tp, pp and
    min_dp pin the layout on every type (module docstring). Raises
    PerfModelError (one line) when the pinned type, or every type, has no deployment; with
    SLOs, NoFeasibleDeployment carrying the nearest miss.
    """
    if int(batch) != batch or batch < 1:
        raise PerfModelError(f"batch must be a positive integer, got {batch}")
    if prompt_len < 1 or output_len < 1:
        raise PerfModelError("prompt and output lengths must be positive")
    batch = int(batch)
    prices = prices or {}
    pinned = resolve_gpu(gpu) if gpu is not None else None
    names = (
        list(alternatives)
        if alternatives is not None
        else [g for g in list_gpus() if g not in NOT_SEARCHED]
    )
    types = [pinned] if pinned else []
    for hw in (resolve_gpu(a) for a in names):
        if all(hw.name != t.name for t in types):
            types.append(hw)
    found: dict[str, DeploymentChoice] = {}
    skipped, groups, nearest = [], 0, None
    for hw in types:
        r = search_gpu(
            model,
            hw,
            batch,
            prompt_len,
            output_len,
            precisions=precisions,
            fallback_precisions=fallback_precisions,
            max_gpus=max_gpus,
            profile=profile,
            mode=mode,
            price=prices.get(hw.name),
            tp=tp,
            pp=pp,
            min_dp=min_dp,
            slos=slos,
            allow_cross_node_tp=allow_cross_node_tp,
        )
        groups += r.groups
        if r.nearest is not None and (nearest is None or r.nearest.excess < nearest.excess):
            nearest = r.nearest
        if r.choice is None:
            if pinned is not None and hw.name == pinned.name:
                raise NoFeasibleDeployment(r.why, r.nearest) if r.nearest else PerfModelError(r.why)
            skipped.append(f"{hw.name}: {r.why}")
        else:
            found[hw.name] = r.choice
    if not found and nearest is not None:
        raise NoFeasibleDeployment(
            f"no deployment of up to {plural(max_gpus, 'GPU')} on "
            f"{', '.join(t.name for t in types)} "
            f"meets the SLOs; nearest: {nearest.choice.describe()}, "
            f"{nearest.reasons[0].message}",
            nearest,
        )
    if not found:
        raise PerfModelError(
            f"no deployment of up to {plural(max_gpus, 'GPU')} serves batch {batch} x "
            f"({prompt_len}+{output_len}) tokens on {', '.join(t.name for t in types)}"
        )
    fmt = resolve_model(model).checkpoint_format  # search_gpu's precisions for it
    order = tried_precisions(fmt, precisions, fallback_precisions)
    ranked = sorted(found.values(), key=rank_key(*order))
    choice = found[pinned.name] if pinned else ranked[0]
    others = tuple(c for c in ranked if c is not choice)
    return SearchResult(choice, others, tuple(skipped), groups)
