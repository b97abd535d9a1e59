"""Capacity queueing formulas against hand-computed values (planners/capacity/queueing.py).

Replica with S = 0.1 s prefill, D = 0.02 s decode step, OUT = 100 output tokens.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from perfmodel.core.options import DeploymentPins
from perfmodel.planners.capacity.plan import plan_capacity
from perfmodel.planners.capacity.queueing import (
    BINDING,
    fleet,
    load_metrics,
    replica_rate,
    wait_p90,
)
from perfmodel.planners.capacity.workload import fixed_workload

S, D, OUT = 0.1, 0.02, 100.0


def test_utilization_binds():
    # lam_u = 0.8 / (0.1 + 100 * 0.02 / 10) = 0.8 / 0.3; TPOT and TTFT allow more
    lam, binding = replica_rate(S, S, D, D, 10, OUT, 10.0, 0.05, 0.8)
    assert float(lam) == pytest.approx(0.8 / 0.3, rel=1e-12)
    assert BINDING[int(binding)] == "utilization"
    _, _, util = load_metrics(S, S, D, D, 10, OUT, lam)
    assert float(util) == pytest.approx(0.8, rel=1e-12)


def test_tpot_binds():
    # TPOT = D / (1 - lam S) <= 0.025  ->  lam = (1 - 0.02 / 0.025) / 0.1 = 2.0
    lam, binding = replica_rate(S, S, D, D, 100, OUT, 10.0, 0.025, 1.0)
    assert float(lam) == pytest.approx(2.0, rel=1e-12)
    assert BINDING[int(binding)] == "TPOT SLO"
    ttft, tpot, util = load_metrics(S, S, D, D, 100, OUT, 2.0)
    assert float(tpot) == pytest.approx(0.025, rel=1e-12)
    # utilization 2 * (0.1 + 100 * 0.02 / 100) = 0.24
    assert float(util) == pytest.approx(0.24, rel=1e-12)
    # TTFT p90 = S + D + S / (1 - 0.2) * ln(10 * 0.2) = 0.12 + 0.125 ln 2
    assert float(ttft) == pytest.approx(0.12 + 0.125 * math.log(2.0), rel=1e-12)


def test_ttft_tail_binds():
    # at rho_p = 0.5 the M/M/1 p90 wait is 0.1 / 0.5 * ln 5; make that the SLO's room
    slo = S + D + 0.2 * math.log(5.0)
    lam, binding = replica_rate(S, S, D, D, 100, OUT, slo, 1.0, 1.0)
    assert BINDING[int(binding)] == "TTFT SLO"
    assert float(lam) == pytest.approx(5.0, rel=1e-6)  # rho_p = lam * S = 0.5


def test_wait_tail_is_zero_below_one_tenth_load():
    # P(W > 0) = rho <= 0.1 already: the 90th percentile wait is 0
    assert float(wait_p90(S, 0.1)) == 0.0
    assert float(wait_p90(S, 0.05)) == 0.0
    assert float(wait_p90(S, 0.9)) == pytest.approx(0.1 / 0.1 * math.log(9.0), rel=1e-12)


def test_fleet_cost_by_hand():
    # QPS 10 over replicas of at most 8/3 req/s: ceil(3.75) = 4 replicas of TP4 at $3/GPU-h
    replicas, gpus, cost, per_mtok = fleet(0.8 / 0.3, 4, 3.0, 10.0, OUT)
    assert float(replicas) == 4 and float(gpus) == 16
    assert float(cost) == pytest.approx(48.0)
    # $48/h over 3600 s * 10 req/s * 100 tokens = 3.6e6 tokens per hour
    assert float(per_mtok) == pytest.approx(48.0 / 3.6, rel=1e-12)
    # an exact multiple is not rounded up; an infeasible candidate costs inf
    assert float(fleet(2.0, 1, 1.0, 8.0, OUT)[0]) == 4
    assert np.isinf(fleet(0.0, 1, 1.0, 8.0, OUT)[2])


def test_plan_options_follow_the_formulas():
    pins = DeploymentPins("8b")
    plan = plan_capacity(pins, fixed_workload(6, 2048, 256), 2.0, 0.05, ("h100",), simulate=False)
    o = plan.as_dict()["options"][0]
    assert o["meets_slo"]
    assert o["replicas"] == math.ceil(6 / o["qps_per_replica_max"] - 1e-9)
    assert o["gpus_needed"] == o["replicas"] * o["tp"]
    assert o["cost_per_hour"] == pytest.approx(o["gpus_needed"] * o["price_per_gpu_hour"])
    assert o["cost_per_mtok"] == pytest.approx(o["cost_per_hour"] / (3600 * 6 * 256) * 1e6)
    ttft, tpot, util = load_metrics(
        o["prefill_s"],
        o["prefill_s"],
        o["decode_step_s"],
        o["decode_step_s"],
        o["batch"],
        256.0,
        6 / o["replicas"],
    )
    assert o["ttft_s"] == pytest.approx(float(ttft)) and o["ttft_s"] <= 2.0
    assert o["tpot_s"] == pytest.approx(float(tpot)) and o["tpot_s"] <= 0.05
    assert o["utilization"] == pytest.approx(float(util)) and o["utilization"] <= 0.8 + 1e-9
