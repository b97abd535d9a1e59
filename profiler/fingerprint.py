"""Where a measurement was taken: GPU (via NVML), CPU, driver and library versions.

NVML comes from nvidia-ml-py (``import pynvml``), imported lazily; a machine without it, without
a GPU or with a broken driver gets a CPU fingerprint instead of an error. Nothing here imports
torch or touches torch.cuda (vLLM must create its engine before anything initializes CUDA).
"""

from __future__ import annotations

import json
import os
import platform
import re
from dataclasses import asdict, dataclass
from importlib import metadata

CPU_HARDWARE_NAME = "cpu-generic"


@dataclass(frozen=True)
class Fingerprint:
    """One machine's identity, as written beside every measured row."""

    gpu: str  # perfmodel hardware name (h100-sxm, a100-80gb ...) or cpu-generic
    gpu_name: str  # as the driver reports it (or the CPU model)
    gpu_count: int  # GPUs NVML sees on the machine (0 without NVML)
    driver: str
    gpu_memory_gb: float | None  # 10^9 bytes, total memory of the first visible GPU
    sm_clock_mhz: int | None  # maximum SM clock
    mem_clock_mhz: int | None  # maximum memory clock
    power_limit_w: float | None  # enforced power limit
    cpu_model: str
    cpu_count: int
    torch_version: str
    vllm_version: str

    def as_row(self) -> dict[str, object]:
        return asdict(self)


def hardware_name(nvml_name: str, memory_bytes: float | None = None) -> str:
    """Map a driver-reported GPU name to perfmodel's hardware name.

    "NVIDIA H100 80GB HBM3" -> h100-sxm, "NVIDIA H100 PCIe" -> h100-pcie, "NVIDIA H200" -> h200,
    "NVIDIA A100-SXM4-80GB" -> a100-80gb, "NVIDIA A100-SXM4-40GB" -> a100-40gb ... Unknown
    names become a lower-case slug without the vendor ("NVIDIA L4" -> l4).
    """
    name = nvml_name.upper()
    gib = (memory_bytes or 0) / 2**30
    if "GH200" in name:
        return "gh200"
    if "H200" in name:
        return "h200"
    if "H100" in name:
        if "PCIE" in name:
            return "h100-pcie"
        if "NVL" in name:
            return "h100-nvl"
        return "h100-sxm"
    if "A100" in name:
        if "40GB" in name or (0 < gib < 50 and "80GB" not in name):
            return "a100-40gb"
        return "a100-80gb"
    if "B200" in name:
        return "b200"
    if "L40S" in name:
        return "l40s"
    if "4090" in name:
        return "rtx4090"
    if "MI300X" in name:
        return "mi300x"
    slug = re.sub(r"^(NVIDIA|AMD)\s+", "", nvml_name.strip(), flags=re.IGNORECASE)
    slug = re.sub(r"[^a-z0-9]+", "-", slug.lower()).strip("-")
    return slug or "unknown-gpu"


def package_version(name: str) -> str:
    """Installed version of a distribution, or '' when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return ""


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (Linux), else platform.processor()."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "cpu model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _first_visible_index(cuda_index: int = 0) -> int:
    """NVML index of visible GPU ``cuda_index`` (torch's numbering) via CUDA_VISIBLE_DEVICES;
    ``cuda_index`` itself when the variable is unset or holds UUIDs."""
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")]
    if cuda_index < len(visible) and visible[cuda_index].isdigit():
        return int(visible[cuda_index])
    return cuda_index


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _nvml_info(cuda_index: int = 0) -> dict[str, object] | None:
    """GPU facts from NVML, or None when NVML (or a GPU) is not available."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return None
    try:
        count = pynvml.nvmlDeviceGetCount()
        if count == 0:
            return None
        handle = pynvml.nvmlDeviceGetHandleByIndex(min(_first_visible_index(cuda_index), count - 1))
        info: dict[str, object] = {
            "gpu_count": count,
            "gpu_name": _text(pynvml.nvmlDeviceGetName(handle)),
            "driver": _text(pynvml.nvmlSystemGetDriverVersion()),
        }

        def optional(key: str, call, scale: float = 1.0) -> None:
            try:
                info[key] = call() * scale
            except Exception:  # a field the device or driver does not support
                info[key] = None

        optional("memory_bytes", lambda: pynvml.nvmlDeviceGetMemoryInfo(handle).total)
        optional(
            "sm_clock_mhz", lambda: pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_SM)
        )
        optional(
            "mem_clock_mhz", lambda: pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_MEM)
        )
        optional("power_limit_w", lambda: pynvml.nvmlDeviceGetEnforcedPowerLimit(handle), 1e-3)
        return info
    except Exception:
        return None
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def collect(use_gpu: bool = True, gpu_index: int | None = None) -> Fingerprint:
    """Fingerprint this machine; ``use_gpu=False`` (a CPU run) describes the CPU instead;
    ``gpu_index`` is the torch device index measured on (default the first visible GPU)."""
    cpu = cpu_model()
    common = {
        "cpu_model": cpu,
        "cpu_count": os.cpu_count() or 1,
        "torch_version": package_version("torch"),
        "vllm_version": package_version("vllm"),
    }
    info = _nvml_info(gpu_index or 0) if use_gpu else None
    if info is None:
        return Fingerprint(
            gpu=CPU_HARDWARE_NAME,
            gpu_name=cpu,
            gpu_count=0,
            driver="",
            gpu_memory_gb=None,
            sm_clock_mhz=None,
            mem_clock_mhz=None,
            power_limit_w=None,
            **common,
        )
    memory = info.get("memory_bytes")
    return Fingerprint(
        gpu=hardware_name(str(info["gpu_name"]), memory),
        gpu_name=str(info["gpu_name"]),
        gpu_count=int(info["gpu_count"]),
        driver=str(info["driver"]),
        gpu_memory_gb=round(memory / 1e9, 3) if memory else None,
        sm_clock_mhz=int(info["sm_clock_mhz"]) if info.get("sm_clock_mhz") else None,
        mem_clock_mhz=int(info["mem_clock_mhz"]) if info.get("mem_clock_mhz") else None,
        power_limit_w=round(info["power_limit_w"], 1) if info.get("power_limit_w") else None,
        **common,
    )


def settings_json(settings: dict[str, object]) -> str:
    """Runner settings as one compact, key-sorted JSON string (a CSV cell)."""
    return json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
