"""Capacity planner: fleet size and cost per GPU type under TTFT/TPOT SLOs.

workload (inputs) -> search (candidates, vectorized) -> queueing (closed-form per-replica
formulas) -> plan (cheapest option, simulation check, curves) with simulate (the check).
"""

from perfmodel.planners.capacity.plan import (
    ASSUMPTIONS,
    MAX_SIM_EXTRA_REPLICAS,
    CapacityOption,
    CapacityPlan,
    FeasibleCapacity,
    InfeasibleCapacity,
    plan_capacity,
)
from perfmodel.planners.capacity.queueing import (
    BINDING,
    UTILIZATION_TARGET,
    cost_per_mtok,
    fleet,
    load_metrics,
    replica_rate,
    wait_p90,
)
from perfmodel.planners.capacity.search import (
    BATCH_GRID,
    TP_CHOICES,
    Candidates,
    candidates_for_gpu,
    fleet_cost,
    spec_decode_service,
    spec_prefill_service,
)
from perfmodel.planners.capacity.simulate import SIM_REQUESTS, SIM_SEED, simulate_replica
from perfmodel.planners.capacity.workload import (
    Workload,
    check_qps,
    fixed_workload,
    load_workload,
    parse_prices,
)
from perfmodel.specs.dtypes import PRECISIONS

__all__ = [
    "ASSUMPTIONS",
    "BATCH_GRID",
    "BINDING",
    "MAX_SIM_EXTRA_REPLICAS",
    "PRECISIONS",
    "SIM_REQUESTS",
    "SIM_SEED",
    "TP_CHOICES",
    "UTILIZATION_TARGET",
    "Candidates",
    "CapacityOption",
    "CapacityPlan",
    "FeasibleCapacity",
    "InfeasibleCapacity",
    "Workload",
    "candidates_for_gpu",
    "check_qps",
    "cost_per_mtok",
    "fixed_workload",
    "fleet",
    "fleet_cost",
    "load_metrics",
    "load_workload",
    "parse_prices",
    "plan_capacity",
    "replica_rate",
    "simulate_replica",
    "spec_decode_service",
    "spec_prefill_service",
    "wait_p90",
]
