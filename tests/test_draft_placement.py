"""A draft whose heads the target's TP does not divide runs at its own TP (speculation.helper_tp):
the largest divisor of the target's TP that divides its heads, on that many of each TP
group's GPUs. Its time is that deployment's own, its memory its TP shard (checked by hand),
and specdecode / critical-length / min-acceptance say where it runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfmodel.core.deployment import make_deployment
from perfmodel.core.inference import decode_step_time
from perfmodel.core.memory import memory_report, weight_bytes_per_gpu
from perfmodel.planners.specdecode import evaluate_grid, specdecode_memory, specdecode_times
from perfmodel.planners.speculation.deploy import (
    FIRST_STAGE,
    describe_placement,
    helper_deployment,
    helper_placement,
    helper_tp,
)
from perfmodel.planners.speculation.drafts import draft_configs
from perfmodel.specs.models import list_models, resolve_model
from tests.conftest import run_cli

TARGET = ("Qwen2.5-72B", "h100", 8, 8)  # 64 heads: TP8
DRAFT = "Qwen2.5-7B"  # 28 attention heads, 4 KV heads: TP8 does not divide them


def test_qwen_7b_draft_beside_a_tp8_target_runs_at_tp4_on_half_of_each_group():
    target = make_deployment(*TARGET)
    draft = helper_deployment(target, DRAFT, "draft")
    assert (draft.tp, draft.num_gpus, draft.replicas, draft.pp) == (4, 4, 1, 1)
    assert helper_placement(target, draft) == FIRST_STAGE
    assert "4 of the target's 8 GPUs" in describe_placement(target, draft)
    # with two target replicas the draft has two too (one per TP group)
    two = helper_deployment(make_deployment("Qwen2.5-72B", "h100", 16, 8), DRAFT, "draft")
    assert (two.tp, two.num_gpus, two.replicas) == (4, 8, 2)
    # a draft the target's TP divides keeps it (unchanged placement)
    llama = helper_deployment(make_deployment("70b", "h100", 8, 8), "1b", "draft")
    assert (llama.tp, llama.num_gpus) == (8, 8)


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from(list_models()), tp=st.sampled_from([1, 2, 4, 8, 16]))
def test_helper_tp_is_the_largest_divisor_of_the_target_tp_that_fits_the_heads(name, tp):
    m = resolve_model(name)
    got = helper_tp(tp, m)
    assert tp % got == 0 and m.num_heads % got == 0
    if m.num_heads % tp == 0:
        assert got == tp
    else:
        kv = m.num_kv_heads
        bigger = [
            d
            for d in range(got + 1, tp)
            if tp % d == 0 and m.num_heads % d == 0 and (kv % d == 0 or d % kv == 0)
        ]
        assert bigger == []


def test_the_draft_cost_at_tp4_by_hand():
    """Draft time = gamma x one decode step of Qwen2.5-7B on its own TP4 deployment; its
    memory beside the target = its TP4 weight shard + its KV of min(budget, tokens) per
    sequence at 28 layers x 1 KV head per GPU (4 / 4) x 128 x 2 (K and V) x 2 bytes."""
    target = make_deployment(*TARGET)
    draft = helper_deployment(target, DRAFT, "draft")
    alone = make_deployment(DRAFT, "h100", 4, 4, "bf16", "bf16", profile=target.profile)
    batch, ctx, gamma, budget = 8.0, 8192.0, 3.0, 512.0
    t = specdecode_times(target, draft, batch, ctx, gamma, 2.0, kv_budget=budget)
    step = float(decode_step_time(alone, batch, ctx, 1, kv_budget=budget))
    assert float(t.draft_s) == pytest.approx(gamma * step, rel=1e-12)
    assert float(t.verify_s) == pytest.approx(float(decode_step_time(target, batch, ctx, 4.0)))

    kv_per_token = 28 * 1 * 128 * 2 * 2  # 14,336 bytes per token per GPU at TP4
    extra = weight_bytes_per_gpu(alone) + batch * min(budget, ctx) * kv_per_token
    with_draft = specdecode_memory(target, draft, batch, ctx, 0, budget)
    alone_target = memory_report(target, batch, ctx, 0)
    got = float(with_draft.total_gb - alone_target.total_gb) * 1e9
    assert got == pytest.approx(extra, rel=1e-9)


def test_the_grid_records_the_draft_tp():
    target = make_deployment(*TARGET)
    configs = draft_configs([DRAFT, "self"], "streamingllm:512", (512,))
    grid = evaluate_grid(target, configs, [8], [8192], [3], 0.8)
    assert grid.draft_tp == (4, 8)
    assert grid.record(0, 0, 0)["draft_tp"] == 4
    assert np.isfinite(grid.speedup).all()


def test_specdecode_critical_length_and_min_acceptance_place_the_draft_through_the_cli():
    common = ["--model", "Qwen2.5-72B", "--gpu", "h100", "--num-gpus", "8", "--draft", DRAFT]
    res = run_cli("specdecode", *common, "--batch", "8", "--prompt-len", "8k", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["draft_tp"] == 4 and out["tp"] == 8
    assert "runs on 4 of the target's 8 GPUs per TP group (TP4" in res.stderr
    alone = make_deployment(DRAFT, "h100", 4, 4, "bf16", "bf16", profile=out["profile"])
    step = float(decode_step_time(alone, 8.0, 8192.0, 1, kv_budget=512.0))
    assert out["t_draft_ms"] == pytest.approx(out["gamma"] * step * 1e3, rel=1e-9)
    for command, extra in (
        ("critical-length", ["--batch", "8"]),
        ("min-acceptance", ["--batch", "8", "--prompt-len", "32k"]),
    ):
        res = run_cli(command, *common, *extra)
        assert res.returncode == 0, res.stderr
        assert "does not divide" not in res.stdout + res.stderr.replace("do not divide", "")
        assert "(TP4: its 28 attention heads do not divide by TP8)" in res.stderr
