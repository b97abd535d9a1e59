"""Hardware specifications: one YAML file per device in hardware_specs/, validated on load.

Units inside the model are SI: FLOP/s, bytes, bytes/s, seconds. The YAML stores datasheet
units (TFLOPS = 1e12 FLOP/s, TB/s = 1e12 B/s, GB/s = 1e9 B/s, GB = 1e9 B) and this module is
the one place that converts them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from perfmodel.errors import PerfModelError, suggest
from perfmodel.paths import HARDWARE_DIR
from perfmodel.specs import inputs, yamlio
from perfmodel.specs.dtypes import PEAK_DTYPES

DTYPE_NAMES = PEAK_DTYPES


class HardwareSpec(BaseModel):
    """Datasheet figures of one accelerator (dense, not 2:4-sparse, peak rates)."""

    # strict: no string numbers or string booleans; finite numbers only; the upper bounds
    # are sanity limits (10-100x today's largest parts), so a typo fails instead of planning
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)

    name: str = Field(min_length=1, pattern=r"\S")
    aliases: list[str] = Field(default_factory=list)
    vendor: str
    architecture: str = ""  # GPU family (hopper, ampere, ada, ...): tables transfer within one
    description: str = ""
    peak_tflops: dict[str, float]  # dense peak per compute dtype, 1e12 FLOP/s
    hbm_capacity_gb: float = Field(gt=0, le=100_000)  # true bytes / 1e9 (80 GiB = 85.9 GB)
    hbm_bandwidth_tbps: float = Field(gt=0, le=1_000)  # 1e12 B/s
    link_kind: str  # intra-node (scale-up) link: NVLink, PCIe, Infinity Fabric, none
    # intra-node, per direction, per GPU, 1e9 B/s
    link_bandwidth_gbps: float = Field(ge=0, le=1_000_000)
    # intra-node hop latency: pipeline point-to-point transfers inside a node (the TP
    # all-reduce latency per call is the profile's fitted comm_latency_us, which includes it)
    link_latency_us: float = Field(default=5.0, ge=0, le=1e6)
    # False: the driver gives no GPU-to-GPU access (GeForce): collectives go through host memory
    peer_to_peer: bool = True
    # latency of one ring step of an all-reduce where measured (None: the profile's comm latency)
    allreduce_step_latency_us: float | None = Field(default=None, ge=0, le=1e6)
    tdp_w: float = Field(gt=0, le=1e6)
    price_per_gpu_hour_usd: float = Field(gt=0, le=1e6)
    max_gpus_per_node: int = Field(default=8, ge=1, le=1 << 16)  # GPUs per node (HGX/DGX: 8)
    # inter-node (scale-out) network, per GPU: None = no node data (no multi-node search)
    inter_node_kind: str = ""
    # per direction, 1e9 B/s
    inter_node_bandwidth_gbps: float | None = Field(default=None, gt=0, le=1_000_000)
    inter_node_latency_us: float | None = Field(default=None, ge=0, le=1e6)
    sources: dict[str, str]  # field name -> URL or document the figure was read from

    @field_validator("peak_tflops")
    @classmethod
    def _known_dtypes(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = set(value) - set(DTYPE_NAMES)
        if unknown:
            raise ValueError(f"unknown dtype(s) {sorted(unknown)}; use {DTYPE_NAMES}")
        if "bf16" not in value:
            raise ValueError("bf16 peak is required")
        if any(not 0 < v <= 1e7 for v in value.values()):
            raise ValueError("peak TFLOPS must be positive and at most 1e7")
        return value

    @model_validator(mode="after")
    def _node_data_complete(self) -> HardwareSpec:
        bw, lat = self.inter_node_bandwidth_gbps, self.inter_node_latency_us
        if (bw is None) != (lat is None):
            raise ValueError(
                "field 'inter_node_latency_us': give both inter_node_bandwidth_gbps and "
                "inter_node_latency_us, or neither"
            )
        for name in (
            "max_gpus_per_node",
            "inter_node_bandwidth_gbps",
            "inter_node_latency_us",
            "architecture",
            "peer_to_peer",
            "allreduce_step_latency_us",
        ):
            if name in self.model_fields_set and not self.sources.get(name, "").strip():
                raise ValueError(
                    f"field '{name}' needs a source: add 'sources: {{{name}: <URL or "
                    "document>}' (a spec of an older schema lacks it)"
                )
        return self

    # --- SI accessors -----------------------------------------------------------------
    def peak_flops(self, dtype: str) -> float:
        """Dense peak FLOP/s for a compute dtype; falls back to the next wider dtype.

        A GPU without an FP8 (or INT4) unit runs those weights through BF16 matmuls after
        dequantization, so its compute rate is the BF16 rate.
        """
        fallback = {
            "fp4": "fp8",
            "int4": "int8",
            "int8": "fp8",
            "fp8": "bf16",
            "fp16": "bf16",
            "tf32": "fp32",
        }
        d = dtype
        while d not in self.peak_tflops:
            if d not in fallback:
                return self.peak_tflops["bf16"] * 1e12
            d = fallback[d]
        return self.peak_tflops[d] * 1e12

    @property
    def hbm_bytes(self) -> float:
        return self.hbm_capacity_gb * 1e9

    @property
    def hbm_bandwidth(self) -> float:
        """Bytes per second."""
        return self.hbm_bandwidth_tbps * 1e12

    @property
    def link_bandwidth(self) -> float:
        """Bytes per second per direction."""
        return self.link_bandwidth_gbps * 1e9

    @property
    def link_latency_s(self) -> float:
        return self.link_latency_us * 1e-6

    @property
    def has_node_data(self) -> bool:
        """True when the spec says how its nodes talk to each other (multi-node capable)."""
        return self.inter_node_bandwidth_gbps is not None

    @property
    def inter_node_bandwidth(self) -> float:
        """Bytes per second per direction per GPU between nodes (0 without node data)."""
        return (self.inter_node_bandwidth_gbps or 0.0) * 1e9

    @property
    def inter_node_latency_s(self) -> float:
        return (self.inter_node_latency_us or 0.0) * 1e-6


PROFILE_FIELDS = ("efficiency", "overhead", "memory_utilization", "optable")


def _load_file(path: Path) -> HardwareSpec:
    """A GPU spec YAML (any text encoding, see specs/inputs.py); errors name the field."""
    data = inputs.read_yaml(path, "GPU spec YAML")
    if any(key in data for key in PROFILE_FIELDS) and "peak_tflops" not in data:
        raise PerfModelError(
            f"{path}: this is an efficiency profile (it has "
            f"'{next(k for k in PROFILE_FIELDS if k in data)}'), not a GPU spec: pass it as "
            "--profile"
        )
    bad_keys = [k for k in data if not isinstance(k, str)]
    if bad_keys:
        raise PerfModelError(f"{path}: field names must be text, got {bad_keys[0]!r}")
    try:
        return HardwareSpec(**data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        if not field:  # a rule across fields: its message names them
            raise PerfModelError(f"{path}: {message}") from None
        if err["type"] == "extra_forbidden":
            known = ", ".join(HardwareSpec.model_fields)
            message = f"unknown field in a GPU spec (known: {known})"
        elif err["type"] == "missing":
            message = "missing (a GPU spec needs it)"
        elif err["type"] == "string_pattern_mismatch":
            message = "must not be empty"
        raise PerfModelError(f"{path}: field '{field}': {message}") from None


@lru_cache(maxsize=1)
def _registry() -> dict[str, Path]:
    names: dict[str, Path] = {}
    for path in sorted(HARDWARE_DIR.glob("*.yaml")):
        names[path.stem.lower()] = path
        try:
            data = yamlio.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yamlio.YAMLError, UnicodeDecodeError):
            continue
        for alias in data.get("aliases", []) or []:
            names[str(alias).lower()] = path
    return names


def list_gpus() -> list[str]:
    """Canonical names of the shipped hardware specs."""
    return sorted(p.stem for p in HARDWARE_DIR.glob("*.yaml"))


@lru_cache(maxsize=64)
def load_gpu(name: str) -> HardwareSpec:
    """Load a spec by name, alias (case-insensitive) or path to a YAML file."""
    if isinstance(name, HardwareSpec):  # pragma: no cover - convenience
        return name
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise PerfModelError(f"hardware spec file not found: {path}")
        return _load_file(path)
    reg = _registry()
    key = name.strip().lower()
    if key not in reg:
        raise suggest(name, reg.keys(), "GPU", known=list_gpus())
    return _load_file(reg[key])


def resolve_gpu(gpu: str | HardwareSpec) -> HardwareSpec:
    return gpu if isinstance(gpu, HardwareSpec) else load_gpu(gpu)
