"""Pure functions over what vLLM hands back: per-request metrics, counters, the engine's
own configuration, and why a measured point is not one clean prefill step.

Field names read from the vllm 0.26.0 and 0.33.0 wheels: RequestOutput.metrics is a V1
RequestStateStats (queued_ts, scheduled_ts, first_token_ts, last_token_ts,
num_generation_tokens; vllm/v1/metrics/stats.py stamps first_token_ts with the engine-core
timestamp of the step that produced it); ``LLM.llm_engine.vllm_config`` holds model_config
(dtype, quantization), cache_config (cache_dtype: "auto" = the model dtype) and
scheduler_config (max_num_seqs, max_num_batched_tokens, async_scheduling). Each works on
objects or on dicts with those names, so CI tests them without vLLM.
"""

from __future__ import annotations

import math
from typing import Any

from perfmodel.errors import PerfModelError
from perfmodel.specs.units import plural
from profiler.runner import Point

# RequestStateStats timestamps default to 0.0 in both versions: 0.0 means "never recorded"
TIMESTAMP_FIELDS = ("scheduled_ts", "first_token_ts", "last_token_ts")
# a CUDA fault leaves the process's CUDA context unusable: no new engine can start in it
CUDA_FAULTS = (
    "illegal memory access",
    "device-side assert",
    "unspecified launch failure",
    "misaligned address",
    "cuda error: an illegal instruction",
)


def is_cuda_fault(message: str) -> bool:
    """Does an error message name a fault that poisons the CUDA context of the process?"""
    text = message.lower()
    return any(fault in text for fault in CUDA_FAULTS)


