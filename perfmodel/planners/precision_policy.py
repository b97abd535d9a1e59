"""The one precision policy of recommend and capacity (stated in both outputs).

Quality first: (weights, KV) in the order bf16/bf16, fp8/bf16, fp8/fp8; int4 weights
(FALLBACK_PRECISIONS) only when no deployment at those precisions is feasible (fits and meets
the SLOs). Within one GPU type the deployment search tries the fallback only when nothing
else serves; across GPU types (rank_key) and in capacity's ranking (capacity.rank) a fallback
precision ranks after every feasible deployment at a quality precision.
"""

from __future__ import annotations

from perfmodel.planners.deployment_choice import DeploymentChoice

PRECISIONS: tuple[tuple[str, str], ...] = (("bf16", "bf16"), ("fp8", "bf16"), ("fp8", "fp8"))
FALLBACK_PRECISIONS: tuple[tuple[str, str], ...] = (("int4", "fp8"),)
PRECISION_POLICY = (
    "precision policy (recommend and capacity): quality first, bf16/bf16, fp8/bf16, fp8/fp8; "
    "int4/fp8 weights only when no deployment at those precisions serves the batch and meets "
    "the SLOs"
)


def last_resort(weight_dtype: str, kv_dtype: str) -> bool:
    """True for a fallback precision (int4 weights): ranked after every deployment at a
    quality precision, by recommend and capacity alike (PRECISION_POLICY)."""
    return (weight_dtype, kv_dtype) in FALLBACK_PRECISIONS


def rank_key(precisions, fallback_precisions):
    """The one precision policy across GPU types, as within one: a fallback precision (int4
    weights) ranks after every deployment at a quality precision, then cost per hour, cost
    per million output tokens, fewest GPUs, precision order, latency."""
    order = {p: i for i, p in enumerate(tuple(precisions) + tuple(fallback_precisions))}
    fallback = set(fallback_precisions)

    def key(c: DeploymentChoice):
        precision = order[(c.weight_dtype, c.kv_dtype)]
        fallback_first = (c.weight_dtype, c.kv_dtype) in fallback
        return (fallback_first, c.cost_per_hour, c.cost_per_mtok, c.num_gpus, precision, c.e2e_s)

    return key
