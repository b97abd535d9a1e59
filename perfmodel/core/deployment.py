"""A deployment: model + GPU + parallelism + precision + efficiency profile + cost mode.

Everything the cost functions need besides the workload shape, validated once: including
the operator table the profile names, loaded when the deployment is made (never inside the
cost path).
Parallelism: num_gpus = tp * pp * dp on nodes of gpu.max_gpus_per_node GPUs; TP inside a
node, PP stages and DP replicas may cross nodes (pipeline.py places them).

Topology rule (topology_problem, the one place it is decided): a TP group stays inside one
node. TP across nodes only when the caller asks for it (allow_cross_node_tp, the CLI's
--allow-cross-node-tp): then tp must be a multiple of the node size, the GPU type must have
inter-node data, and every TP all-reduce is priced over the inter-node network (tp_link:
bandwidth inter_node_bandwidth_gbps per GPU, plus inter_node_latency_us per call; a ring
all-reduce runs at the pace of its slowest hop) and labelled in describe() and basis_label.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import NamedTuple

import numpy as np

from perfmodel.core import pipeline
from perfmodel.core.optable.load import Curves, profile_table
from perfmodel.errors import PerfModelError
from perfmodel.specs import dtypes, units
from perfmodel.specs.hardware import HardwareSpec, resolve_gpu
from perfmodel.specs.models import ModelSpec, resolve_model
from perfmodel.specs.profile import Profile, resolve_profile


@dataclass(frozen=True)
class Deployment:
    """Model, GPU, parallelism, precision, profile and cost mode (module docstring). The
    derived quantities the cost path reads many times (bytes per element, compute dtype, TP
    across nodes) are computed once per record (cached properties: not fields, so
    `replace` builds a record that computes its own; a frozen record's fields never
    change)."""

    model: ModelSpec
    gpu: HardwareSpec
    profile: Profile
    num_gpus: int = 1
    tp: int = 1
    weight_dtype: str = "bf16"
    kv_dtype: str = "bf16"
    mode: str = "additive"
    pp: int = 1  # pipeline stages per replica
    ep: int = 1  # expert parallelism: MoE experts spread over ep GPUs (a multiple of tp)
    allow_cross_node_tp: bool = False  # the user asked for TP across nodes (see module doc)

    @cached_property
    def tp_spans_nodes(self) -> bool:
        """True when one TP group spans nodes (only possible when asked for)."""
        tp = self.tp if isinstance(self.tp, int) else np.max(self.tp)
        return bool(tp > self.gpu.max_gpus_per_node)

    # the profile's operator table, loaded (None: the profile names none); not compared or
    # hashed: it is a function of profile.optable
    optable: Curves | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if bool(self.profile.optable) != (self.optable is not None):
            raise ValueError(
                f"profile {self.profile.name} names operator table '{self.profile.optable}' "
                "but the deployment holds another: build it with make_deployment()"
            )

    @cached_property
    def w_bytes(self) -> float:
        return dtypes.weight_bytes(self.weight_dtype)

    @cached_property
    def kv_bytes(self) -> float:
        return dtypes.kv_bytes(self.kv_dtype)

    @cached_property
    def compute_dtype(self) -> str:
        return dtypes.compute_dtype(self.weight_dtype, tuple(self.gpu.peak_tflops))

    @property
    def attn_dp(self) -> int:
        """Attention groups of tp GPUs inside one expert-parallel group (ep / tp; 1 without
        EP): each runs attention on its share of the replica's sequences."""
        return self.ep // self.tp if self.ep > 1 else 1

    @property
    def replicas(self) -> int:
        """Data-parallel copies of the model: num_gpus / (tp * attn_dp * pp)."""
        return self.num_gpus // (self.tp * self.attn_dp * self.pp)

    @property
    def dp(self) -> int:
        return self.replicas

    @property
    def gpus_per_node(self) -> int:
        return self.gpu.max_gpus_per_node

    @property
    def nodes(self) -> int:
        return pipeline.nodes_needed(self.num_gpus, self.gpus_per_node)

    @property
    def node_crossings(self) -> int:
        """Stage boundaries between nodes in the worst replica (0 without PP)."""
        if self.pp == 1:
            return 0
        return pipeline.node_crossings(self.tp, self.pp, self.dp, self.gpus_per_node)

    def derived(
        self,
        *,
        model: ModelSpec | None = None,
        num_gpus: int | None = None,
        tp: int | None = None,
        pp: int | None = None,
        ep: int | None = None,
    ) -> Deployment:
        """dataclasses.replace(self, ...) of the fields given (None: kept), the same record
        built directly: replace walks every field first, twice the cost, and a search
        derives hundreds (its layouts, their pipeline stages). No validation beyond
        __post_init__'s, as replace: the caller has placed the layout."""
        return Deployment(
            self.model if model is None else model,
            self.gpu,
            self.profile,
            self.num_gpus if num_gpus is None else num_gpus,
            self.tp if tp is None else tp,
            self.weight_dtype,
            self.kv_dtype,
            self.mode,
            self.pp if pp is None else pp,
            self.ep if ep is None else ep,
            self.allow_cross_node_tp,
            optable=self.optable,
        )

    def with_model(self, model: str | ModelSpec) -> Deployment:
        """Same hardware, profile and parallelism for another model (a draft or speculator)."""
        m = resolve_model(model)
        tp = self.tp
        if m.num_heads % tp:
            raise PerfModelError(
                f"tp={tp} does not divide the {m.num_heads} attention heads of {m.name}"
            )
        pipeline.stage_layers(m.num_layers, self.pp)
        return replace(self, model=m)

    def describe(self) -> str:
        par = parallel_label(self.tp, self.pp, self.replicas, self.ep)
        where = f", {units.plural(self.nodes, 'node')}" if self.nodes > 1 else ""
        if self.tp_spans_nodes:
            where += f", {cross_node_tp_label(self.gpu)}"
        return (
            f"{self.model.name} on {self.num_gpus}x {self.gpu.name} ({par}{where}), "
            f"weights {self.weight_dtype}, KV {self.kv_dtype}, {self.mode}, profile {self.profile.name}"
        )


