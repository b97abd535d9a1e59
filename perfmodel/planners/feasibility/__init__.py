"""The feasibility layer: one check under every planner, command, report and dashboard page.

Nothing prints a latency for a deployment that has not passed it. Each rule lives in one
module and returns a typed Verdict (reasons.py: Reason(kind, message, limit, value, option),
empty reasons = feasible, labels = what runs only because the user asked for it):

- topology (topology.py; rule in core.deployment.topology_problem): TP inside one node; TP
  across nodes only with --allow-cross-node-tp, then priced over the inter-node network and
  labelled;
- context window (context.py): prompt + output <= the model's window, else refused naming the
  limit; --beyond-context models it anyway, labelled;
- memory (memory.py): weights + KV + activations + helper models on the GPUs that hold them;
- SLOs (slo.py): TTFT, TPOT, e2e, each <= its limit when given;
- outputs (outputs.py): an output path is never an input, has the right extension, and is
  written atomically. Only the commands that write a file need it: they import
  feasibility.outputs themselves, so a command that writes nothing does not load it.

API for callers (CLI commands, app pages, reports):

    from perfmodel.planners import feasibility as fz
    options = DeploymentOptions(model="70b", gpu="h100", num_gpus=8, weight_dtype="bf16")
    dep, verdict = fz.check_request(options, batch, prompt_len, output_len,
                                    beyond_context=False, slos=fz.Slos(tpot_s=0.02))
    if not verdict.ok:      # show verdict.reasons (typed), or verdict.require() -> exit 2
        ...
    # dep is None when the topology is refused; verdict.labels go beside every number.

    fz.context_verdict(model_spec, prompt, output, beyond_context).require()
    fz.memory_verdict(dep, batch, prompt, output, extra_bytes=helper_bytes)
    fz.slo_verdict(fz.Slos(...), ttft_s, tpot_s, e2e_s)
    from perfmodel.planners.feasibility.outputs import check_output_path, write_atomic
    check_output_path(out, "--out", (".yaml", ".yml"), {"--measurements": csv})
    write_atomic(out, text)

Bad input (an unknown model, a negative batch) still raises PerfModelError before any check.
"""

from __future__ import annotations

from perfmodel.core.deployment import Deployment
from perfmodel.core.inference import request_times
from perfmodel.core.options import DeploymentOptions
from perfmodel.planners.feasibility.context import (
    BEYOND_OPTION,
    context_verdict,
    within_context,
)
from perfmodel.planners.feasibility.memory import memory_verdict
from perfmodel.planners.feasibility.reasons import (
    CONTEXT,
    MEMORY,
    OUTPUT,
    SLO,
    TOPOLOGY,
    InfeasibleError,
    Reason,
    Verdict,
)
from perfmodel.planners.feasibility.slo import Slos, slo_verdict, worst_excess
from perfmodel.planners.feasibility.topology import (
    CROSS_NODE_TP_OPTION,
    deployment_topology,
    topology_verdict,
)
from perfmodel.specs.hardware import resolve_gpu
from perfmodel.specs.models import resolve_model

__all__ = [
    "BEYOND_OPTION",
    "CONTEXT",
    "CROSS_NODE_TP_OPTION",
    "MEMORY",
    "OUTPUT",
    "SLO",
    "TOPOLOGY",
    "InfeasibleError",
    "Reason",
    "Slos",
    "Verdict",
    "check_deployment",
    "check_request",
    "context_verdict",
    "deployment_topology",
    "memory_verdict",
    "slo_verdict",
    "topology_verdict",
    "within_context",
    "worst_excess",
]


def check_deployment(
    dep: Deployment,
    batch,
    prompt_len,
    output_len,
    *,
    beyond_context: bool = False,
    slos: Slos | None = None,
    times=None,
    extra_bytes=0.0,
    helper: str = "",
) -> Verdict:
    """Every check of a built deployment: context window, memory (with a helper's
    extra_bytes), SLOs (from `times`, a core.inference.RequestTimes; computed only when SLOs
    are given, the request fits and the context is allowed), plus the labels of a permitted
    cross-node TP or beyond-window request. Scalars or arrays; SLOs need scalars."""
    verdict = context_verdict(dep.model, prompt_len, output_len, beyond_context)
    verdict += deployment_topology(dep)
    verdict += memory_verdict(dep, batch, prompt_len, output_len, extra_bytes, helper)
    if slos is not None and slos.given and verdict.ok:
        t = times or request_times(dep, batch, prompt_len, output_len)
        verdict += slo_verdict(
            slos, float(t.ttft_s.flat[0]), float(t.tpot_s.flat[0]), float(t.e2e_s.flat[0])
        )
    return verdict


def check_request(
    options: DeploymentOptions,
    batch,
    prompt_len,
    output_len,
    *,
    beyond_context: bool = False,
    slos: Slos | None = None,
) -> tuple[Deployment | None, Verdict]:
    """Build the deployment `options` names (core.options.DeploymentOptions, the record every
    command and page builds) and check it: (deployment or None when its topology is refused,
    verdict). Raises PerfModelError only for bad input (unknown names, values that no
    deployment could have); every infeasibility comes back as a typed reason."""
    o = options
    m, hw = resolve_model(o.model), resolve_gpu(o.gpu)
    t = o.num_gpus // o.pp if o.tp is None else o.tp
    topo = topology_verdict(hw, o.num_gpus, t, o.pp, o.allow_cross_node_tp)
    ctx = context_verdict(m, prompt_len, output_len, beyond_context)
    if not topo.ok:
        return None, topo + ctx
    dep = o.deployment(m, hw)
    verdict = check_deployment(
        dep, batch, prompt_len, output_len, beyond_context=beyond_context, slos=slos
    )
    return dep, verdict
