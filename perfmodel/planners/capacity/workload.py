"""Capacity inputs: the workload (fixed lengths or a trace file) and GPU prices."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from perfmodel.errors import PerfModelError
from perfmodel.specs import inputs
from perfmodel.specs.hardware import load_gpu

WORKLOAD_MAX_BYTES = 50_000_000
WORKLOAD_MAX_ROWS = 1_000_000
WORKLOAD_COLUMNS = ("prompt_len", "output_len", "arrival_time")
QPS_MIN = 1e-3
QPS_MAX = 1e6
MAX_TOKENS = 1 << 30  # per request: past a billion tokens a length is a typo


@dataclass(frozen=True)
class Workload:
    """Request rate and length statistics (means for throughput, p90 for SLOs)."""

    qps: float
    prompt_mean: float
    prompt_p90: float
    output_mean: float
    output_p90: float
    source: str
    n_requests: int = 0
    prompt_samples: np.ndarray | None = field(default=None, repr=False)
    output_samples: np.ndarray | None = field(default=None, repr=False)

    def as_dict(self) -> dict:
        return {
            "qps": self.qps,
            "prompt_len_mean": self.prompt_mean,
            "prompt_len_p90": self.prompt_p90,
            "output_len_mean": self.output_mean,
            "output_len_p90": self.output_p90,
            "source": self.source,
            "n_requests": self.n_requests,
        }


def check_qps(qps: float, what: str = "--qps") -> float:
    """A request rate the capacity model can size a fleet for, else one line with the reason.

    Below QPS_MIN (one request per ~17 minutes) a fleet idles: cost per token would count idle
    hours, not serving. Above QPS_MAX the fleet exceeds any that exists (10^6 requests/s of a
    4k-token prompt need ~10^5-10^6 GPUs), and the counts stop meaning anything."""
    if not (np.isfinite(qps) and qps > 0):
        raise PerfModelError(f"{what} must be a positive number of requests per second, got {qps}")
    if qps < QPS_MIN:
        raise PerfModelError(
            f"{what} {qps:g} is below {QPS_MIN:g} (one request per ~17 min): the fleet would "
            "idle and cost per token would count idle hours; size one replica with predict"
        )
    if qps > QPS_MAX:
        raise PerfModelError(
            f"{what} {qps:g} is above {QPS_MAX:g} requests/s: a fleet larger than any that "
            "exists; split the traffic"
        )
    return float(qps)


def fixed_workload(qps: float, prompt_len: float, output_len: float) -> Workload:
    check_qps(qps)
    return Workload(
        float(qps),
        float(prompt_len),
        float(prompt_len),
        float(output_len),
        float(output_len),
        "given: fixed prompt and output lengths, Poisson arrivals",
    )


def load_workload(path, qps: float | None = None) -> Workload:
    """A CSV or JSONL trace with prompt_len, output_len, arrival_time (seconds) columns.

    QPS = (n - 1) / (last - first arrival) unless `qps` overrides it. Parsed by pandas only,
    capped at WORKLOAD_MAX_BYTES and WORKLOAD_MAX_ROWS.
    """
    from pathlib import Path

    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise PerfModelError(f"workload file not found: {path}")
    if path.stat().st_size > WORKLOAD_MAX_BYTES:
        raise PerfModelError(
            f"{path}: workload file over {WORKLOAD_MAX_BYTES // 1_000_000} MB; sample it first"
        )
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson"):
        raise PerfModelError(f"{path}: workload must be .csv or .jsonl")
    buffer = inputs.text_buffer(path, "workload file", max_bytes=WORKLOAD_MAX_BYTES)
    try:
        if suffix == ".csv":
            frame = pd.read_csv(buffer, nrows=WORKLOAD_MAX_ROWS + 1)
        else:
            frame = pd.read_json(buffer, lines=True, nrows=WORKLOAD_MAX_ROWS + 1)
    except (ValueError, pd.errors.ParserError, RecursionError) as exc:
        first = (str(exc).splitlines() or [exc.__class__.__name__])[0][:120]
        raise PerfModelError(f"{path}: cannot parse ({first})") from None
    if len(frame) > WORKLOAD_MAX_ROWS:
        raise PerfModelError(f"{path}: more than {WORKLOAD_MAX_ROWS} rows; sample it first")
    missing = [c for c in WORKLOAD_COLUMNS if c not in frame.columns]
    if missing:
        raise PerfModelError(
            f"{path}: missing column(s) {', '.join(missing)} (need {', '.join(WORKLOAD_COLUMNS)})"
        )
    cols = {}
    for c in WORKLOAD_COLUMNS:
        try:
            v = pd.to_numeric(frame[c], errors="coerce").to_numpy(float)
        except (OverflowError, TypeError, ValueError):  # a 400-digit integer, a list in JSONL
            v = np.array([inputs.to_float(x) for x in frame[c]], float)
        if not np.all(np.isfinite(v)):
            raise PerfModelError(f"{path}: column '{c}' has non-numeric or missing values")
        cols[c] = v
    if len(frame) < 2:
        raise PerfModelError(f"{path}: need at least 2 requests")
    for c in ("prompt_len", "output_len"):
        v = cols[c]
        bad = (v < 1) | (v != np.round(v)) | (v > MAX_TOKENS)
        if np.any(bad):
            row = int(np.flatnonzero(bad)[0])
            raise PerfModelError(
                f"{path}: column '{c}', request {row + 1}: {v[row]:g} is not a whole number of "
                f"tokens from 1 to {MAX_TOKENS}"
            )
    t = np.sort(cols["arrival_time"])
    span = t[-1] - t[0]
    if qps is None:
        if span <= 0:
            raise PerfModelError(f"{path}: arrival_time spans no time; pass --qps")
        qps = check_qps((t.size - 1) / span, f"{path}: the QPS from arrival_time")
    else:
        check_qps(qps)
    p, o = cols["prompt_len"], cols["output_len"]
    return Workload(
        float(qps),
        float(p.mean()),
        float(np.percentile(p, 90)),
        float(o.mean()),
        float(np.percentile(o, 90)),
        f"{path.name}: {t.size} requests; QPS from arrival times; p90 lengths for SLOs, "
        "means for throughput",
        int(t.size),
        p,
        o,
    )


def parse_prices(text: str | None) -> dict[str, float]:
    """'h100=3.0,a100=1.8' -> {'h100-sxm': 3.0, 'a100-80gb': 1.8} (canonical GPU names)."""
    out: dict[str, float] = {}
    if not text:
        return out
    given: dict[str, str] = {}
    for part in str(text).split(","):
        if not part.strip():
            raise PerfModelError(f"--prices: empty item in '{text}' (e.g. h100=3.0,a100=1.8)")
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise PerfModelError(f"--prices: expected GPU=USD_PER_HOUR, got '{part.strip()}'")
        try:
            price = float(value)
        except ValueError:
            raise PerfModelError(f"--prices: cannot read '{value.strip()}' as a price") from None
        if not (np.isfinite(price) and price > 0):
            raise PerfModelError(f"--prices: price for {name.strip()} must be positive")
        canonical = load_gpu(name.strip()).name
        if canonical in out:
            raise PerfModelError(
                f"--prices: {canonical} priced twice ('{given[canonical]}' and '{part.strip()}'); "
                "give one price per GPU"
            )
        out[canonical], given[canonical] = price, part.strip()
    return out
