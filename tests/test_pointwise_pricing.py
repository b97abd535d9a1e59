"""The speculation planners' joined pricing calls give, bit for bit, what separate calls give.

specprefill_times prices the target's kept-token and whole-prompt prefills in one call (and
the speculator's side and the baseline once per batch and prompt, not per keep rate),
evaluate_grid the target's self-speculation draft steps, plain step and verifications in one,
plan_specprefill reads the workload's batch, batch 1 (the default SLO) and max_qps's batches
from one sweep, and the specdecode section prices its point and the critical length's coarse
scan at once (price_passes, GridPasses.take): each point of a sweep is priced as on its own,
MoE models included (core.optable.price prices each point's experts at its own weight). Each is compared here with the separate calls it replaces (exact equality),
on deployments that take different pricing paths: a pipeline (pp 2), a measured table, a
table transferred to another GPU, the roofline (sliding-window layers), FP8; and with
prompts short enough that the kept tokens fall in decode-like attention.
"""

from __future__ import annotations

import numpy as np
import pytest

from perfmodel.core.cost import op_time
from perfmodel.core.deployment import make_deployment
from perfmodel.core.inference import decode_step_time, prefill_time
from perfmodel.planners.specdecode import (
    DEFAULT_GAMMAS,
    _best_speedup_at,
    coarse_contexts,
    critical_length,
    evaluate_grid,
    planner_configs,
    planner_policy,
    price_passes,
)
from perfmodel.planners.specprefill import max_qps, plan_specprefill, recommend_keep_rate
from perfmodel.planners.specprefill_cost import kept_tokens, scoring_op, specprefill_times
from perfmodel.planners.speculation.deploy import helper_deployment

KEEP = np.array([0.1, 0.3, 0.5, 0.8, 0.9])

DEPLOYMENTS = {  # name: (model, gpu, num_gpus, tp, weights, kv, pp)
    "405b-fp8-pp2": ("405b", "h100", 16, 8, "fp8", "fp8", 2),
    "70b-tp4": ("70b", "h100", 4, 4, "bf16", "bf16", 1),
    "8b-l40s": ("8b", "l40s", 1, 1, "bf16", "bf16", 1),
    "70b-mi300x": ("70b", "mi300x", 2, 2, "fp8", "bf16", 1),
    "gemma2-rtx4090": ("gemma2-9b", "rtx4090", 1, 1, "bf16", "bf16", 1),
}


def _deployment(name):
    model, gpu, n, tp, w, kv, pp = DEPLOYMENTS[name]
    return make_deployment(model, gpu, n, tp, w, kv, pp=pp)


def _same(a, b) -> None:
    a, b = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float))
    assert np.array_equal(a, b, equal_nan=True), np.nanmax(np.abs(a - b))


SWEEP = np.arange(1.0, 40.0)[:, None]  # max_qps's batches (B, 1) x keep rates (1, K)


@pytest.mark.parametrize("name", ["405b-fp8-pp2", "70b-tp4", "8b-l40s", "70b-mi300x"])
@pytest.mark.parametrize("batch, prompt", [(64, 32768), (3, 40), (1, 7), (SWEEP, 8192)])
def test_specprefill_times_as_separate_calls(name, batch, prompt):
    target = _deployment(name)
    spec = helper_deployment(target, "8b" if target.model.name != "Llama-3.1-8B" else "1b")
    keep = KEEP if np.ndim(batch) == 0 else KEEP[None, :]
    t = specprefill_times(target, spec, batch, prompt, keep)
    b, L, k = np.broadcast_arrays(np.asarray(batch, float), float(prompt), keep)
    _same(t.target_s, prefill_time(target, b, kept_tokens(L, k)))
    _same(t.baseline_s, prefill_time(target, b, L))
    _same(t.speculator_prefill_s, prefill_time(spec, b, L))
    _same(t.lookahead_s, 8.0 * decode_step_time(spec, b, L))
    prof = spec.profile
    score = op_time(scoring_op(spec, b, L, 8), spec.gpu, prof, "bf16", spec.mode).time_s
    _same(
        t.scoring_s, score + (prof.select_us_per_seq * b + prof.select_us_per_token * b * L) * 1e-6
    )


