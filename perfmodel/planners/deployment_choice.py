"""Typed results of the deployment search (planners.deployment_search): one deployment with
its memory, latency and cost; one GPU type's answer; the whole search; and, when SLOs rule
every fitting deployment out, the nearest miss (NoFeasibleDeployment carries it, exit 2).

Built once and read, never compared or hashed: NamedTuples, like the speculation planners'
results (a frozen dataclass costs ~6 generated methods at import on Python 3.11)."""

from __future__ import annotations

from typing import NamedTuple

from perfmodel.core.basis import basis_by_class
from perfmodel.core.deployment import Deployment
from perfmodel.errors import PerfModelError
from perfmodel.specs.units import plural


class DeploymentChoice(NamedTuple):
    """One deployment that serves the requested batch, with its memory, latency and cost."""

    gpu: str
    nodes: int
    gpus_per_node: int
    num_gpus: int
    tp: int
    pp: int
    dp: int
    weight_dtype: str
    kv_dtype: str
    batch: int  # the requested batch, over all replicas
    batch_per_replica: int  # the largest replica's share: ceil(batch / dp)
    memory_per_gpu_gb: float
    capacity_gb: float
    ttft_s: float
    tpot_s: float
    e2e_s: float
    throughput_tok_s: float  # output tokens per second of the whole deployment
    price_per_gpu_hour: float
    cost_per_hour: float
    cost_per_mtok: float
    deployment: Deployment  # one replica's deployment (num_gpus = tp * ep/tp * pp)
    ep: int = 1  # expert parallelism (MoE): experts over ep GPUs, attention in ep/tp groups

    @property
    def precision(self) -> str:
        return f"{self.weight_dtype}/{self.kv_dtype}"

    def describe(self) -> str:
        par = f"TP{self.tp}" + (f" x EP{self.ep}" if self.ep > 1 else "")
        par += f" x PP{self.pp}" if self.pp > 1 else ""
        par += f" x DP{self.dp}" if self.dp > 1 else ""
        nodes = plural(self.nodes, "node")
        return (
            f"{self.num_gpus}x {self.gpu} ({nodes}, {par}), {self.precision}: "
            f"${self.cost_per_hour:.2f}/h, ${self.cost_per_mtok:.2f}/M output tokens"
        )

    def as_dict(self) -> dict:
        return {
            "basis_by_class": basis_by_class(self.deployment),
            "gpu": self.gpu,
            "nodes": self.nodes,
            "gpus_per_node": self.gpus_per_node,
            "num_gpus": self.num_gpus,
            "tp": self.tp,
            "pp": self.pp,
            "dp": self.dp,
            "ep": self.ep,
            "weight_dtype": self.weight_dtype,
            "kv_dtype": self.kv_dtype,
            "batch": self.batch,
            "batch_per_replica": self.batch_per_replica,
            "memory_per_gpu_gb": self.memory_per_gpu_gb,
            "capacity_gb": self.capacity_gb,
            "fits": True,
            "ttft_s": self.ttft_s,
            "tpot_s": self.tpot_s,
            "e2e_s": self.e2e_s,
            "throughput_tok_s": self.throughput_tok_s,
            "price_per_gpu_hour": self.price_per_gpu_hour,
            "cost_per_hour": self.cost_per_hour,
            "cost_per_mtok": self.cost_per_mtok,
        }


class NearMiss(NamedTuple):
    """The fitting candidate closest to meeting the SLOs, when none meets them: excess is
    max over the SLOs of value / limit - 1 (0.25: 25% over the worst-missed SLO)."""

    choice: DeploymentChoice
    excess: float
    reasons: tuple  # feasibility Reason per SLO missed, worst first

    def as_dict(self) -> dict:
        return {
            "deployment": self.choice.as_dict(),
            "excess": self.excess,
            "missed": [r.as_dict() for r in self.reasons],
        }


class NoFeasibleDeployment(PerfModelError):
    """No deployment meets the SLOs (exit 2); `nearest` is the best found and its miss."""

    def __init__(self, message: str, nearest: NearMiss | None):
        self.nearest = nearest
        super().__init__(message)


class GpuSearch(NamedTuple):
    """One GPU type's answer: its choice (None: none feasible), groups evaluated, why not,
    and the nearest SLO miss when SLOs ruled every fitting candidate out."""

    choice: DeploymentChoice | None
    groups: int
    why: str
    nearest: NearMiss | None = None


class SearchResult(NamedTuple):
    """The whole search: the choice, the best on each other type, the types skipped."""

    choice: DeploymentChoice  # on the requested GPU type (or the best type when none given)
    alternatives: tuple[DeploymentChoice, ...]  # best on each other type, best first
    skipped: tuple[str, ...]  # "gpu: why" for types with no deployment
    candidates: int  # (precision, tp, pp) groups whose memory was evaluated

    def as_dict(self) -> dict:
        return {
            "deployment": self.choice.as_dict(),
            "alternatives": [a.as_dict() for a in self.alternatives],
            "skipped": list(self.skipped),
        }
