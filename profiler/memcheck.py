"""Will a sweep point fit the device? The cost model's memory estimate against what is free.

The estimate is perfmodel.core.memory.memory_report for one device (TP 1) with the runner's
dtype for weights and KV cache: weights + KV cache of batch x (prompt + output) tokens +
the activation peak of one prefill step. Two corrections for a plain-torch runner: the
embedding and lm_head, which memory_report keeps in BF16 (as FP8 checkpoints do), are at the
runner's dtype, and so are the activations (memory_report: BF16); both scale by
dtype bytes / 2. Source: perfmodel/core/memory.py (DESIGN.md "Memory per GPU").

What is available is read once, before the model is built: free GPU memory from
torch.cuda.mem_get_info on CUDA, MemAvailable from /proc/meminfo on the host (None where
neither can be read: no check then).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from perfmodel.core.deployment import make_deployment
from perfmodel.core.memory import memory_report
from perfmodel.specs.dtypes import ACT_BYTES, WEIGHT_BYTES

GB = 1e9
MEMINFO = Path("/proc/meminfo")


@dataclass(frozen=True)
class MemoryNeed:
    """Bytes one point needs on its device (the estimate of the module docstring)."""

    weights: float
    kv_cache: float
    activations: float
    dtype: str

    @property
    def total(self) -> float:
        return self.weights + self.kv_cache + self.activations

    def text(self) -> str:
        return (
            f"{self.total / GB:.1f} GB (weights {self.weights / GB:.1f}, KV cache "
            f"{self.kv_cache / GB:.2f}, activations {self.activations / GB:.2f} GB in "
            f"{self.dtype}; perfmodel.core.memory estimate)"
        )


def estimate(model_spec, dtype: str, batch: int, prompt_len: int, output_len: int) -> MemoryNeed:
    """The memory one point needs (see the module docstring for the formula)."""
    dep = make_deployment(model_spec, "cpu-generic", 1, 1, dtype, dtype, None, "ideal")
    rep = memory_report(dep, batch, prompt_len, output_len)
    m = model_spec
    bf16_params = m.embedding_params + (0 if m.tie_word_embeddings else m.lm_head_params)
    scale = WEIGHT_BYTES[dtype] / ACT_BYTES
    weights = float(rep.weights_gb) * GB + bf16_params * (WEIGHT_BYTES[dtype] - ACT_BYTES)
    return MemoryNeed(
        weights, float(rep.kv_cache_gb) * GB, float(rep.activation_gb) * GB * scale, dtype
    )


def host_available_bytes(meminfo: Path = MEMINFO) -> float | None:
    """MemAvailable of /proc/meminfo in bytes (None where it cannot be read)."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024.0  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def cuda_free_bytes(device: str) -> float | None:
    """Free memory of a CUDA device (torch.cuda.mem_get_info), None if it cannot be read."""
    import torch  # heavy, optional: only on the CUDA path

    try:
        free, _total = torch.cuda.mem_get_info(torch.device(device))
    except (RuntimeError, AssertionError, ValueError):
        return None
    return float(free)


@dataclass(frozen=True)
class MemoryCheck:
    """What a torch sweep is checked with: the model, the runner's dtype and its device."""

    model_spec: object  # perfmodel.specs.models.ModelSpec
    dtype: str
    device: str  # "cpu" or "cuda[:i]"

    def need(self, point) -> MemoryNeed:
        return estimate(
            self.model_spec, self.dtype, point.batch_size, point.prompt_len, point.output_len
        )

    def available(self) -> tuple[float, str] | None:
        """(bytes available, where), read before the model is built; None if unreadable."""
        if self.device.startswith("cuda"):
            free = cuda_free_bytes(self.device)
            return None if free is None else (free, f"GPU {self.device}")
        avail = host_available_bytes()
        return None if avail is None else (avail, "the host")


def refusal(point, need: MemoryNeed, available: float, where: str) -> str:
    """One line: the point, what it needs and what the device has."""
    return (
        f"batch {point.batch_size} x {point.prompt_len}+{point.output_len} tokens needs "
        f"{need.text()}, {where} has {available / GB:.1f} GB available"
    )
