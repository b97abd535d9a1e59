"""What bound a recommended deployment's size, and its SLOs checked line by line.

binding_constraint compares the chosen deployment with the smallest one on the same GPU type
that merely fits (deployment_search without SLOs): the same size and precision means memory
bound it (or the layout the user pinned); a larger one, or the same size at another
precision (an SLO the fitting precision misses), means an SLO did, the one the smaller
deployment misses by the largest fraction (feasibility.slo_verdict, worst first).
"""

from __future__ import annotations

from typing import NamedTuple

from perfmodel.planners.deployment_search import DeploymentChoice
from perfmodel.planners.feasibility import Slos, slo_verdict


class Binding(NamedTuple):
    """What set the size of the chosen deployment: 'memory' (the batch needs that many GPUs
    to fit), an SLO ('slo_ttft', 'slo_tpot', 'slo_e2e': a smaller deployment that fits
    misses it), or 'pinned' (the user fixed the layout)."""

    constraint: str
    reason: str

    def as_dict(self) -> dict:
        return {"constraint": self.constraint, "reason": self.reason}


def slo_check(slos: Slos, d: DeploymentChoice) -> list[dict]:
    """Each SLO given against the chosen deployment's plain-serving time: every one holds
    (the search admitted only such deployments); printed so a reader can check."""
    values = {"ttft_s": d.ttft_s, "tpot_s": d.tpot_s, "e2e_s": d.e2e_s}
    return [
        {
            "slo": label,
            "option": option,
            "limit_s": lim,
            "value_s": values[a],
            "met": values[a] <= lim,
        }
        for a, label, option, lim in slos.items()
    ]


def binding_constraint(
    chosen: DeploymentChoice, memory_only: DeploymentChoice | None, slos: Slos, pinned: bool
) -> Binding:
    """Compare the choice with the smallest deployment that merely fits (same GPU type):
    the same size and precision -> memory binds; larger, or the same size at another
    precision -> the SLO the merely-fitting one misses by the most."""
    size = f"{chosen.num_gpus}x {chosen.gpu} ({chosen.precision})"
    miss = []
    if memory_only is not None and slos.given:
        miss = slo_verdict(slos, memory_only.ttft_s, memory_only.tpot_s, memory_only.e2e_s).reasons
    same_size = memory_only is None or memory_only.num_gpus >= chosen.num_gpus
    if same_size and not (miss and memory_only.precision != chosen.precision):
        what = "the layout you pinned" if pinned else "memory"
        return Binding(
            "pinned" if pinned else "memory",
            f"{what}: {size} is the smallest deployment on {chosen.gpu} that holds batch "
            f"{chosen.batch} ({chosen.memory_per_gpu_gb:.1f} of {chosen.capacity_gb:.1f} GB per "
            "GPU)" + ("; every SLO given is met there" if slos.given else ""),
        )
    # the search chose a larger deployment, or the same size at another precision: the
    # smallest one that merely fits misses an SLO
    worst = miss[0]
    how = ", the same size at another precision," if same_size else ""
    return Binding(
        worst.option.lstrip("-").replace("-", "_"),
        f"{worst.option}: the smallest deployment that fits, {memory_only.num_gpus}x "
        f"{memory_only.gpu} ({memory_only.precision}), misses it ({worst.message}); "
        f"{size}{how} is the cheapest that meets every SLO given",
    )
