"""Hardware specifications: one YAML file per device in hardware_specs/, validated on load.

Units inside the model are SI: FLOP/s, bytes, bytes/s, seconds. The YAML stores datasheet
units (TFLOPS = 1e12 FLOP/s, TB/s = 1e12 B/s, GB/s = 1e9 B/s, GB = 1e9 B) and this module is
the one place that converts them.

Validation is strict: numbers are YAML numbers (no strings, no booleans), finite, within
bounds (the upper bounds are sanity limits, 10-100x today's largest parts, so a typo fails
instead of planning); text fields are text. A plain frozen dataclass checked field by field
(FIELD_RULES), not a pydantic model: building one cost ~100 ms of every CLI cold start.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, field, fields
from functools import lru_cache
from pathlib import Path

from perfmodel.errors import PerfModelError, suggest
from perfmodel.paths import HARDWARE_DIR
from perfmodel.specs import inputs
from perfmodel.specs.dtypes import PEAK_DTYPES

DTYPE_NAMES = PEAK_DTYPES


@dataclass(frozen=True, kw_only=True)
class HardwareSpec:
    """Datasheet figures of one accelerator (dense, not 2:4-sparse, peak rates).
    Build it from a YAML mapping with `from_mapping`, which validates every field."""

    name: str
    aliases: list[str] = field(default_factory=list)
    vendor: str
    architecture: str = ""  # GPU family (hopper, ampere, ada, ...): tables transfer within one
    description: str = ""
    peak_tflops: dict[str, float]  # dense peak per compute dtype, 1e12 FLOP/s
    hbm_capacity_gb: float  # true bytes / 1e9 (80 GiB = 85.9 GB)
    hbm_bandwidth_tbps: float  # 1e12 B/s
    link_kind: str  # intra-node (scale-up) link: NVLink, PCIe, Infinity Fabric, none
    link_bandwidth_gbps: float  # intra-node, per direction, per GPU, 1e9 B/s
    # intra-node hop latency: pipeline point-to-point transfers inside a node (the TP
    # all-reduce latency per call is the profile's fitted comm_latency_us, which includes it)
    link_latency_us: float = 5.0
    # False: the driver gives no GPU-to-GPU access (GeForce): collectives go through host memory
    peer_to_peer: bool = True
    # latency of one ring step of an all-reduce where measured (None: the profile's comm latency)
    allreduce_step_latency_us: float | None = None
    tdp_w: float
    price_per_gpu_hour_usd: float
    max_gpus_per_node: int = 8  # GPUs per node (HGX/DGX: 8)
    # inter-node (scale-out) network, per GPU: None = no node data (no multi-node search)
    inter_node_kind: str = ""
    inter_node_bandwidth_gbps: float | None = None  # per direction, 1e9 B/s
    inter_node_latency_us: float | None = None
    sources: dict[str, str]  # field name -> URL or document the figure was read from

    @classmethod
    def from_mapping(cls, data: dict) -> HardwareSpec:
        """Validate a YAML mapping; raises SpecError naming the first bad field."""
        for key in data:
            if key not in FIELD_RULES:
                known = ", ".join(FIELD_RULES)
                raise SpecError(key, f"unknown field in a GPU spec (known: {known})")
        values = {}
        for name, rule in FIELD_RULES.items():
            if name in data:
                values[name] = _check(name, rule, data[name])
            elif name in REQUIRED:
                raise SpecError(name, "missing (a GPU spec needs it)")
        spec = cls(**values)
        spec._check_across_fields(given=set(data))
        return spec

    def _check_across_fields(self, given: set[str]) -> None:
        unknown = set(self.peak_tflops) - set(DTYPE_NAMES)
        if unknown:
            raise SpecError("peak_tflops", f"unknown dtype(s) {sorted(unknown)}; use {DTYPE_NAMES}")
        if "bf16" not in self.peak_tflops:
            raise SpecError("peak_tflops", "bf16 peak is required")
        if (self.inter_node_bandwidth_gbps is None) != (self.inter_node_latency_us is None):
            raise SpecError(
                "inter_node_latency_us",
                "give both inter_node_bandwidth_gbps and inter_node_latency_us, or neither",
            )
        for name in (
            "max_gpus_per_node",
            "inter_node_bandwidth_gbps",
            "inter_node_latency_us",
            "architecture",
            "peer_to_peer",
            "allreduce_step_latency_us",
        ):
            if name in given and not self.sources.get(name, "").strip():
                raise SpecError(
                    name,
                    f"needs a source: add 'sources: {{{name}: <URL or document>}}' (a spec of "
                    "an older schema lacks it)",
                    joined=" ",
                )

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


def _load_file(path: Path, data: dict | None = None) -> HardwareSpec:
    """A GPU spec YAML (any text encoding, see specs/inputs.py; `data`: its mapping, already
    read); errors name the field."""
    if data is None:
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
        return HardwareSpec.from_mapping(data)
    except SpecError as exc:
        raise PerfModelError(f"{path}: field '{exc.field}'{exc.joined}{exc}") from None


@lru_cache(maxsize=1)
def _registry() -> dict[str, Path]:
    names: dict[str, Path] = {}
    for path in sorted(HARDWARE_DIR.glob("*.yaml")):
        names[path.stem.lower()] = path
        try:
            data = _shipped_doc(path)
        except PerfModelError:  # unreadable: its name still finds it, and load_gpu says why
            continue
        for alias in data.get("aliases", []) or []:
            names[str(alias).lower()] = path
    return names


@lru_cache(maxsize=32)
def _shipped_doc(path: Path) -> dict:
    """A shipped spec's YAML mapping, read once per process: the registry reads every file
    for its aliases, and load_gpu builds the spec from the same mapping (neither changes it)."""
    return inputs.read_yaml(path, "GPU spec YAML")


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
    return _load_shipped(reg[key])


@lru_cache(maxsize=32)
def _load_shipped(path: Path) -> HardwareSpec:
    """A shipped spec, read once per process whatever name or alias asked for it."""
    return _load_file(path, _shipped_doc(path))


def resolve_gpu(gpu: str | HardwareSpec) -> HardwareSpec:
    return gpu if isinstance(gpu, HardwareSpec) else load_gpu(gpu)


# --- field rules ---------------------------------------------------------------------------
class SpecError(ValueError):
    """One invalid field of a GPU spec: `field` names it, the message says what is accepted."""

    def __init__(self, field_name: str, message: str, joined: str = ": "):
        super().__init__(message)
        self.field, self.joined = field_name, joined


# field -> (kind, lower bound, lower bound inclusive, upper bound), in the YAML's order
FIELD_RULES = {
    "name": ("text", None, None, None),
    "aliases": ("names", None, None, None),
    "vendor": ("text", None, None, None),
    "description": ("text", None, None, None),
    "architecture": ("text", None, None, None),
    "peer_to_peer": ("flag", None, None, None),
    "allreduce_step_latency_us": ("number", 0, True, 1e6),
    "peak_tflops": ("peaks", 0, False, 1e7),
    "hbm_capacity_gb": ("number", 0, False, 100_000),
    "hbm_bandwidth_tbps": ("number", 0, False, 1_000),
    "link_kind": ("text", None, None, None),
    "link_bandwidth_gbps": ("number", 0, True, 1_000_000),
    "link_latency_us": ("number", 0, True, 1e6),
    "tdp_w": ("number", 0, False, 1e6),
    "price_per_gpu_hour_usd": ("number", 0, False, 1e6),
    "max_gpus_per_node": ("count", 1, True, 1 << 16),
    "inter_node_kind": ("text", None, None, None),
    "inter_node_bandwidth_gbps": ("number", 0, False, 1_000_000),
    "inter_node_latency_us": ("number", 0, True, 1e6),
    "sources": ("sources", None, None, None),
}
# the fields without a default in HardwareSpec must be given; NULLABLE ones may be null
REQUIRED = {
    f.name for f in fields(HardwareSpec) if f.default is MISSING and f.default_factory is MISSING
}
NULLABLE = {"inter_node_bandwidth_gbps", "inter_node_latency_us", "allreduce_step_latency_us"}


def _number(name: str, value, rule) -> float:
    """A YAML int or float within the rule's bounds, as float."""
    _, low, inclusive, high = rule
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(name, f"must be a number, got {value!r}")
    if not math.isfinite(value):
        raise SpecError(name, f"must be a finite number, got {value!r}")
    if value < low or (value == low and not inclusive):
        raise SpecError(name, f"must be {'>=' if inclusive else '>'} {low:g}, got {value!r}")
    if value > high:
        raise SpecError(name, f"must be at most {high:g}, got {value!r}")
    return float(value)


def _check(name: str, rule, value):
    kind = rule[0]
    if value is None and name in NULLABLE:
        return None
    if kind == "text":
        if not isinstance(value, str):
            raise SpecError(name, f"must be text, got {value!r}")
        if name == "name" and not value.strip():
            raise SpecError(name, "must not be empty")
        return value
    if kind == "names":
        if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
            raise SpecError(name, "must be a list of names (quote numeric ones)")
        return list(value)
    if kind == "sources":
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise SpecError(name, "must map field names to source text")
        return dict(value)
    if kind == "peaks":
        if not isinstance(value, dict) or not value:
            raise SpecError(name, "must map compute dtypes to TFLOPS, e.g. {bf16: 989.4}")
        try:
            return {str(k): _number(f"{name}.{k}", v, rule) for k, v in value.items()}
        except SpecError:
            raise SpecError(name, "peak TFLOPS must be positive and at most 1e7") from None
    if kind == "flag":
        if not isinstance(value, bool):
            raise SpecError(name, f"must be true or false, got {value!r}")
        return value
    if kind == "count":
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(name, f"must be a whole number, got {value!r}")
        return int(_number(name, value, rule))
    return _number(name, value, rule)
