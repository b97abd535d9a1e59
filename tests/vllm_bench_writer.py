"""Test helper: write benchmark result JSON files laid out exactly as vLLM's writers do.

Followed line by line from vllm/benchmarks/serve.py of the vllm 0.26.0 and 0.33.0 wheels
(`calculate_metrics`, the `result` dict of `benchmark()`, `process_one_metric`, and
`main_async()`'s result_json with --save-result / --save-detailed), from the 2024
benchmarks/benchmark_serving.py (same metrics; `"request_goodput:"` misspelt, `best_of`,
`use_beam_search`, no `failed`, per-request lists always kept) and from
vllm/benchmarks/latency.py (`--output-json`). Requests are simulated, one chunk per token:
each has a send time, a TTFT and a list of inter-token gaps, as the request functions in
vllm/benchmarks/lib/endpoint_request_func.py record them (latency = the last chunk's time).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Output:  # RequestFuncOutput, the fields the metrics use
    prompt_len: int
    output_tokens: int
    ttft: float = 0.0
    itl: list[float] = field(default_factory=list)
    success: bool = True
    error: str = ""
    start_time: float = 0.0
    client_queue_time: float = 0.0

    @property
    def latency(self) -> float:  # most_recent_timestamp - st
        return self.ttft + sum(self.itl) if self.success else 0.0


def synthetic_outputs(n: int, seed: int = 0, failed: int = 0) -> list[Output]:
    """n requests with random lengths and timings; the last `failed` ones failed."""
    rng = np.random.default_rng(seed)
    outs = []
    for i in range(n):
        p, o = int(rng.integers(20, 600)), int(rng.integers(1, 40))
        if i >= n - failed:
            outs.append(Output(p, 0, success=False, error="Bad Request"))
            continue
        itl = [float(x) for x in rng.uniform(0.008, 0.03, o - 1)]
        outs.append(Output(p, o, float(rng.uniform(0.02, 0.4)), itl, start_time=0.1 * i))
    return outs


def calculate_metrics(outputs: list[Output], dur_s: float, percentiles=(99.0,)) -> dict:
    """vllm/benchmarks/serve.py calculate_metrics (tokenizer unused: output_tokens known)."""
    actual_output_lens, total_input, completed = [], 0, 0
    itls, tpots, ttfts, e2els = [], [], [], []
    for out in outputs:
        if out.success:
            output_len = out.output_tokens
            actual_output_lens.append(output_len)
            total_input += out.prompt_len
            if output_len > 1:
                tpots.append((out.latency - out.ttft) / (output_len - 1))
            itls += out.itl
            ttfts.append(out.ttft)
            e2els.append(out.latency)
            completed += 1
        else:
            actual_output_lens.append(0)
    m = {
        "completed": completed,
        "failed": sum(not o.success for o in outputs),
        "total_input": total_input,
        "total_output": sum(actual_output_lens),
        "request_throughput": completed / dur_s,
        "output_throughput": sum(actual_output_lens) / dur_s,
        "total_token_throughput": (total_input + sum(actual_output_lens)) / dur_s,
    }
    for name, values in (("ttft", ttfts), ("tpot", tpots), ("itl", itls), ("e2el", e2els)):
        m[f"mean_{name}_ms"] = np.mean(values or 0) * 1000
        m[f"std_{name}_ms"] = np.std(values or 0) * 1000
        m[f"median_{name}_ms"] = np.median(values or 0) * 1000
        m[f"percentiles_{name}_ms"] = [
            (p, np.percentile(values or 0, p) * 1000) for p in percentiles
        ]
    return m, actual_output_lens


def serve_result(
    outputs: list[Output],
    *,
    writer: str = "0.33",
    duration: float = 12.5,
    request_rate="inf",
    burstiness: float = 1.0,
    max_concurrency: int | None = None,
    model_id: str = "meta-llama/Llama-3.1-8B-Instruct",
    num_prompts: int | None = None,
    metadata: dict | None = None,
    detailed: bool = True,
    metrics=("ttft", "tpot", "itl"),
    percentiles=(99.0,),
) -> dict:
    """The dict json.dump writes: writer '0.33', '0.26' or '2024' (benchmark_serving.py)."""
    m, actual_output_lens = calculate_metrics(outputs, duration, percentiles)
    if writer == "early-2024":  # benchmark_serving.py of early 2024: a typo, no lists
        result = {
            "duration": duration,
            "completed": m["completed"],
            "total_input_tokens": m["total_input"],
            "total_output_tokens": m["total_output"],
            "request_inthroughput": m["request_throughput"],
            "input_throughput": m["total_input"] / duration,
            "output_throughput": m["output_throughput"],
        }
        metrics, percentiles = ("ttft", "tpot"), (99.0,)
    elif writer == "2024":
        result = {
            "duration": duration,
            "completed": m["completed"],
            "total_input_tokens": m["total_input"],
            "total_output_tokens": m["total_output"],
            "request_throughput": m["request_throughput"],
            "request_goodput:": None,
            "output_throughput": m["output_throughput"],
            "total_token_throughput": m["total_token_throughput"],
            "input_lens": [o.prompt_len for o in outputs],
            "output_lens": actual_output_lens,
            "ttfts": [o.ttft for o in outputs],
            "itls": [o.itl for o in outputs],
            "generated_texts": ["x" * o.output_tokens for o in outputs],
            "errors": [o.error for o in outputs],
        }
    else:
        result = {
            "duration": duration,
            "completed": m["completed"],
            "failed": m["failed"],
            "total_input_tokens": m["total_input"],
            "total_output_tokens": m["total_output"],
            "request_throughput": m["request_throughput"],
            "request_goodput": None,
            "output_throughput": m["output_throughput"],
            "total_token_throughput": m["total_token_throughput"],
            "input_lens": [o.prompt_len for o in outputs],
            "output_lens": actual_output_lens,
            "ttfts": [o.ttft for o in outputs],
            "itls": [o.itl for o in outputs],
        }
        if writer == "0.33":
            result["latencies"] = [o.latency for o in outputs]
        result["start_times"] = [o.start_time for o in outputs]
        if writer == "0.33":
            result["queue_times"] = [o.client_queue_time for o in outputs]
        result |= {
            "generated_texts": ["x" * o.output_tokens for o in outputs],
            "errors": [o.error for o in outputs],
            "max_output_tokens_per_s": 0.0,
            "max_concurrent_requests": 1,
            "rtfx": 0.0,
        }
    for name in metrics:  # process_one_metric
        result[f"mean_{name}_ms"] = m[f"mean_{name}_ms"]
        result[f"median_{name}_ms"] = m[f"median_{name}_ms"]
        result[f"std_{name}_ms"] = m[f"std_{name}_ms"]
        for p, value in m[f"percentiles_{name}_ms"]:
            p_word = str(int(p)) if int(p) == p else str(p)
            result[f"p{p_word}_{name}_ms"] = value
    head = {"date": "20260101-120000"}
    if writer in ("2024", "early-2024"):
        head |= {"backend": "vllm", "model_id": model_id, "tokenizer_id": model_id,
                 "best_of": 1, "use_beam_search": False}  # fmt: skip
    else:
        head |= {"endpoint_type": "openai", "backend": "openai", "label": None,
                 "model_id": model_id, "tokenizer_id": model_id}  # fmt: skip
    head["num_prompts"] = num_prompts if num_prompts is not None else len(outputs)
    head |= {k: str(v) for k, v in (metadata or {}).items()}
    head["request_rate"] = request_rate
    head["burstiness"] = burstiness
    head["max_concurrency"] = max_concurrency
    out = {**head, **result}
    if not detailed and writer != "2024":
        for key in ("input_lens", "output_lens", "start_times", "ttfts", "itls",
                    "generated_texts", "errors", "server_queue_times", "server_ttfts"):  # fmt: skip
            out.pop(key, None)
    return out


def latency_result(latencies, writer: str = "0.33", model: str = "meta-llama/Llama-3.1-8B") -> dict:
    """vllm/benchmarks/latency.py --output-json (model_id since 0.33)."""
    arr = np.array(latencies)
    percentages = [10, 25, 50, 75, 90, 99]
    pct = np.percentile(arr, percentages)
    out = {"model_id": model} if writer == "0.33" else {}
    out |= {
        "avg_latency": np.mean(arr),
        "latencies": arr.tolist(),
        "percentiles": dict(zip(percentages, pct.tolist(), strict=True)),
    }
    return out


def write(path, data: dict, indent=None) -> str:
    """json.dump as the writers do (numpy floats become plain floats first)."""
    text = json.dumps(json.loads(json.dumps(data, default=float)), indent=indent)
    path.write_text(text)
    return str(path)


def outputs_of_run(prompts, outputs, run) -> list[Output]:
    """A simulated EngineRun as the client would have recorded it: TTFT from the send, the
    time from the first to the last token spread in equal gaps (one chunk per token)."""
    outs = []
    for p, o, s, ft, f in zip(
        prompts, outputs, run.send_s, run.first_token_s, run.finish_s, strict=True
    ):
        gaps = [float((f - ft) / (o - 1))] * int(o - 1) if o > 1 else []
        outs.append(Output(int(p), int(o), float(ft - s), gaps, start_time=float(s)))
    return outs
