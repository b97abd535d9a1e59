"""Ranking of capacity options by the stated objective, after the simulation check.

Objective (rank_key): meets both SLOs first, then the precision policy shared with recommend
(deployment_search.PRECISION_POLICY: int4 weights only when no quality precision is
feasible), then cost per hour, then TTFT p90, then TPOT.
Candidates of one GPU type are checked (simulated, replicas added where the formulas were
optimistic) in the order of their formula key; the simulation can only add replicas, so a
candidate's formula (cost, TTFT, TPOT) is a lower bound on its checked key (equal when no
replica is added, a strictly higher cost otherwise). best_checked stops at the first
candidate whose bound cannot beat the best checked option: branch and bound, exact up to
MAX_SIM_CANDIDATES checks. why_option says why the winner won.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from perfmodel.planners.capacity.queueing import load_metrics
from perfmodel.planners.capacity.search import Candidates, fleet_cost
from perfmodel.planners.capacity.workload import Workload
from perfmodel.planners.precision_policy import last_resort
from perfmodel.specs.units import plural

MAX_SIM_EXTRA_REPLICAS = 8  # replicas the simulation check may add to one candidate
MAX_SIM_CANDIDATES = 64  # candidates checked by simulation per GPU type (branch and bound)


def rank_key(o) -> tuple:
    """The objective: meets both SLOs, then a quality precision before int4 weights
    (last_resort), then cost per hour, then TTFT p90, then TPOT."""
    inf = float("inf")

    def v(x):
        return inf if x is None else float(x)

    fallback = last_resort(o.weight_dtype, o.kv_dtype)
    return (not o.meets_slo, fallback, v(o.cost_per_hour), v(o.ttft_s), v(o.tpot_s))


def label(o) -> str:
    return f"{o.weight_dtype}/{o.kv_dtype} TP{o.tp} batch {o.batch}"


def formula_keys(c: Candidates, wl: Workload) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cost per hour, TTFT p90, TPOT) of every candidate at the formulas' fleet (inf where
    infeasible): the lower bound of its key after the simulation check."""
    replicas, cost = (x[0] for x in fleet_cost(c, wl.qps))
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = np.where(np.isfinite(replicas), wl.qps / replicas, 0.0)
    ttft, tpot, _ = load_metrics(c.s_mean, c.s_p90, c.d_p90, c.d_mean, c.batch, wl.output_mean, lam)
    ok = np.isfinite(cost)
    return cost, np.where(ok, ttft, np.inf), np.where(ok, tpot, np.inf)


def best_checked(c: Candidates, wl: Workload, option: Callable, check: Callable | None) -> tuple:
    """(the best option of one candidate set by rank_key, its candidate index or None).
    option(i): candidate i at the formulas' fleet (i None: the infeasible record);
    check(i): candidate i after the simulation check (None: no simulation)."""
    cost, ttft, tpot = formula_keys(c, wl)
    feasible = int(np.isfinite(cost).sum())
    if feasible == 0:
        return option(None), None
    fallback = np.array(
        [last_resort(w, k) for w, k in zip(c.weight_dtype, c.kv_dtype, strict=True)], bool
    )
    order = np.lexsort((tpot, ttft, cost, fallback, ~np.isfinite(cost)))[:feasible]
    if check is None:
        i = int(order[0])
        opt = option(i)
        why = (
            f"cheapest of {feasible} feasible candidates on {c.gpu} by the queueing formulas "
            f"(${opt.cost_per_hour:.2f}/h; no simulation check)"
        )
        return replace(opt, why=why), i
    best, best_i, checked = None, None, []
    for i in order[:MAX_SIM_CANDIDATES]:
        bound = (False, bool(fallback[i]), float(cost[i]), float(ttft[i]), float(tpot[i]))
        if best is not None and best.meets_slo and bound >= rank_key(best):
            break
        opt = check(int(i))
        checked.append((opt, float(cost[i])))
        if best is None or rank_key(opt) < rank_key(best):
            best, best_i = opt, int(i)
    why = why_option(best, checked, feasible, c.gpu)
    return replace(best, why=why), best_i


def why_option(best, checked: list, feasible: int, gpu: str) -> str:
    """Why this candidate won its set: the objective, who lost to the simulation, the
    runner-up, and how many candidates were checked."""
    head = (
        f"{label(best)} is the cheapest of {feasible} feasible candidates on {gpu} that meets "
        f"both SLOs after the simulation check: ${best.cost_per_hour:.2f}/h "
        f"({plural(best.gpus_needed, 'GPU')})"
        if best.meets_slo
        else f"no candidate on {gpu} meets both SLOs in the simulation with up to "
        f"{MAX_SIM_EXTRA_REPLICAS} extra replicas; the closest is {label(best)}"
    )
    parts = [head]
    beaten = [
        (o, f)
        for o, f in checked
        if o is not best and f <= best.cost_per_hour and rank_key(o) > rank_key(best)
        and (o.replicas_added_by_simulation or not o.meets_slo)
    ]  # fmt: skip
    for o, f in beaten[:2]:
        parts.append(
            f"{label(o)} was as cheap or cheaper by the formulas (${f:.2f}/h) but "
            + (
                f"the simulation added {plural(o.replicas_added_by_simulation, 'replica')} "
                f"(${o.cost_per_hour:.2f}/h)"
                if o.meets_slo
                else "misses the SLOs in the simulation"
            )
        )
    others = sorted((o for o, _ in checked if o is not best), key=rank_key)
    if others and others[0].meets_slo and best.meets_slo:
        r = others[0]
        if r.cost_per_hour == best.cost_per_hour:
            parts.append(
                f"ties on cost with {label(r)}; lower TTFT p90 ({best.ttft_s:.3g} s vs "
                f"{r.ttft_s:.3g} s)"
            )
    parts.append(
        f"{plural(len(checked), 'candidate')} simulated; no other can do better (by the "
        "formulas each "
        "costs at least as much, and the simulation only adds replicas)"
        if len(checked) < min(feasible, MAX_SIM_CANDIDATES)
        else f"{plural(len(checked), 'candidate')} simulated"
    )
    return "; ".join(parts)
