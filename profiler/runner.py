"""What every runner shares: the measured point, its result and the repeat statistics."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Point:
    """One sweep point: ``batch_size`` requests of ``prompt_len`` tokens, ``output_len`` generated."""

    batch_size: int
    prompt_len: int
    output_len: int


@dataclass(frozen=True)
class PointResult:
    """Statistics over the timed repeats of one point (warm-up runs excluded).

    ttft_s: prefill time of the whole batch (until every request has its first token), mean.
    tpot_s: per-token decode step time, mean (NaN when output_len == 1).
    *_cv:   coefficient of variation (sample std / mean) over repeats; NaN for one repeat.
    extra:  runner-specific statistics written into the row's runner_settings JSON.
    status: the row's status when the point ran: "ok", or "split" when the runner saw the
            batch's prefill spread over several engine steps (its TTFT is not one prefill).
    note:   why the status is not "ok" (written into the row's ``note`` column).
    """

    ttft_s: float
    tpot_s: float
    ttft_cv: float
    tpot_cv: float
    repeats: int
    extra: dict[str, object] = field(default_factory=dict)
    status: str = "ok"
    note: str = ""


class ProcessPoisoned(Exception):
    """A failure (a CUDA fault: illegal memory access, device-side assert) left this
    process unable to start a new engine: the sweep must go on in a fresh process."""


class Runner(Protocol):
    """A measurement backend: set up once for a sweep, then measure points."""

    name: str  # "torch" | "vllm"

    def settings(self) -> dict[str, object]:
        """Settings that identify how points were measured (JSON-serializable)."""
        ...

    def setup(self, points: list[Point]) -> None:
        """Build the model/engine sized for all ``points`` (max lengths, batch)."""
        ...

    def measure(self, point: Point) -> PointResult: ...

    def recover(self, error: str = "") -> None:
        """Free memory after a failed point so the sweep can go on (called after the
        exception is handled, its frames cleared); `error` is the failure's one-line text.
        Raises ProcessPoisoned when no new engine can start in this process."""
        ...

    def close(self) -> None: ...


def mean_cv(values: list[float]) -> tuple[float, float]:
    """(mean, coefficient of variation) of finite values; CV uses the sample std (n-1)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return float("nan"), float("nan")
    mean = sum(finite) / len(finite)
    if len(finite) < 2 or mean == 0:
        return mean, float("nan")
    var = sum((v - mean) ** 2 for v in finite) / (len(finite) - 1)
    return mean, math.sqrt(var) / mean


def summarize(ttfts: list[float], tpots: list[float], extra: dict | None = None) -> PointResult:
    ttft, ttft_cv = mean_cv(ttfts)
    tpot, tpot_cv = mean_cv(tpots)
    return PointResult(ttft, tpot, ttft_cv, tpot_cv, len(ttfts), dict(extra or {}))


def is_oom(exc: BaseException) -> bool:
    """True for out-of-memory failures: MemoryError, torch.cuda.OutOfMemoryError, or a
    RuntimeError whose message says 'out of memory' (CUDA, HIP, allocator messages)."""
    if isinstance(exc, MemoryError):
        return True
    if (
        type(exc).__name__ == "OutOfMemoryError"
    ):  # torch.cuda.OutOfMemoryError / torch.OutOfMemoryError
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
