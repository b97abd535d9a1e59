"""A deployment: model + GPU + parallelism + precision + efficiency profile + cost mode.

Everything the cost functions need besides the workload shape, validated once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from perfmodel.errors import PerfModelError
from perfmodel.specs import dtypes
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

    @property
    def w_bytes(self) -> float:
        return dtypes.weight_bytes(self.weight_dtype)

    @property
    def kv_bytes(self) -> float:
        return dtypes.kv_bytes(self.kv_dtype)

    @property
    def compute_dtype(self) -> str:
        return dtypes.compute_dtype(self.weight_dtype)

    @property
    def replicas(self) -> int:
        """Data-parallel copies of the model: num_gpus / tp."""
        return self.num_gpus // self.tp

    def with_model(self, model: str | ModelSpec) -> Deployment:
        """Same hardware, profile and parallelism for another model (a draft or speculator)."""
        m = resolve_model(model)
        tp = self.tp
        if m.num_heads % tp:
            raise PerfModelError(
                f"tp={tp} does not divide the {m.num_heads} attention heads of {m.name}"
            )
        return replace(self, model=m)

    def describe(self) -> str:
        return (
            f"{self.model.name} on {self.num_gpus}x {self.gpu.name} (TP{self.tp}), "
            f"weights {self.weight_dtype}, KV {self.kv_dtype}, {self.mode}, profile {self.profile.name}"
        )


def make_deployment(
    model: str | ModelSpec,
    gpu: str | HardwareSpec = "h100",
    num_gpus: int = 1,
    tp: int | None = None,
    weight_dtype: str = "bf16",
    kv_dtype: str = "bf16",
    mode: str | None = None,
    profile: str | Profile | None = None,
    framework: str = "vllm",
) -> Deployment:
    """Validate and bundle a deployment (raises PerfModelError with one clear line)."""
    m = resolve_model(model)
    hw = resolve_gpu(gpu)
    if num_gpus < 1:
        raise PerfModelError(f"--num-gpus must be >= 1, got {num_gpus}")
    tp = num_gpus if tp is None else tp
    if tp < 1:
        raise PerfModelError(f"--tp must be >= 1, got {tp}")
    if num_gpus % tp:
        raise PerfModelError(f"--tp {tp} must divide --num-gpus {num_gpus}")
    if m.num_heads % tp:
        raise PerfModelError(
            f"--tp {tp} does not divide the {m.num_heads} attention heads of {m.name}"
        )
    if tp > 1 and hw.link_bandwidth <= 0:
        raise PerfModelError(
            f"{hw.name} has no interconnect (link_bandwidth_gbps 0): --tp {tp} needs one; "
            "use --tp 1"
        )
    dtypes.weight_bytes(weight_dtype)
    dtypes.kv_bytes(kv_dtype)
    prof = resolve_profile(profile, hw.name, framework)
    mode = mode or prof.mode
    if mode not in ("roofline", "additive"):
        raise PerfModelError(f"--mode must be roofline or additive, got '{mode}'")
    return Deployment(m, hw, prof, num_gpus, tp, weight_dtype.lower(), kv_dtype.lower(), mode)


def basis_label(dep: Deployment) -> str:
    """What a printed number rests on: modeled, with which profile and mode."""
    extra = f" ({dep.profile.note})" if dep.profile.note else ""
    return f"modeled: profile {dep.profile.name}, {dep.mode} mode{extra}"
