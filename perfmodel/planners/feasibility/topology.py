"""Topology: where a layout can be placed, as a typed reason (the rule itself lives in
core.deployment.topology_problem, which make_deployment enforces: TP inside one node; across
nodes only with --allow-cross-node-tp, then priced over the inter-node network and
labelled)."""

from __future__ import annotations

from perfmodel.core.deployment import Deployment, cross_node_tp_label, topology_problem
from perfmodel.planners.feasibility.reasons import TOPOLOGY, Reason, Verdict
from perfmodel.specs.hardware import HardwareSpec

CROSS_NODE_TP_OPTION = "--allow-cross-node-tp"


def topology_verdict(
    hw: HardwareSpec, num_gpus: int, tp: int, pp: int = 1, allow_cross_node_tp: bool = False
) -> Verdict:
    """Infeasible with the placement rule's one line; a permitted TP across nodes is labelled."""
    problem = topology_problem(hw, num_gpus, tp, pp, allow_cross_node_tp)
    if problem:
        option = CROSS_NODE_TP_OPTION if "--allow-cross-node-tp" in problem else None
        return Verdict((Reason(TOPOLOGY, problem, float(hw.max_gpus_per_node), float(tp), option),))
    if tp > hw.max_gpus_per_node:
        return Verdict(labels=(cross_node_tp_label(hw),))
    return Verdict()


def deployment_topology(dep: Deployment) -> Verdict:
    """The verdict of an already built deployment (labels only: make_deployment refused the
    rest)."""
    return Verdict(labels=(cross_node_tp_label(dep.gpu),)) if dep.tp_spans_nodes else Verdict()
