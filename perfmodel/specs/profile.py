"""Efficiency profiles: how far below datasheet peaks a framework runs on a class of GPU.

A profile is a handful of physically meaningful numbers, loaded from profiles/*.yaml:
- efficiency.matmul / attention: achieved fraction of peak tensor FLOP/s for linear layers
  and for the attention kernel (long-context prefill is attention-bound and runs at a lower
  fraction than GEMMs, so one scalar cannot fit both);
- efficiency.memory: achieved fraction of HBM bandwidth; efficiency.comm: of link bandwidth;
- efficiency.attention_decode: fraction of HBM bandwidth the attention kernel reaches reading
  the KV cache (decode attention is bound by it, prefill attention by efficiency.attention);
  absent: efficiency.memory;
- efficiency.matmul_half_rows: GEMM rows (tokens) at which a matmul runs at half of its
  large-M efficiency (small-M GEMMs underfill the tensor cores);
- overhead: per_layer_us (kernel launches and small ops per layer and forward pass),
  per_step_us (scheduler, input preparation, per forward pass), per_token_us (sampling and
  output processing per sampled token), eager_layer_us (host time to dispatch one layer's
  kernels in a pass that is not captured in a CUDA graph; it overlaps the GPU work, so an
  eager pass takes max(GPU time, L * eager_layer_us)), kernel_floor_us (no kernel finishes
  faster: launch and tail, ~3 us on H100 even inside a CUDA graph; an operator's time is at
  least its kernels per pass times this floor), comm_latency_us (per all-reduce call),
  sd_step_us (speculative decoding bookkeeping per draft/verify round: acceptance, KV
  rollback), select_us_per_seq and select_us_per_token (SpecPrefill token selection: per
  sequence, and per prompt token for ranking and rebuilding the kept requests on the host).
- optable: name of a measured operator table (specs/optables.py); with it, kernel times come
  from the table (core/optable/), matmul / attention become the fractions of peak a
  long compute-bound pass sustains (a floor on compute-bound kernel time: microbenchmarks
  run at boost clock, long passes at the power-limited clock), and memory / comm price only
  what the table lacks;
- unidentified: parameter -> why the profile's own data cannot determine it (shown in output).
The shipped profiles are fitted by `perfmodel calibrate` and record what they were fitted on.

Names: `<framework>-<version>-<gpu>` (framework_version set: `vllm-0.6.3-h100`,
`vllm-0.24.0-h100`), and `<framework>-<gpu>` (`vllm-h100`) names the newest version of that
framework on that GPU. A GPU's default profile (profile_for) is the newest profile of the
framework with a measured operator table for that GPU; else the newest with a table measured
on the nearest GPU of the same architecture family (the table transfers, and the note says
from which GPU); else the framework's newest profile without a table (its efficiencies
reused, and the note says so).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path

from perfmodel.errors import PerfModelError, suggest
from perfmodel.paths import PROFILE_DIR
from perfmodel.specs import inputs

EFFICIENCY_KEYS = ("matmul", "attention", "memory", "comm", "attention_decode")
SHAPE_KEYS = ("matmul_half_rows",)
OVERHEAD_KEYS = (
    "per_layer_us",
    "per_step_us",
    "per_token_us",
    "comm_latency_us",
    "sd_step_us",
    "select_us_per_seq",
    "select_us_per_token",
    "eager_layer_us",
    "kernel_floor_us",
)
PARAMETERS = (
    tuple(f"efficiency.{k}" for k in EFFICIENCY_KEYS)
    + tuple(f"efficiency.{k}" for k in SHAPE_KEYS)
    + tuple(f"overhead.{k}" for k in OVERHEAD_KEYS)
)


@dataclass(frozen=True)
class Profile:
    """An efficiency profile (the fields: module docstring); load_profile reads one."""

    name: str
    framework: str = "generic"
    gpus: tuple[str, ...] = ()
    framework_version: str = ""  # release the profile describes ('' = unversioned)
    mode: str = "additive"
    matmul: float = 1.0
    attention: float = 1.0
    memory: float = 1.0
    comm: float = 1.0
    matmul_half_rows: float = 0.0  # tokens at which a GEMM reaches half its large-M efficiency
    per_layer_us: float = 0.0
    per_step_us: float = 0.0
    per_token_us: float = 0.0
    comm_latency_us: float = 0.0
    sd_step_us: float = 0.0
    select_us_per_seq: float = 0.0
    select_us_per_token: float = 0.0
    attention_decode: float = 0.0  # HBM fraction attention reaches reading KV; 0 = memory
    eager_layer_us: float = 0.0  # host dispatch per layer of an eager (ungraphed) pass
    kernel_floor_us: float = 0.0  # no kernel completes faster (launch + tail), per kernel
    optable: str = ""  # operator table that prices kernels (specs/optables.py); '' = roofline
    unidentified: dict = field(default_factory=dict, compare=False, hash=False)
    memory_utilization: float = 0.90  # fraction of HBM the framework may use
    description: str = ""
    provenance: dict = field(default_factory=dict, compare=False, hash=False)
    path: str = ""
    note: str = ""  # e.g. "efficiencies reused from vllm-h100 (no profile fitted for a100)"

    def get(self, parameter: str) -> float:
        return float(getattr(self, parameter.split(".")[-1]))

    def with_values(self, **values: float) -> Profile:
        return replace(self, **{k.split(".")[-1]: float(v) for k, v in values.items()})

    def to_yaml_dict(self) -> dict:
        return {
            "name": self.name,
            "framework": self.framework,
            **({"framework_version": self.framework_version} if self.framework_version else {}),
            "gpus": list(self.gpus),
            "mode": self.mode,
            "description": self.description,
            "efficiency": {
                k: round(getattr(self, k), 6)
                for k in EFFICIENCY_KEYS + SHAPE_KEYS
                if k != "attention_decode" or self.attention_decode > 0
            },
            "overhead": {k: round(getattr(self, k), 4) for k in OVERHEAD_KEYS},
            "memory_utilization": self.memory_utilization,
            **({"optable": self.optable} if self.optable else {}),
            **({"unidentified": dict(self.unidentified)} if self.unidentified else {}),
            "provenance": self.provenance,
        }


TOP_LEVEL = (
    "name",
    "framework",
    "framework_version",
    "gpus",
    "mode",
    "description",
    "efficiency",
    "overhead",
    "memory_utilization",
    "optable",
    "unidentified",
    "provenance",
)
GPU_SPEC_FIELDS = ("peak_tflops", "hbm_bandwidth_tbps", "hbm_capacity_gb", "vendor")
MAX_OVERHEAD_US = 1e7  # 10 s per layer/step/token: past it, a unit typo (s given as us)
MAX_HALF_ROWS = 1e9


def _from_dict(data: dict, source: str) -> Profile:
    """Check a profile's fields (specs/inputs.py helpers; every error names the field) and
    its kind: a GPU spec YAML passed as a profile is refused, not read as an empty profile."""
    if not isinstance(data, dict) or "name" not in data:
        raise PerfModelError(f"{source}: a profile needs at least a 'name' field")
    gpu_fields = [k for k in GPU_SPEC_FIELDS if k in data]
    if gpu_fields:
        raise PerfModelError(
            f"{source}: this is a GPU spec (it has '{gpu_fields[0]}'), not an efficiency "
            "profile: pass it as --gpu"
        )
    inputs.refuse_unknown(data, TOP_LEVEL, source, "profile")
    mode = inputs.require_str(data, "mode", source, default="additive").lower()
    if mode not in ("roofline", "additive"):
        raise PerfModelError(f"{source}: field 'mode' must be roofline or additive, got '{mode}'")
    kwargs: dict = {
        "name": inputs.require_str(data, "name", source),
        "framework": inputs.require_str(data, "framework", source, default="generic"),
        "framework_version": inputs.require_str(
            data, "framework_version", source, default="", empty_ok=True
        ),
        "gpus": tuple(inputs.require_str_list(data, "gpus", source, default=[])),
        "mode": mode,
        "description": inputs.require_str(data, "description", source, "", empty_ok=True),
        "provenance": inputs.require_mapping(data, "provenance", source, default={}),
        "memory_utilization": inputs.check_number(
            data.get("memory_utilization", 0.90),
            "memory_utilization",
            source,
            maximum=1.0,
            positive=True,
        ),
        "optable": _optable_path(
            inputs.require_str(data, "optable", source, default="", empty_ok=True), source
        ),
        "unidentified": inputs.require_mapping(data, "unidentified", source, default={}),
        "path": source,
    }
    for section, keys in (
        ("efficiency", EFFICIENCY_KEYS + SHAPE_KEYS),
        ("overhead", OVERHEAD_KEYS),
    ):
        values = inputs.require_mapping(data, section, source, default={})
        for key, value in values.items():
            if key not in keys:
                raise PerfModelError(
                    f"{source}: unknown field '{section}.{key}' (known: {', '.join(keys)})"
                )
            field_name = f"{section}.{key}"
            if section == "efficiency" and key in EFFICIENCY_KEYS:
                kwargs[key] = inputs.check_number(
                    value, field_name, source, maximum=1.0, positive=True
                )
            else:
                top = MAX_HALF_ROWS if key in SHAPE_KEYS else MAX_OVERHEAD_US
                kwargs[key] = inputs.check_number(value, field_name, source, 0.0, top)
    return Profile(**kwargs)


def _optable_path(optable: str, source: str) -> str:
    """A shipped table's name stays a name; a relative CSV path resolves against the
    profile's folder (not the working directory), so a profile and its table move together."""
    if optable.endswith(".csv") or "/" in optable:
        path = Path(optable)
        if not path.is_absolute() and Path(source).parent.is_dir():
            return str(Path(source).parent / path)
    return optable