def _field(obj: Any, name: str) -> Any:
    """obj.name or obj[name] (RequestOutput objects and their JSON recordings alike)."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def parse_request_metrics(outputs: list[Any]) -> dict[str, float]:
    """Per-batch timings from vLLM RequestOutputs (V1 RequestStateStats in ``.metrics``).

    Returns, in seconds:
      ttft_batch_s:  time until every request has its first token
                     = max(first_token_ts) - min(scheduled_ts)  (the batch's prefill time)
      ttft_mean_s:   mean over requests of first_token_ts - scheduled_ts
      ttft_max_s:    max over requests of first_token_ts - scheduled_ts
      tpot_mean_s:   mean over requests of (last_token_ts - first_token_ts) / (n_gen - 1)
                     (NaN when every request generated a single token)
      queue_mean_s:  mean over requests of scheduled_ts - queued_ts
      scheduled_steps: number of distinct scheduled_ts values (the V1 scheduler stamps all
                     requests of one schedule() call with one timestamp)
      first_token_steps: number of distinct first_token_ts values; 1 when every request got
                     its first token from one engine step (vllm/v1/metrics/stats.py stamps
                     first_token_ts with the engine-core timestamp of the step's outputs)
      num_requests, num_generation_tokens (mean)

    A missing field or one left at its default (0.0 for the timestamps, 0 generated tokens)
    raises: it means the engine did not record stats.
    """
    if not outputs:
        raise PerfModelError("vLLM returned no request outputs")
    scheduled, first, prefill, decode, queue, gen = [], [], [], [], [], []
    for out in outputs:
        stats = _field(out, "metrics")
        if stats is None:
            raise PerfModelError(
                "vLLM RequestOutput.metrics is None: create the LLM with disable_log_stats=False"
            )
        sched, first_ts, last_ts = (_field(stats, name) for name in TIMESTAMP_FIELDS)
        n_gen = _field(stats, "num_generation_tokens")
        if not all((sched, first_ts, last_ts, n_gen)):  # None, or the real default 0 / 0.0
            raise PerfModelError(
                "vLLM RequestOutput.metrics lacks scheduled_ts/first_token_ts/last_token_ts/"
                "num_generation_tokens (a V1 RequestStateStats is expected; vllm >= 0.26)"
            )
        sched, first_ts, last_ts, n_gen = float(sched), float(first_ts), float(last_ts), int(n_gen)
        scheduled.append(sched)
        first.append(first_ts)
        prefill.append(first_ts - sched)
        gen.append(n_gen)
        if n_gen > 1:
            decode.append((last_ts - first_ts) / (n_gen - 1))
        queued = _field(stats, "queued_ts")
        if queued:
            queue.append(sched - float(queued))
    n = len(prefill)
    return {
        "num_requests": n,
        "ttft_batch_s": max(first) - min(scheduled),
        "ttft_mean_s": sum(prefill) / n,
        "ttft_max_s": max(prefill),
        "tpot_mean_s": sum(decode) / len(decode) if decode else math.nan,
        "queue_mean_s": sum(queue) / len(queue) if queue else math.nan,
        "scheduled_steps": len(set(scheduled)),
        "first_token_steps": len(set(first)),
        "num_generation_tokens": sum(gen) / n,
    }


def counter_total(metrics: list[Any], prefix: str) -> float:
    """Sum of the counters in an ``llm.get_metrics()`` snapshot whose name starts with prefix."""
    total = 0.0
    for metric in metrics or []:
        name = str(_field(metric, "name") or "")
        value = _field(metric, "value")
        if name.startswith(prefix) and isinstance(value, int | float):
            total += float(value)
    return total


def split_note(
    parsed: dict[str, float], point: Point, token_budget: int | None = None, preemptions=0
) -> str:
    """Why a measured batch is not one prefill step with undisturbed decodes ("" when it is):
    requests scheduled in different steps, first tokens from different steps, a prefill
    larger than the per-step token budget (chunked: a batch of one chunked over several steps
    still has one scheduled_ts and one first_token_ts), or any preemption."""
    why = []
    steps = int(parsed["scheduled_steps"])
    if steps > 1:
        why.append(f"{plural(point.batch_size, 'request')} scheduled over {steps} engine steps")
    first = int(parsed.get("first_token_steps", 1))
    if first > 1:
        why.append(f"their first tokens came from {first} engine steps")
    tokens = point.batch_size * point.prompt_len
    if token_budget is not None and tokens > token_budget:
        why.append(f"batch x prompt = {tokens} tokens > max_num_batched_tokens {token_budget}")
    if preemptions and preemptions > 0:
        why.append(f"{plural(int(preemptions), 'preemption')} during the point")
    if not why:
        return ""
    return (
        "split: " + "; ".join(why) + ", so ttft_s/tpot_s are not one prefill step and clean "
        "decode steps (too little KV space, --max-num-seqs or --max-num-batched-tokens below "
        "the batch, or requests reaching a running engine)"
    )


def engine_readback(llm: Any) -> dict[str, object]:
    """What the engine actually runs with, read from ``llm.llm_engine.vllm_config``:
    dtype_used (the weights' torch dtype), quantization_used, kv_cache_dtype_used ("auto"
    resolved to the model dtype), async_scheduling_used, max_num_seqs, max_num_batched_tokens.
    Empty when the engine exposes no vllm_config."""
    config = _field(_field(llm, "llm_engine"), "vllm_config")
    if config is None:
        return {}
    model, cache, sched = (
        _field(config, k) for k in ("model_config", "cache_config", "scheduler_config")
    )
    out: dict[str, object] = {}
    dtype = _field(model, "dtype")
    if dtype is not None:
        out["dtype_used"] = str(dtype).removeprefix("torch.")
    out["quantization_used"] = _field(model, "quantization")
    kv = _field(cache, "cache_dtype")
    if kv is not None:
        out["kv_cache_dtype_used"] = out.get("dtype_used") if str(kv) == "auto" else str(kv)
    for key in ("async_scheduling", "max_num_seqs", "max_num_batched_tokens"):
        value = _field(sched, key)
        if value is not None:
            out[f"{key}_used" if key == "async_scheduling" else key] = value
    return out
