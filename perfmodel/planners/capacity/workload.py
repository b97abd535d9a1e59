"""Capacity inputs: the workload (fixed lengths or a trace file) and GPU prices."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from perfmodel.errors import PerfModelError
from perfmodel.specs.hardware import load_gpu

WORKLOAD_MAX_BYTES = 50_000_000
WORKLOAD_MAX_ROWS = 1_000_000
WORKLOAD_COLUMNS = ("prompt_len", "output_len", "arrival_time")


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


def fixed_workload(qps: float, prompt_len: float, output_len: float) -> Workload:
    if not (np.isfinite(qps) and qps > 0):
        raise PerfModelError(f"--qps must be positive, got {qps}")
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
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, nrows=WORKLOAD_MAX_ROWS + 1)
        elif suffix in (".jsonl", ".ndjson"):
            frame = pd.read_json(path, lines=True, nrows=WORKLOAD_MAX_ROWS + 1)
        else:
            raise PerfModelError(f"{path}: workload must be .csv or .jsonl")
    except (ValueError, pd.errors.ParserError) as exc:
        raise PerfModelError(f"{path}: cannot parse ({str(exc).splitlines()[0][:120]})") from None
    if len(frame) > WORKLOAD_MAX_ROWS:
        raise PerfModelError(f"{path}: more than {WORKLOAD_MAX_ROWS} rows; sample it first")
    missing = [c for c in WORKLOAD_COLUMNS if c not in frame.columns]
    if missing:
        raise PerfModelError(
            f"{path}: missing column(s) {', '.join(missing)} (need {', '.join(WORKLOAD_COLUMNS)})"
        )
    cols = {}
    for c in WORKLOAD_COLUMNS:
        v = pd.to_numeric(frame[c], errors="coerce").to_numpy(float)
        if not np.all(np.isfinite(v)):
            raise PerfModelError(f"{path}: column '{c}' has non-numeric or missing values")
        cols[c] = v
    if len(frame) < 2:
        raise PerfModelError(f"{path}: need at least 2 requests")
    if np.any(cols["prompt_len"] < 1) or np.any(cols["output_len"] < 1):
        raise PerfModelError(f"{path}: prompt_len and output_len must be >= 1")
    t = np.sort(cols["arrival_time"])
    span = t[-1] - t[0]
    if qps is None:
        if span <= 0:
            raise PerfModelError(f"{path}: arrival_time spans no time; pass --qps")
        qps = (t.size - 1) / span
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
    for part in str(text).split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise PerfModelError(f"--prices: expected GPU=USD_PER_HOUR, got '{part.strip()}'")
        try:
            price = float(value)
        except ValueError:
            raise PerfModelError(f"--prices: cannot read '{value.strip()}' as a price") from None
        if not (np.isfinite(price) and price > 0):
            raise PerfModelError(f"--prices: price for {name.strip()} must be positive")
        out[load_gpu(name.strip()).name] = price
    return out
