"""The answers of the capacity planner per GPU type: a feasible fleet (every figure known)
or an infeasible GPU type (with the reason), two record types instead of one with optional
fields. `perfmodel capacity --json` lists their as_dict() under `options`."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FeasibleCapacity:
    """The cheapest fleet of one GPU type (with or without speculation) among candidates that
    fit in memory and meet both SLOs by the queueing formulas; meets_slo says whether the
    simulation check agreed. The JSON record of `perfmodel capacity` is as_dict()."""

    gpu: str
    with_spec: bool
    meets_slo: bool
    profile: str
    weight_dtype: str
    kv_dtype: str
    tp: int
    pp: int  # pipeline stages per replica
    gpus_per_node: int
    nodes: int  # ceil(gpus_needed / gpus_per_node)
    replicas: int  # data-parallel replicas (DP) of tp * pp GPUs
    gpus_needed: int
    batch: int
    price_per_gpu_hour: float
    cost_per_hour: float
    cost_per_mtok: float
    ttft_s: float
    tpot_s: float
    utilization: float
    qps_per_replica_max: float
    binding_constraint: str
    prefill_s: float
    decode_step_s: float
    speculation: dict | None  # None: plain decoding
    index: int = field(repr=False)  # the candidate's row
    replicas_added_by_simulation: int | None = None  # None: no simulation check
    simulation: dict | None = None
    why: str | None = None  # why this candidate won its GPU type (rank_key)
    # operator class -> how its times are priced (core.basis), as recommend gives it
    basis_by_class: dict | None = None

    def as_dict(self) -> dict:
        out = {
            k: getattr(self, k)
            for k in (
                "gpu", "with_spec", "meets_slo", "weight_dtype", "kv_dtype", "tp", "pp",
                "gpus_per_node", "nodes", "replicas", "gpus_needed", "batch", "price_per_gpu_hour", "cost_per_hour", "cost_per_mtok",
                "ttft_s", "tpot_s", "utilization", "qps_per_replica_max", "binding_constraint",
                "prefill_s", "decode_step_s", "speculation", "profile", "why", "basis_by_class",
            )
        }  # fmt: skip
        if self.simulation is not None:
            out["replicas_added_by_simulation"] = self.replicas_added_by_simulation
            out["simulation"] = self.simulation
        return out


@dataclass(frozen=True)
class InfeasibleCapacity:
    """A GPU type (with or without speculation) with no candidate that fits and meets both
    SLOs; `reason` says why. It has no fleet: its fleet fields read None (last in rank_key)."""

    gpu: str
    with_spec: bool
    profile: str
    reason: str
    meets_slo: bool = field(default=False, init=False)
    # no fleet: the ranking and JSON fields a feasible option has, all None
    cost_per_hour: None = field(default=None, init=False, repr=False)
    ttft_s: None = field(default=None, init=False, repr=False)
    tpot_s: None = field(default=None, init=False, repr=False)
    why: None = field(default=None, init=False, repr=False)
    # no precision either: rank_key's precision policy (last_resort) reads None
    weight_dtype: None = field(default=None, init=False, repr=False)
    kv_dtype: None = field(default=None, init=False, repr=False)

    def as_dict(self) -> dict:
        """The fields a user can read; the fleet's are null."""
        none = dict.fromkeys(("tp", "pp", "nodes", "replicas", "gpus_needed", "batch"))
        return {
            "gpu": self.gpu,
            "with_spec": self.with_spec,
            "meets_slo": False,
            **none,
            **dict.fromkeys(("cost_per_hour", "cost_per_mtok", "ttft_s", "tpot_s")),
            "reason": self.reason,
            "profile": self.profile,
            "why": None,
            "basis_by_class": None,
        }


CapacityOption = FeasibleCapacity | InfeasibleCapacity