def load_profile_file(path: str | Path) -> Profile:
    """A profile YAML (any text encoding, see specs/inputs.py)."""
    path = Path(path)
    if not path.is_file():
        raise PerfModelError(f"profile file not found: {path}")
    return _from_dict(inputs.read_yaml(path, "profile YAML"), str(path))


IDEAL = Profile(
    name="ideal", framework="ideal", mode="roofline", description="datasheet peaks, no overhead"
)


@lru_cache(maxsize=1)
def _shipped() -> dict[str, Path]:
    return {p.stem: p for p in sorted(PROFILE_DIR.glob("*.yaml"))}


def list_profiles() -> list[str]:
    return ["ideal", *_shipped()]


def version_key(version: str) -> tuple:
    """Sortable release number ('0.24.0' > '0.6.3'); non-numeric parts sort first."""
    return tuple(int(x) if x.isdigit() else -1 for x in re.split(r"[.+-]", version or "0"))


@lru_cache(maxsize=1)
def aliases() -> dict[str, str]:
    """'<framework>-<gpu>' -> the newest '<framework>-<version>-<gpu>' profile."""
    best: dict[str, tuple] = {}
    for name in _shipped():
        p = _shipped_profile(name)
        prefix = f"{p.framework}-{p.framework_version}-"
        if p.framework_version and name.startswith(prefix):
            alias = f"{p.framework}-{name[len(prefix) :]}"
            key = version_key(p.framework_version)
            if alias not in _shipped() and (alias not in best or key > best[alias][0]):
                best[alias] = (key, name)
    return {alias: name for alias, (_, name) in best.items()}