def parallel_label(tp: int, pp: int = 1, dp: int = 1, ep: int = 1) -> str:
    """'TP8', 'TP1 x DP3', 'TP4 EP4 x PP2 x DP2': every parallel degree above 1, DP included
    (a header without it reads as one replica of all the GPUs)."""
    parts = [f"TP{tp}" + (f" EP{ep}" if ep > 1 else "")]
    parts += [f"PP{pp}"] * (pp > 1) + [f"DP{dp}"] * (dp > 1)
    return " x ".join(parts)


MODES = ("roofline", "additive")
MAX_GPUS = 1 << 16  # GPUs of one deployment: 65536, past the largest clusters built


def make_deployment(
    model: str | ModelSpec,
    gpu: str | HardwareSpec = "h100",
    num_gpus: int = 1,
    tp: int | None = None,
    weight_dtype: str | None = "bf16",
    kv_dtype: str = "bf16",
    mode: str | None = None,
    profile: str | Profile | None = None,
    framework: str = "vllm",
    pp: int = 1,
    ep: int = 1,
    allow_cross_node_tp: bool = False,
) -> Deployment:
    """Validate and bundle a deployment (raises PerfModelError with one clear line).

    tp defaults to num_gpus / pp; num_gpus must be a multiple of tp * pp (the rest is DP).
    weight_dtype None: the checkpoint's format (quantization_config), else bf16.
    TP across nodes is refused unless allow_cross_node_tp (topology_problem).
    """
    m = resolve_model(model)
    weight_dtype = weight_dtype or m.checkpoint_format or "bf16"
    hw = resolve_gpu(gpu)
    if num_gpus < 1:
        raise PerfModelError(f"--num-gpus must be >= 1, got {num_gpus}")
    for option, value in (("--num-gpus", num_gpus), ("--tp", tp), ("--pp", pp)):
        if value is not None and value > MAX_GPUS:
            raise PerfModelError(
                f"{option} {value} is more than {MAX_GPUS} GPUs, beyond any cluster modeled"
            )
    pipeline.stage_layers(m.num_layers, pp)
    if num_gpus % pp:
        raise PerfModelError(f"--pp {pp} must divide --num-gpus {num_gpus}")
    tp_given = tp is not None
    tp = num_gpus // pp if tp is None else tp
    if tp < 1:
        raise PerfModelError(f"--tp must be >= 1, got {tp}")
    if num_gpus % (tp * pp):
        what = f"--tp {tp} x --pp {pp}" if pp > 1 else f"--tp {tp}"
        raise PerfModelError(f"{what} must divide --num-gpus {num_gpus}")
    if m.num_heads % tp:
        given = f"--tp {tp}" if tp_given else f"--tp {tp} (from --num-gpus {num_gpus})"
        raise PerfModelError(
            f"{given} does not divide the {m.num_heads} attention heads of {m.name}"
        )
    if tp > 1 and hw.link_bandwidth <= 0:
        raise PerfModelError(
            f"{hw.name} has no interconnect (link_bandwidth_gbps 0): --tp {tp} needs one; "
            "use --tp 1"
        )
    dtypes.weight_bytes(weight_dtype)
    dtypes.kv_bytes(kv_dtype)
    prof = resolve_profile(profile, hw.name, framework)
    mode = prof.mode if mode is None else units.choice(mode, MODES, "--mode")
    problem = topology_problem(hw, num_gpus, tp, pp, allow_cross_node_tp)
    if problem:
        raise PerfModelError(problem)
    _check_expert_parallel(m, hw, num_gpus, tp, pp, ep)
    w, k = weight_dtype.lower(), kv_dtype.lower()
    spans = allow_cross_node_tp and tp > hw.max_gpus_per_node
    return Deployment(
        m, hw, prof, num_gpus, tp, w, k, mode, pp, ep, spans, optable=profile_table(prof)
    )