@pytest.mark.parametrize("name", list(DEPLOYMENTS))
def test_grid_target_passes_as_separate_calls(name):
    target = _deployment(name)
    configs = planner_configs(target)
    b, c = np.array([1.0, 16.0, 64.0]), np.array([300.0, 4096.0, 20000.0])
    grid = evaluate_grid(target, configs, b, c, acceptance_rate=planner_policy(0.7))
    t = grid.times
    _same(t.autoregressive_s[0, 0], decode_step_time(target, b, c, 1))
    for i, g in enumerate(grid.gammas):
        _same(t.verify_s[0, i], decode_step_time(target, b, c, g + 1.0))
    own = [i for i, cfg in enumerate(configs) if cfg.self_speculation]
    assert own  # the planners' configurations include self-speculation
    for i in own:
        step = decode_step_time(target, b, c, 1, kv_budget=configs[i].budget)
        _same(t.draft_s[i], grid.gammas[:, None] * step[None, :])


@pytest.mark.parametrize("name", ["405b-fp8-pp2", "70b-tp4", "8b-l40s"])
@pytest.mark.parametrize("batch, prompt", [(64, 32768), (2, 3000), (4000, 1024)])
def test_plan_reads_what_the_separate_planners_price(name, batch, prompt):
    target = _deployment(name)
    spec = helper_deployment(target, "8b" if target.model.name != "Llama-3.1-8B" else "1b")
    plan = plan_specprefill(target, spec, batch, prompt, KEEP)
    rec, times, _, ok = recommend_keep_rate(target, spec, batch, prompt, KEEP)
    for got, want in zip(plan.times, times, strict=True):
        _same(got, want)
    assert plan.best_keep_rate == rec and np.array_equal(plan.meets_quality, ok)
    assert plan.qps.slo_ttft_s == 2.0 * float(prefill_time(target, 1.0, float(prompt)))
    q = max_qps(target, spec, prompt, KEEP, plan.qps.slo_ttft_s, colocated=plan.colocated)
    assert (plan.qps.baseline_qps, plan.qps.baseline_batch) == q[:2]
    _same(plan.qps.specprefill_qps, q[2])
    _same(plan.qps.specprefill_batch, q[3])


def test_a_moe_sweep_prices_each_point_as_on_its_own():
    """An operator table prices a MoE model's expert GEMMs at each point's own weight (the
    experts its batch touches): batch 1 asked beside batch 64 costs what it costs alone (it
    was priced at batch 64's experts before, ~1.7x slower), and the joined grid equals the
    separate calls point by point."""
    moe = make_deployment("Mixtral-8x7B", "h100", 2, 2)
    assert moe.model.is_moe and moe.optable is not None
    b, c = np.array([1.0, 8.0, 64.0]), np.array([512.0, 8192.0, 2000.0])
    alone = [float(decode_step_time(moe, bi, ci, 1)) for bi, ci in zip(b, c, strict=True)]
    assert decode_step_time(moe, b, c, 1).tolist() == alone
    pre = [float(prefill_time(moe, bi, ci)) for bi, ci in zip(b, c, strict=True)]
    assert prefill_time(moe, b, c).tolist() == pre
    grid = evaluate_grid(moe, planner_configs(moe), b, c, acceptance_rate=0.7)
    _same(grid.times.autoregressive_s[0, 0], alone)
    for i, g in enumerate(grid.gammas):
        verify = [
            float(decode_step_time(moe, bi, ci, g + 1.0)) for bi, ci in zip(b, c, strict=True)
        ]
        _same(grid.times.verify_s[0, i], verify)


@pytest.mark.parametrize("name", ["405b-fp8-pp2", "8b-l40s", "gemma2-rtx4090"])
def test_grids_read_their_passes_from_one_joint_pricing(name):
    target = _deployment(name)
    configs, policy, batch, ctx = planner_configs(target), planner_policy(), 16, 5000.0
    coarse = coarse_contexts(target.model.max_position_embeddings)
    joint = price_passes(target, configs, batch, np.append(ctx, coarse))
    alone = evaluate_grid(target, configs, [batch], [ctx], acceptance_rate=policy)
    at_point = joint.take(range(len(configs)), [0])
    shared = evaluate_grid(target, configs, [batch], [ctx], acceptance_rate=policy, passes=at_point)
    for got, want in zip(shared.times, alone.times, strict=True):
        _same(got, want)
    compressed = [c for c in configs if c.method != "full"]
    scan = joint.take([configs.index(c) for c in compressed], slice(1, None))
    b = np.full(coarse.size, float(batch))
    args = (target, compressed, b, coarse, DEFAULT_GAMMAS, policy, False)
    _same(_best_speedup_at(*args, scan), _best_speedup_at(*args))
    crit = critical_length(target, compressed, [batch], acceptance_rate=policy)
    _same(
        critical_length(target, compressed, [batch], acceptance_rate=policy, coarse_passes=scan),
        crit,
    )
    with pytest.raises(ValueError, match="another grid"):
        evaluate_grid(target, configs, [batch], [ctx], acceptance_rate=policy, passes=scan)
