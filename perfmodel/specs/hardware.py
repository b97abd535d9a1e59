"""Hardware specifications: one YAML file per device in hardware_specs/, validated on load.

Units inside the model are SI: FLOP/s, bytes, bytes/s, seconds. The YAML stores datasheet
units (TFLOPS = 1e12 FLOP/s, TB/s = 1e12 B/s, GB/s = 1e9 B/s, GB = 1e9 B) and this module is
the one place that converts them.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, field, fields
from functools import lru_cache
from pathlib import Path

from perfmodel.errors import PerfModelError, suggest
from perfmodel.paths import HARDWARE_DIR
from perfmodel.specs import yamlio
from perfmodel.specs.dtypes import PEAK_DTYPES

DTYPE_NAMES = PEAK_DTYPES


class SpecFieldError(ValueError):
    """One invalid field of a hardware spec: `field` names it, the message says what is accepted."""

    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field = field_name


@dataclass(frozen=True)
class HardwareSpec:
    """Datasheet figures of one accelerator (dense, not 2:4-sparse, peak rates).

    Build from a YAML mapping with `HardwareSpec.from_mapping`, which validates every field
    (a plain dataclass, not pydantic: the CLI's cold start pays ~50 ms to import pydantic).
    """

    name: str
    vendor: str
    peak_tflops: dict[str, float]  # dense peak per compute dtype, 1e12 FLOP/s
    hbm_capacity_gb: float  # > 0, true bytes / 1e9 (80 GiB = 85.9 GB)
    hbm_bandwidth_tbps: float  # > 0, 1e12 B/s
    link_kind: str  # intra-node (scale-up) link: NVLink, PCIe, Infinity Fabric, none
    link_bandwidth_gbps: float  # >= 0, intra-node, per direction, per GPU, 1e9 B/s
    tdp_w: float  # > 0
    price_per_gpu_hour_usd: float  # > 0
    sources: dict[str, str]  # field name -> URL or document the figure was read from
    aliases: list[str] = field(default_factory=list)
    description: str = ""
    # intra-node hop latency: pipeline point-to-point transfers inside a node (the TP
    # all-reduce latency per call is the profile's fitted comm_latency_us, which includes it)
    link_latency_us: float = 5.0  # >= 0
    max_gpus_per_node: int = 8  # >= 1, GPUs per node (HGX/DGX: 8)
    # inter-node (scale-out) network, per GPU: None = no node data (no multi-node search)
    inter_node_kind: str = ""
    inter_node_bandwidth_gbps: float | None = None  # > 0, per direction, 1e9 B/s
    inter_node_latency_us: float | None = None  # >= 0

    @classmethod
    def from_mapping(cls, data: dict) -> HardwareSpec:
        """Validate a YAML mapping; raises SpecFieldError naming the first bad field."""
        known = {f.name: f for f in fields(cls)}
        for key in data:
            if key not in known:
                raise SpecFieldError(str(key), f"unknown field (known: {', '.join(known)})")
        values = {}
        for name, f in known.items():
            if name in data:
                values[name] = _check(name, data[name])
            elif f.default is f.default_factory is MISSING:
                raise SpecFieldError(name, "required field is missing")
        spec = cls(**values)
        spec._check_node_data(given=set(data))
        return spec

    def _check_node_data(self, given: set[str]) -> None:
        unknown = set(self.peak_tflops) - set(DTYPE_NAMES)
        if unknown:
            raise SpecFieldError(
                "peak_tflops", f"unknown dtype(s) {sorted(unknown)}; use {DTYPE_NAMES}"
            )
        if "bf16" not in self.peak_tflops:
            raise SpecFieldError("peak_tflops", "bf16 peak is required")
        bw, lat = self.inter_node_bandwidth_gbps, self.inter_node_latency_us
        if (bw is None) != (lat is None):
            raise SpecFieldError(
                "inter_node_latency_us" if lat is None else "inter_node_bandwidth_gbps",
                "give both inter_node_bandwidth_gbps and inter_node_latency_us, or neither",
            )
        for name in ("max_gpus_per_node", "inter_node_bandwidth_gbps", "inter_node_latency_us"):
            if name in given and not self.sources.get(name, "").strip():
                raise SpecFieldError("sources", f"'{name}' needs a source in 'sources'")

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


def _load_file(path: Path) -> HardwareSpec:
    try:
        data = yamlio.safe_load(path.read_text())
    except yamlio.YAMLError as exc:
        raise PerfModelError(f"{path}: malformed YAML ({exc.__class__.__name__})") from exc
    if not isinstance(data, dict):
        raise PerfModelError(f"{path}: expected a mapping of fields")
    try:
        return HardwareSpec.from_mapping(data)
    except SpecFieldError as exc:
        raise PerfModelError(f"{path}: field '{exc.field}': {exc}") from exc


@lru_cache(maxsize=1)
def _registry() -> dict[str, Path]:
    names: dict[str, Path] = {}
    for path in sorted(HARDWARE_DIR.glob("*.yaml")):
        names[path.stem.lower()] = path
        try:
            data = yamlio.safe_load(path.read_text()) or {}
        except yamlio.YAMLError:
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


# --- field checks (what pydantic did before: types, bounds, numbers coerced to float) ------
_POSITIVE = {"hbm_capacity_gb", "hbm_bandwidth_tbps", "tdp_w", "price_per_gpu_hour_usd"}
_NON_NEGATIVE = {"link_bandwidth_gbps", "link_latency_us", "inter_node_latency_us"}
_TEXT = {"name", "vendor", "description", "link_kind", "inter_node_kind"}
_OPTIONAL = {"inter_node_bandwidth_gbps", "inter_node_latency_us"}


def _number(name: str, value) -> float:
    """A YAML number (or numeric string) as float; booleans and text are rejected."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise SpecFieldError(name, f"must be a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise SpecFieldError(name, f"must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise SpecFieldError(name, f"must be a finite number, got {value!r}")
    return number


def _check(name: str, value):
    if name in _OPTIONAL and value is None:
        return None
    if name in _TEXT:
        if not isinstance(value, str):
            raise SpecFieldError(name, f"must be text, got {value!r}")
        return value
    if name == "aliases":
        if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
            raise SpecFieldError(name, "must be a list of names (quote numeric ones)")
        return list(value)
    if name == "sources":
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise SpecFieldError(name, "must map field names to source text")
        return dict(value)
    if name == "peak_tflops":
        if not isinstance(value, dict) or not value:
            raise SpecFieldError(name, "must map compute dtypes to TFLOPS, e.g. {bf16: 989.4}")
        peaks = {str(k): _number(f"{name}.{k}", v) for k, v in value.items()}
        if any(v <= 0 for v in peaks.values()):
            raise SpecFieldError(name, "peak TFLOPS must be positive")
        return peaks
    if name == "max_gpus_per_node":
        number = _number(name, value)
        if number != int(number) or number < 1:
            raise SpecFieldError(name, f"must be a whole number >= 1, got {value!r}")
        return int(number)
    number = _number(name, value)
    if (name in _POSITIVE or name == "inter_node_bandwidth_gbps") and number <= 0:
        raise SpecFieldError(name, f"must be > 0, got {value!r}")
    if name in _NON_NEGATIVE and number < 0:
        raise SpecFieldError(name, f"must be >= 0, got {value!r}")
    return number
