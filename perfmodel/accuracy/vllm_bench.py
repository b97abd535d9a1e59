"""vLLM's own benchmark results as data: `vllm bench serve --save-result` and `vllm bench
latency --output-json` JSON files, read into typed results.

Read from the writers' source (vllm 0.26.0 and 0.33.0 wheels, vllm/benchmarks/serve.py
`benchmark()` and `main_async()`, vllm/benchmarks/latency.py `main()`; the 2024
benchmarks/benchmark_serving.py writes the same keys with `request_goodput:` misspelt and no
`failed`; its early-2024 versions wrote `request_inthroughput` and no per-request lists):
- setup: date ("%Y%m%d-%H%M%S"), model_id, tokenizer_id, num_prompts, `--metadata KEY=VALUE`
  pairs as top-level string keys, request_rate (a number or the string "inf"), burstiness
  (gamma shape; 1 = Poisson), max_concurrency (null = unlimited);
- results: duration (s, benchmark start to last response), completed, failed (0.26+),
  total_input_tokens (successful requests only), total_output_tokens, request_throughput
  (completed / duration, req/s), output_throughput (sum of output_lens / duration, tok/s),
  mean/median/std/pNN of ttft, tpot, itl (and e2el when asked for) in milliseconds;
- per request (kept only with --save-detailed since 0.26; always in the old script), failed
  requests included: input_lens, output_lens (0 when failed), ttfts (s, from the send: a
  request waiting for a --max-concurrency slot is not yet timed), itls (s, list per request),
  errors ("" on success); 0.33 adds latencies and queue_times (s). The writer computes
  TPOT = (latency - ttft) / (output_len - 1) for output_len > 1, with latency = ttft + the sum
  of its itls (the last chunk's time), and ITL over all gaps of all successful requests.
- latency: avg_latency (s), latencies (s per iteration of one batch), percentiles
  {"10", "25", "50", "75", "90", "99": s}; model_id since 0.33. Batch size and lengths are not
  in the file (give them as options).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from perfmodel.errors import PerfModelError
from perfmodel.specs import inputs

MAX_BYTES = 200_000_000
SERVE_KEYS = (
    "duration",
    "completed",
    "total_input_tokens",
    "total_output_tokens",
    "request_throughput",
    "output_throughput",
    "num_prompts",
    "request_rate",
)
PER_REQUEST_KEYS = ("input_lens", "output_lens", "ttfts", "itls")
LATENCY_KEYS = ("avg_latency", "latencies", "percentiles")
SUMMARY_METRICS = ("ttft", "tpot", "itl", "e2el")
# keys the runs' own setup writes; every other string-valued top-level key is --metadata
SETUP_KEYS = {
    "date", "endpoint_type", "backend", "label", "model_id", "tokenizer_id", "num_prompts",
    "request_rate", "burstiness", "max_concurrency", "ramp_up_strategy", "version",
}  # fmt: skip
REL_TOL = 1e-6  # summaries recomputed from the arrays must agree this closely


@dataclass(frozen=True)
class ServeResult:
    """One `vllm bench serve` (or benchmark_serving.py) result; times in seconds."""

    path: str
    writer: str
    model_id: str
    date: str
    num_prompts: int
    request_rate: float  # inf: every request sent at t = 0
    burstiness: float
    max_concurrency: int | None
    duration_s: float
    completed: int
    failed: int
    total_input_tokens: int
    total_output_tokens: int
    summary: dict[str, float]  # the file's own summaries, as written (ms, req/s, tok/s)
    metadata: dict[str, str] = field(default_factory=dict)
    ramp_up: str = ""  # --ramp-up-strategy (linear | exponential): the rate changed over the run
    input_lens: np.ndarray | None = None  # per request, failed ones included
    output_lens: np.ndarray | None = None
    ttfts_s: np.ndarray | None = None
    itls_s: tuple[np.ndarray, ...] | None = None
    success: np.ndarray | None = None
    latencies_s: np.ndarray | None = None

    @property
    def detailed(self) -> bool:
        return self.input_lens is not None


@dataclass(frozen=True)
class LatencyResult:
    """One `vllm bench latency --output-json` result: seconds per batch run."""

    path: str
    model_id: str
    avg_latency_s: float
    latencies_s: np.ndarray
    percentiles_s: dict[int, float]


def read_vllm_result(path) -> ServeResult | LatencyResult:
    """Parse and check a vLLM benchmark JSON; PerfModelError (one line) on anything else."""
    path = Path(path)
    data = _load(path)
    if "request_inthroughput" in data and "request_throughput" not in data:  # early 2024
        data["request_throughput"] = data["request_inthroughput"]
    if all(k in data for k in LATENCY_KEYS):
        return _latency(path, data)
    if "request_throughput" not in data or "duration" not in data:
        raise PerfModelError(
            f"{path}: not a vLLM benchmark result (expected the keys of `vllm bench serve "
            "--save-result`, e.g. duration, completed, request_throughput, or of `vllm bench "
            "latency --output-json`: avg_latency, latencies, percentiles)"
        )
    return _serve(path, data)


def is_vllm_json(path) -> bool:
    return Path(path).suffix.lower() == ".json"


def _load(path: Path) -> dict:
    if not path.is_file():
        raise PerfModelError(f"{path}: file not found")
    if path.stat().st_size > MAX_BYTES:
        raise PerfModelError(f"{path}: over {MAX_BYTES // 1_000_000} MB; not a benchmark result")
    text = inputs.read_text(path, "vLLM benchmark JSON", MAX_BYTES)  # UTF-8/16; binary refused
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        hint = (
            " (several results appended by --append-result: keep one per file)"
            if exc.msg == "Extra data"
            else ""
        )
        raise PerfModelError(
            f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}{hint}"
        ) from None
    except (ValueError, RecursionError) as exc:  # 5000-digit integers, deep nesting
        raise PerfModelError(f"{path}: unreadable JSON ({str(exc)[:80]})") from None
    if not isinstance(data, dict):
        raise PerfModelError(f"{path}: not a vLLM benchmark result (a JSON object is expected)")
    return data


def _number(path: Path, data: dict, key: str, integer: bool = False) -> float:
    value = data.get(key)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(inputs.to_float(value))  # 10**400 is inf here, not an error
    ):
        raise PerfModelError(f"{path}: key '{key}' must be a finite number, got {value!r}")
    if integer and value != int(value):
        raise PerfModelError(f"{path}: key '{key}' must be an integer, got {value!r}")
    return int(value) if integer else float(value)


def _rate(path: Path, value) -> float:
    if value == "inf":
        return math.inf
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    raise PerfModelError(
        f"{path}: key 'request_rate' must be a positive number or \"inf\", got {value!r}"
    )


def _serve(path: Path, data: dict) -> ServeResult:
    missing = [k for k in SERVE_KEYS if k not in data]
    if missing:
        raise PerfModelError(
            f"{path}: missing key(s) {', '.join(missing)} of a vllm bench serve result"
        )
    completed = _number(path, data, "completed", integer=True)
    failed = _number(path, data, "failed", integer=True) if "failed" in data else None
    burst = data.get("burstiness", 1.0)
    if isinstance(burst, bool) or not isinstance(burst, int | float) or not burst > 0:
        raise PerfModelError(f"{path}: key 'burstiness' must be a positive number, got {burst!r}")
    conc = data.get("max_concurrency")
    if conc is not None and (isinstance(conc, bool) or not isinstance(conc, int) or conc < 1):
        raise PerfModelError(f"{path}: key 'max_concurrency' must be null or an integer >= 1")
    summary = {
        k: float(v)
        for k, v in data.items()
        if isinstance(v, int | float)
        and not isinstance(v, bool)
        and (k in ("request_throughput", "output_throughput", "total_token_throughput")
             or any(k.endswith(f"_{m}_ms") for m in SUMMARY_METRICS))
    }  # fmt: skip
    writer = (
        "benchmarks/benchmark_serving.py (2024 format)"
        if "request_goodput:" in data or "best_of" in data or "failed" not in data
        else "vllm bench serve (0.33 format)"
        if "latencies" in data or "queue_times" in data
        else "vllm bench serve (0.26 format)"
    )
    metadata = {
        k: v for k, v in data.items() if isinstance(v, str) and k not in SETUP_KEYS and k != "date"
    }
    fields = {
        "path": str(path),
        "writer": writer,
        "model_id": str(data.get("model_id", "")),
        "date": str(data.get("date", "")),
        "num_prompts": _number(path, data, "num_prompts", integer=True),
        "request_rate": _rate(path, data["request_rate"]),
        "burstiness": float(burst),
        "max_concurrency": conc,
        "duration_s": _number(path, data, "duration"),
        "completed": completed,
        "failed": failed if failed is not None else 0,
        "total_input_tokens": _number(path, data, "total_input_tokens", integer=True),
        "total_output_tokens": _number(path, data, "total_output_tokens", integer=True),
        "summary": summary,
        "metadata": metadata,
        "ramp_up": str(data.get("ramp_up_strategy") or ""),
    }
    if fields["duration_s"] <= 0 or completed < 1:
        raise PerfModelError(f"{path}: no completed request (completed {completed})")
    present = [k for k in PER_REQUEST_KEYS if k in data]
    if present:
        fields |= _per_request(path, data, present, completed, failed)
    result = ServeResult(**fields)
    _check_counts(result)
    return result


def _per_request(path: Path, data: dict, present, completed: int, failed: int | None) -> dict:
    absent = [k for k in PER_REQUEST_KEYS if k not in present]
    if absent:
        raise PerfModelError(
            f"{path}: per-request key(s) {', '.join(present)} without {', '.join(absent)}"
        )
    lists = {k: data[k] for k in PER_REQUEST_KEYS}
    for k, v in lists.items():
        if not isinstance(v, list):
            raise PerfModelError(f"{path}: key '{k}' must be a list")
    n = len(lists["input_lens"])
    for k in (*PER_REQUEST_KEYS, "errors", "latencies"):
        if k in data and isinstance(data[k], list) and len(data[k]) != n:
            raise PerfModelError(
                f"{path}: '{k}' has {len(data[k])} entries but 'input_lens' has {n}"
            )
    try:
        inp = np.asarray(lists["input_lens"], float)
        out = np.asarray(lists["output_lens"], float)
        ttft = np.asarray(lists["ttfts"], float)
        itls = tuple(np.asarray(x, float).reshape(-1) for x in lists["itls"])
        lat = np.asarray(data["latencies"], float) if "latencies" in data else None
    except (TypeError, ValueError):
        raise PerfModelError(f"{path}: per-request lists must hold numbers") from None
    arrays = [inp, out, ttft, *itls] + ([lat] if lat is not None else [])
    if any(not np.all(np.isfinite(a)) or np.any(a < 0) for a in arrays):
        raise PerfModelError(f"{path}: per-request values must be finite and >= 0")
    if np.any(inp != np.round(inp)) or np.any(out != np.round(out)):
        raise PerfModelError(f"{path}: input_lens and output_lens must be whole token counts")
    if "errors" in data:
        success = np.array([e in ("", None) for e in data["errors"]])
    else:
        success = out > 0
    expected = completed + failed if failed is not None else None
    if expected is not None and n != expected:
        raise PerfModelError(f"{path}: {n} per-request entries but completed + failed = {expected}")
    if int(success.sum()) != completed:
        raise PerfModelError(
            f"{path}: {int(success.sum())} requests without an error but completed = {completed}"
        )
    return {
        "input_lens": inp,
        "output_lens": out,
        "ttfts_s": ttft,
        "itls_s": itls,
        "success": success,
        "latencies_s": lat,
    }


def _check_counts(r: ServeResult) -> None:
    """Totals and rates must agree with the counts they are computed from."""
    rate = r.completed / r.duration_s
    if not math.isclose(r.summary["request_throughput"], rate, rel_tol=REL_TOL):
        raise PerfModelError(
            f"{r.path}: request_throughput {r.summary['request_throughput']:.6g} disagrees "
            f"with completed / duration = {rate:.6g}"
        )
    if not math.isclose(
        r.summary["output_throughput"], r.total_output_tokens / r.duration_s, rel_tol=REL_TOL
    ):
        raise PerfModelError(
            f"{r.path}: output_throughput disagrees with total_output_tokens / duration"
        )
    if not r.detailed:
        return
    if int(r.output_lens.sum()) != r.total_output_tokens:
        raise PerfModelError(
            f"{r.path}: output_lens sum to {int(r.output_lens.sum())} but total_output_tokens "
            f"= {r.total_output_tokens}"
        )
    if int(r.input_lens[r.success].sum()) != r.total_input_tokens:
        raise PerfModelError(
            f"{r.path}: input_lens of the completed requests sum to "
            f"{int(r.input_lens[r.success].sum())} but total_input_tokens = {r.total_input_tokens}"
        )
    mine = summaries_from_requests(r)
    for key, value in mine.items():
        if key in r.summary and not math.isclose(
            r.summary[key], value, rel_tol=REL_TOL, abs_tol=1e-9
        ):
            raise PerfModelError(
                f"{r.path}: '{key}' = {r.summary[key]:.6g} disagrees with {value:.6g} "
                "recomputed from the per-request lists"
            )


def request_latencies_s(r: ServeResult) -> np.ndarray:
    """Per-request latency (s): the file's latencies (0.33), else ttft + the sum of its itls
    (the writer's own definition: the time of the last chunk after the send)."""
    if r.latencies_s is not None:
        return r.latencies_s
    return r.ttfts_s + np.array([x.sum() for x in r.itls_s])


def summaries_from_requests(r: ServeResult, percentiles=(99,)) -> dict[str, float]:
    """The writer's summaries recomputed from the per-request lists (calculate_metrics in
    vllm/benchmarks/serve.py): successful requests only; TPOT over output_len > 1."""
    ok = r.success
    ttft = r.ttfts_s[ok]
    lat = request_latencies_s(r)[ok]
    out = r.output_lens[ok]
    many = out > 1
    tpot = (lat[many] - ttft[many]) / (out[many] - 1)
    itl = np.concatenate([x for x, s in zip(r.itls_s, ok, strict=True) if s] or [np.zeros(0)])
    values = {"ttft": ttft, "tpot": tpot, "itl": itl, "e2el": lat}
    out_d: dict[str, float] = {
        "request_throughput": r.completed / r.duration_s,
        "output_throughput": float(r.output_lens.sum()) / r.duration_s,
    }
    for name, v in values.items():
        v = v if v.size else np.zeros(1)  # the writer's `np.mean(x or 0)`
        out_d[f"mean_{name}_ms"] = float(np.mean(v) * 1000)
        out_d[f"median_{name}_ms"] = float(np.median(v) * 1000)
        out_d[f"std_{name}_ms"] = float(np.std(v) * 1000)
        for p in percentiles:
            out_d[f"p{p}_{name}_ms"] = float(np.percentile(v, p) * 1000)
    return out_d


def _latency(path: Path, data: dict) -> LatencyResult:
    lat = data["latencies"]
    if not isinstance(lat, list) or not lat:
        raise PerfModelError(f"{path}: key 'latencies' must be a non-empty list of seconds")
    try:
        arr = np.asarray(lat, float)
    except (TypeError, ValueError):
        raise PerfModelError(f"{path}: key 'latencies' must hold numbers") from None
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise PerfModelError(f"{path}: key 'latencies' must hold positive seconds")
    avg = _number(path, data, "avg_latency")
    if not math.isclose(avg, float(np.mean(arr)), rel_tol=REL_TOL):
        raise PerfModelError(
            f"{path}: avg_latency {avg:.6g} disagrees with the mean of latencies "
            f"{float(np.mean(arr)):.6g}"
        )
    pct = data["percentiles"]
    if not isinstance(pct, dict):
        raise PerfModelError(f"{path}: key 'percentiles' must be an object")
    try:
        percentiles = {int(k): float(v) for k, v in pct.items()}
    except (TypeError, ValueError):
        raise PerfModelError(f"{path}: key 'percentiles' must map percent to seconds") from None
    return LatencyResult(str(path), str(data.get("model_id", "")), avg, arr, percentiles)