@lru_cache(maxsize=32)
def load_profile(name: str) -> Profile:
    """A profile by name ('ideal', a shipped name or alias) or a path to a YAML file."""
    if name == "ideal":
        return IDEAL
    if name.endswith((".yaml", ".yml")) or "/" in name:
        return load_profile_file(name)
    shipped = _shipped()
    name = aliases().get(name, name)
    if name not in shipped:
        raise suggest(name, ["ideal", *shipped, *aliases()], "profile")
    return _shipped_profile(name)


@lru_cache(maxsize=32)
def _shipped_profile(name: str) -> Profile:
    """A shipped profile, read once per process (aliases() reads them all to find the
    newest version of each, and load_profile then returns the same objects)."""
    return load_profile_file(_shipped()[name])


DEFAULT_FRAMEWORK = "vllm"


def _newest(profiles: list[Profile]) -> Profile:
    return max(profiles, key=lambda p: (version_key(p.framework_version), p.name))


@lru_cache(maxsize=64)
def profile_for(gpu_name: str, framework: str = DEFAULT_FRAMEWORK) -> Profile:
    """The default profile of a framework on a GPU (rules in the module docstring)."""
    from perfmodel.specs.hardware import resolve_gpu

    same = [load_profile(n) for n in _shipped()]
    same = [p for p in same if p.framework == framework]
    own = [p for p in same if gpu_name in p.gpus]
    if own:
        with_table = [p for p in own if p.optable]
        return _newest(with_table or own)
    try:
        hw = resolve_gpu(gpu_name)
    except Exception:  # noqa: BLE001 - a GPU given by YAML path: no family to match
        hw = None
    family = []
    for p in same:
        if not p.optable or not p.gpus or hw is None or not hw.architecture:
            continue
        src = resolve_gpu(p.gpus[0])
        if src.architecture == hw.architecture and hw.architecture != "cpu":
            distance = abs(math.log(src.hbm_bandwidth / hw.hbm_bandwidth)) + abs(
                math.log(src.peak_flops("bf16") / hw.peak_flops("bf16"))
            )
            family.append((round(distance, 9), p))
    if family:
        nearest = min(d for d, _ in family)
        base = _newest([p for d, p in family if d == nearest])
        return replace(
            base,
            note=f"no {framework} table measured on {gpu_name}: operator tables of "
            f"'{base.name}' ({', '.join(base.gpus)}, same {hw.architecture} family) transferred",
        )
    plain = [p for p in same if not p.optable]
    if plain:
        base = _newest(plain)
        return replace(
            base,
            note=f"no {framework} profile fitted for {gpu_name}: efficiencies of "
            f"'{base.name}' (fitted on {', '.join(base.gpus) or '?'}) reused",
        )
    return load_profile("default")


def resolve_profile(
    profile: str | Profile | None, gpu_name: str, framework: str = DEFAULT_FRAMEWORK
) -> Profile:
    if isinstance(profile, Profile):
        return profile
    if profile is None or profile == "auto":
        return profile_for(gpu_name, framework)
    return load_profile(profile)


def parameter_names() -> tuple[str, ...]:
    return PARAMETERS


def profile_fields() -> list[str]:
    return [f.name for f in fields(Profile)]
