"""A deployment: model + GPU + parallelism + precision + efficiency profile + cost mode.

Everything the cost functions need besides the workload shape, validated once: including
the operator table the profile names, loaded when the deployment is made (never inside the
cost path).
Parallelism: num_gpus = tp * pp * dp on nodes of gpu.max_gpus_per_node GPUs; TP inside a
node, PP stages and DP replicas may cross nodes (pipeline.py places them).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from perfmodel.core import pipeline
from perfmodel.core.optable.load import Curves, profile_table
from perfmodel.errors import PerfModelError
from perfmodel.specs import dtypes, units
from perfmodel.specs.hardware import HardwareSpec, resolve_gpu
from perfmodel.specs.models import ModelSpec, resolve_model
from perfmodel.specs.profile import Profile, resolve_profile


@dataclass(frozen=True)
class Deployment:
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
    # the profile's operator table, loaded (None: the profile names none); not compared or
    # hashed: it is a function of profile.optable
    optable: Curves | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if bool(self.profile.optable) != (self.optable is not None):
            raise ValueError(
                f"profile {self.profile.name} names operator table '{self.profile.optable}' "
                "but the deployment holds another: build it with make_deployment()"
            )

    @property
    def w_bytes(self) -> float:
        return dtypes.weight_bytes(self.weight_dtype)

    @property
    def kv_bytes(self) -> float:
        return dtypes.kv_bytes(self.kv_dtype)

    @property
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
) -> Deployment:
    """Validate and bundle a deployment (raises PerfModelError with one clear line).

    tp defaults to num_gpus / pp; num_gpus must be a multiple of tp * pp (the rest is DP).
    weight_dtype None: the checkpoint's format (quantization_config), else bf16.
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
    if pp > 1:
        _check_pipeline_placement(hw, num_gpus, tp, pp)
    _check_expert_parallel(m, hw, num_gpus, tp, pp, ep)
    w, k = weight_dtype.lower(), kv_dtype.lower()
    return Deployment(m, hw, prof, num_gpus, tp, w, k, mode, pp, ep, optable=profile_table(prof))


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
            f"--ep {ep} must be a multiple of --tp {tp}, divide the {num_gpus // pp} GPUs of a "
            f"pipeline stage and the {m.num_experts} experts of {m.name}"
        )
    if ep > hw.max_gpus_per_node:
        raise PerfModelError(
            f"--ep {ep} spans more than one node of {hw.max_gpus_per_node} {hw.name} GPUs; "
            "multi-node expert parallelism is not modeled"
        )


def _check_pipeline_placement(hw: HardwareSpec, num_gpus: int, tp: int, pp: int) -> None:
    """TP stays inside a node; a pipeline that crosses nodes needs the GPU's node data."""
    per_node = hw.max_gpus_per_node
    if tp > per_node or (num_gpus > per_node and per_node % tp):
        raise PerfModelError(
            f"--tp {tp} must fit inside one node of {per_node} {hw.name} GPUs "
            f"(and divide {per_node} when the deployment spans nodes)"
        )
    crossings = pipeline.node_crossings(tp, pp, num_gpus // (tp * pp), per_node)
    if crossings and not hw.has_node_data:
        raise PerfModelError(
            f"{hw.name} has no inter-node network data (inter_node_bandwidth_gbps in its "
            f"hardware YAML): a pipeline over {pipeline.nodes_needed(num_gpus, per_node)} nodes "
            "cannot be costed"
        )


def basis_label(dep: Deployment) -> str:
    """What a printed number rests on: modeled, with which profile, mode and operator table."""
    extra = f" ({dep.profile.note})" if dep.profile.note else ""
    table = f", kernels from operator table {dep.profile.optable}" if dep.profile.optable else ""
    return f"modeled: profile {dep.profile.name}, {dep.mode} mode{table}{extra}"
