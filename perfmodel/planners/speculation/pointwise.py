"""When a planner may put several pricing questions of one deployment in one call.

core.inference prices the points of a sweep one by one: elementwise arithmetic, table
look-ups and per-point branches, so each point's time is the time a call of its own gives.
One exception: an operator table prices a MoE model's router and expert GEMMs at the largest
expert weight bytes of the whole call (core.optable.price._pass_scalar_tp), so there a
point's time depends on the points priced beside it. The speculation planners join their
passes into one call (one fixed cost instead of several) only where no answer changes:
priced_pointwise. tests/test_pointwise_pricing.py compares joined and separate calls.
"""

from __future__ import annotations

from perfmodel.core.deployment import Deployment


def priced_pointwise(*deps: Deployment) -> bool:
    """Whether each point of a sweep on these deployments is priced as if on its own (every
    model dense: no MoE expert GEMM priced at the call's largest weight)."""
    return not any(dep.model.is_moe for dep in deps)