def _check_expert_parallel(m: ModelSpec, hw: HardwareSpec, num_gpus, tp, pp, ep) -> None:
    """EP needs a MoE model, a multiple of tp that divides the GPUs of a stage, inside one
    node (the all-to-all is priced over the GPU link; multi-node EP is not modeled)."""
    if ep == 1:
        return
    if ep < 1:
        raise PerfModelError(f"--ep must be >= 1, got {ep}")
    if not m.is_moe:
        raise PerfModelError(f"--ep {ep} needs a MoE model: {m.name} has no routed experts")
    if ep % tp or (num_gpus // pp) % ep or m.num_experts % ep:
        raise PerfModelError(
            f"--ep {ep} must be a multiple of --tp {tp}, divide the "
            f"{units.plural(num_gpus // pp, 'GPU')} of a pipeline stage and the "
            f"{m.num_experts} experts of {m.name}"
        )
    if ep > hw.max_gpus_per_node:
        raise PerfModelError(
            f"--ep {ep} spans more than one node of "
            f"{units.plural(hw.max_gpus_per_node, hw.name + ' GPU')}; "
            "multi-node expert parallelism is not modeled"
        )


def topology_problem(
    hw: HardwareSpec, num_gpus: int, tp: int, pp: int = 1, allow_cross_node_tp: bool = False
) -> str | None:
    """Why this layout cannot be placed (one line naming the option), or None.

    TP stays inside a node of max_gpus_per_node GPUs (and divides it when the deployment
    spans nodes, so no TP group straddles two nodes); TP across nodes only when asked for,
    as a whole number of nodes on a GPU type with inter-node data. Anything that crosses
    nodes (TP, PP stages, DP replicas of one deployment) needs that data to be priced.
    """
    per_node = hw.max_gpus_per_node
    nodes = pipeline.nodes_needed(num_gpus, per_node)
    if tp > per_node:
        if not allow_cross_node_tp:
            return (
                f"--tp {tp} spans {-(-tp // per_node)} nodes of "
                f"{units.plural(per_node, hw.name + ' GPU')}: "
                "tensor parallelism stays inside one node (use --tp <= "
                f"{per_node} with --pp to cross nodes, or --allow-cross-node-tp to price TP "
                "over the inter-node network)"
            )
        if tp % per_node:
            return (
                f"--tp {tp} across nodes must be a multiple of the "
                f"{units.plural(per_node, hw.name + ' GPU')} "
                "of a node"
            )
        if not hw.has_node_data:
            return (
                f"{hw.name} has no inter-node network data (inter_node_bandwidth_gbps in its "
                f"hardware YAML): TP{tp} across nodes cannot be costed"
            )
        return None
    if nodes > 1 and per_node % tp:
        return (
            f"--tp {tp} must divide the {units.plural(per_node, hw.name + ' GPU')} of a node "
            "when the deployment spans nodes (a TP group may not straddle two nodes)"
        )
    crossings = pipeline.node_crossings(tp, pp, max(num_gpus // (tp * pp), 1), per_node)
    if crossings and not hw.has_node_data:
        return (
            f"{hw.name} has no inter-node network data (inter_node_bandwidth_gbps in its "
            f"hardware YAML): a pipeline over {nodes} nodes cannot be costed"
        )
    return None


class TpLink(NamedTuple):
    """The link a TP all-reduce runs over: bandwidth per GPU (B/s), latency added per call
    (s) on top of the profile's comm_latency_us, and its label."""

    bandwidth: float
    extra_latency_s: float
    label: str


def tp_link(dep: Deployment) -> TpLink:
    """NVLink/PCIe inside a node; the inter-node network when TP spans nodes (asked for)."""
    hw = dep.gpu
    if dep.tp_spans_nodes:
        return TpLink(hw.inter_node_bandwidth, hw.inter_node_latency_s, cross_node_tp_label(hw))
    return TpLink(hw.link_bandwidth, 0.0, hw.link_kind)


def cross_node_tp_label(hw: HardwareSpec) -> str:
    """How a TP group across nodes is priced, for every printed line about it."""
    return (
        "TP across nodes (asked for): all-reduce over the inter-node network at "
        f"{hw.inter_node_bandwidth_gbps:g} GB/s per GPU"
    )


def basis_label(dep: Deployment) -> str:
    """What a printed number rests on: modeled, with which profile, mode and operator table."""
    extra = f" ({dep.profile.note})" if dep.profile.note else ""
    if dep.tp_spans_nodes:
        extra += f"; {cross_node_tp_label(dep.gpu)}"
    table = f", kernels from operator table {dep.profile.optable}" if dep.profile.optable else ""
    return f"modeled: profile {dep.profile.name}, {dep.mode} mode{table}{extra}"
