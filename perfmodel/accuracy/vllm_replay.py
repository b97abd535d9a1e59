"""Replay a `vllm bench serve` run through the engine simulator and compare with what it measured.

The same requests (the file's per-request lengths; without --save-detailed every request
gets the mean lengths total_input_tokens / completed and total_output_tokens / completed),
the same arrival process as vllm/benchmarks/serve.py `get_request()` (request_rate inf: all
at t = 0; otherwise gamma intervals of shape `burstiness` and scale 1 / (rate * burstiness),
cumulated and rescaled so the last one lands at n / rate; seeded here, so the draws differ
from the run's), the same client `max_concurrency`, through planners.capacity.simulate's
engine with vLLM V1 scheduling (mixed steps, chunked prefill, `max_num_seqs`,
`max_num_batched_tokens`; vLLM's server defaults for the GPU unless the file's metadata or
the caller give them). Step times come from the core cost model (inference.prefill_time and
decode_step_time on grids, interpolated): a step with prefill chunks and decodes is one pass
over all its tokens (GEMMs see P + n rows, the weights are read once) plus the decodes' KV
reads D(n, ctx) - D(n, 0) and their sampling (per_token_us each).
Data parallelism (num_gpus > tp * pp): requests go round-robin to the replicas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from perfmodel.accuracy.vllm_bench import LatencyResult, ServeResult
from perfmodel.core.deployment import Deployment
from perfmodel.core.inference import decode_step_time, prefill_time
from perfmodel.core.memory import kv_bytes_per_token_per_gpu, usable_bytes, weight_bytes_per_gpu
from perfmodel.errors import PerfModelError
from perfmodel.planners.capacity.simulate import EngineConfig, EngineRun, simulate_engine
from perfmodel.specs.units import plural

REPLAY_SEED = 0
GiB = 2**30
# (key, what): the quantities compared, under the file's own names and units
COMPARED = (
    ("mean_ttft_ms", "mean TTFT"),
    ("median_ttft_ms", "median TTFT"),
    ("p99_ttft_ms", "p99 TTFT"),
    ("mean_tpot_ms", "mean TPOT"),
    ("mean_itl_ms", "mean ITL"),
    ("request_throughput", "request throughput (req/s)"),
    ("output_throughput", "output throughput (tok/s)"),
    ("avg_latency_s", "mean batch latency (s)"),
)


@dataclass(frozen=True)
class EngineSetup:
    """vLLM scheduler settings of the replayed server and where they come from."""

    max_num_seqs: int
    max_num_batched_tokens: int
    chunked_prefill: bool = True
    source: str = ""

    def as_dict(self) -> dict:
        return {
            "max_num_seqs": self.max_num_seqs,
            "max_num_batched_tokens": self.max_num_batched_tokens,
            "chunked_prefill": self.chunked_prefill,
            "source": self.source,
        }


def server_defaults(dep: Deployment) -> EngineSetup:
    """`vllm serve` defaults (EngineArgs._set_default_max_num_seqs_and_batched_tokens_args,
    0.26.0 and 0.33.0, OPENAI_API_SERVER): >= 70 GiB per GPU and not an A100: 8192 tokens and
    1024 sequences (0.33: 16384 from 160 GiB); else 2048 and 256. Chunked prefill is on."""
    mem = dep.gpu.hbm_bytes
    big = mem >= 70 * GiB and "a100" not in dep.gpu.name.lower()
    tokens, seqs = (8192, 1024) if big else (2048, 256)
    return EngineSetup(
        seqs, tokens, True, f"vllm serve 0.26/0.33 defaults for {dep.gpu.name} (chunked prefill)"
    )


def arrival_times(n: int, rate: float, burstiness: float, seed: int = REPLAY_SEED) -> np.ndarray:
    """Send times (s) as vllm/benchmarks/serve.py get_request() draws them (see module doc)."""
    if math.isinf(rate):
        return np.zeros(n)
    rng = np.random.default_rng(seed)
    if math.isinf(burstiness):
        gaps = np.full(n, 1.0 / rate)
    else:
        gaps = rng.gamma(shape=burstiness, scale=1.0 / (rate * burstiness), size=n)
    t = np.cumsum(gaps)
    return t * (n / rate) / t[-1] if t[-1] > 0 else t


@dataclass(frozen=True)
class StepGrid:
    """Step times of one deployment on grids, interpolated (the simulator's step cost)."""

    n: np.ndarray
    tokens: np.ndarray
    ctx: np.ndarray
    decode: np.ndarray  # [n, ctx]
    prefill: np.ndarray  # [tokens, ctx]
    per_token_s: float

    def __call__(self, pt: float, pctx: float, nd: int, dctx: float) -> float:
        if pt <= 0:
            return _interp2(self.n, self.ctx, self.decode, nd, dctx)
        t = _interp2(self.tokens, self.ctx, self.prefill, pt + nd, pctx)
        if nd == 0:
            return t
        kv = _interp2(self.n, self.ctx, self.decode, nd, dctx) - _interp2(
            self.n, self.ctx, self.decode, nd, 0.0
        )
        return t + kv + nd * self.per_token_s


def _interp2(xg, yg, z, x, y) -> float:
    i = int(np.clip(np.searchsorted(xg, x) - 1, 0, len(xg) - 2))
    fx = (x - xg[i]) / (xg[i + 1] - xg[i])
    lo = np.interp(y, yg, z[i])
    hi = np.interp(y, yg, z[i + 1])
    return float(lo + fx * (hi - lo))


def step_grid(dep: Deployment, max_tokens: float, max_seqs: int, max_ctx: float) -> StepGrid:
    """Decode steps D(n, ctx) and prefill passes P(tokens, cached) on grids (two vectorized
    calls of the core model)."""
    n = np.unique(np.r_[np.arange(1, 33), np.geomspace(32, max(max_seqs, 33), 24).round()])
    tokens = np.unique(np.r_[1, np.geomspace(1, max_tokens + max_seqs, 40).round()])
    ctx = np.linspace(0.0, max(max_ctx, 1.0), 9)
    dec = np.asarray(decode_step_time(dep, n[:, None], ctx[None, :]), float)
    pre = np.asarray(prefill_time(dep, 1.0, tokens[:, None], ctx[None, :]), float)
    return StepGrid(n, tokens, ctx, dec, pre, dep.profile.per_token_us * 1e-6)


def kv_token_capacity(dep: Deployment) -> float:
    """Tokens of KV cache one replica holds: (usable HBM - weights) / KV bytes per token."""
    free = usable_bytes(dep) - weight_bytes_per_gpu(dep)
    return max(free, 0.0) / kv_bytes_per_token_per_gpu(dep)


@dataclass(frozen=True)
class Replay:
    """Predicted vs measured for one vLLM benchmark file."""

    path: str
    deployment: str
    profile: str
    setup: EngineSetup
    requests: int
    lengths: str  # where the request lengths came from
    arrivals: str
    seed: int
    predicted: dict[str, float]
    measured: dict[str, float]
    notes: tuple[str, ...] = field(default=())

    def rows(self) -> list[dict]:
        out = []
        for key, what in COMPARED:
            if key in self.predicted and key in self.measured and self.measured[key] > 0:
                p, m = self.predicted[key], self.measured[key]
                out.append(
                    {"quantity": key, "what": what, "predicted": p, "measured": m,
                     "error": p / m - 1.0}
                )  # fmt: skip
        return out

    def as_dict(self) -> dict:
        return {
            "file": self.path,
            "deployment": self.deployment,
            "profile": self.profile,
            "engine": self.setup.as_dict(),
            "requests": self.requests,
            "lengths": self.lengths,
            "arrivals": self.arrivals,
            "seed": self.seed,
            "rows": self.rows(),
            "notes": list(self.notes),
        }


def check_scale(result: ServeResult | LatencyResult, dep: Deployment, longest: float) -> None:
    """Refuse a model whose context window cannot hold the file's longest request."""
    limit = dep.model.max_position_embeddings
    if longest > limit:
        raise PerfModelError(
            f"{result.path}: requests of up to {int(longest)} tokens exceed the "
            f"{limit}-token context of {dep.model.name}: the file was not measured with this "
            "model; give the right --model"
        )


def _lengths(result: ServeResult) -> tuple[np.ndarray, np.ndarray, str]:
    if result.detailed:
        ok = result.success
        return (
            result.input_lens[ok],
            result.output_lens[ok],
            "per request, from the file (completed requests)",
        )
    n = result.completed
    p = round(result.total_input_tokens / n)
    o = round(result.total_output_tokens / n)
    return (
        np.full(n, float(p)),
        np.full(n, float(o)),
        f"mean lengths {p} in / {o} out for all {n} requests (file without --save-detailed)",
    )


def run_engine(dep, arrivals, prompts, outputs, setup: EngineSetup, max_concurrency) -> EngineRun:
    """Simulate the requests on dep's replicas (round-robin), merged into one EngineRun."""
    grid = step_grid(
        dep, setup.max_num_batched_tokens, setup.max_num_seqs, float(np.max(prompts + outputs))
    )
    config = EngineConfig(
        max_num_seqs=setup.max_num_seqs,
        max_num_batched_tokens=setup.max_num_batched_tokens,
        chunked_prefill=setup.chunked_prefill,
        mixed=True,
        kv_tokens=kv_token_capacity(dep),
        max_steps=2_000_000,
    )
    reps = dep.replicas
    if reps == 1 or max_concurrency is not None:
        # one client semaphore in front of all replicas: replay them as one engine only
        # when there is one replica
        if reps > 1:
            raise PerfModelError(
                "a max_concurrency run on several data-parallel replicas is not replayed; "
                "give --num-gpus = tp x pp"
            )
        config = _with(config, max_concurrency=max_concurrency)
        return simulate_engine(arrivals, prompts, outputs, grid, config)
    parts = [
        (idx, simulate_engine(arrivals[idx], prompts[idx], outputs[idx], grid, config))
        for idx in (np.arange(r, len(arrivals), reps) for r in range(reps))
    ]
    n = len(arrivals)
    cols = {k: np.full(n, np.nan) for k in ("send_s", "first_token_s", "finish_s")}
    for idx, run in parts:
        for k in cols:
            cols[k][idx] = getattr(run, k)
    return EngineRun(
        np.asarray(arrivals, float),
        cols["send_s"],
        cols["first_token_s"],
        cols["finish_s"],
        sum(r.steps for _, r in parts),
        all(r.complete for _, r in parts),
    )


def _with(config: EngineConfig, **kw) -> EngineConfig:
    from dataclasses import replace

    return replace(config, **kw)


def predicted_summary(run: EngineRun, outputs: np.ndarray) -> dict[str, float]:
    """The writer's summaries of the simulated run (ms, req/s, tok/s)."""
    ttft = run.ttft_s
    many = outputs > 1
    span = run.finish_s - run.first_token_s
    tpot = span[many] / (outputs[many] - 1)
    itl = span[many].sum() / max((outputs[many] - 1).sum(), 1)
    duration = float(np.max(run.finish_s))
    return {
        "mean_ttft_ms": float(np.mean(ttft) * 1000),
        "median_ttft_ms": float(np.median(ttft) * 1000),
        "p99_ttft_ms": float(np.percentile(ttft, 99) * 1000),
        "mean_tpot_ms": float(np.mean(tpot) * 1000) if tpot.size else 0.0,
        "mean_itl_ms": float(itl * 1000),
        "mean_e2el_ms": float(np.mean(run.latency_s) * 1000),
        "request_throughput": len(outputs) / duration,
        "output_throughput": float(outputs.sum()) / duration,
        "duration_s": duration,
    }


def replay_serve(
    result: ServeResult, dep: Deployment, setup: EngineSetup | None = None, seed: int = REPLAY_SEED
) -> Replay:
    """Predict the run the file measured (module docstring) and pair it with the file's
    summaries."""
    if result.ramp_up:
        raise PerfModelError(
            f"{result.path}: measured with --ramp-up-strategy {result.ramp_up}: a changing "
            "request rate is not replayed"
        )
    setup = setup or server_defaults(dep)
    prompts, outputs, lengths = _lengths(result)
    check_scale(result, dep, float(np.max(prompts + outputs)))
    n = len(prompts)
    arrivals = arrival_times(n, result.request_rate, result.burstiness, seed)
    run = run_engine(dep, arrivals, prompts, outputs, setup, result.max_concurrency)
    notes = []
    if not run.complete:
        raise PerfModelError(
            f"{result.path}: the replay did not finish every request (a prompt longer than "
            "max_num_batched_tokens without chunked prefill, or over the step limit)"
        )
    if result.failed:
        notes.append(f"{plural(result.failed, 'failed request')} in the file not replayed")
    if result.writer.startswith("benchmarks/"):
        notes.append(
            "2024 client: the server may have run vLLM's V0 scheduler; replayed with V1 "
            "scheduling and the settings shown (give --max-num-seqs / --max-num-batched-tokens)"
        )
    rate = (
        "inf (all sent at t = 0)"
        if math.isinf(result.request_rate)
        else (f"{result.request_rate:g} req/s, gamma burstiness {result.burstiness:g}, seed {seed}")
    )
    conc = f", max concurrency {result.max_concurrency}" if result.max_concurrency else ""
    return Replay(
        result.path,
        dep.describe(),
        dep.profile.name,
        setup,
        n,
        lengths,
        rate + conc,
        seed,
        predicted_summary(run, outputs),
        dict(result.summary),
        tuple(notes),
    )


def latency_defaults(dep: Deployment) -> EngineSetup:
    """The scheduler `vllm bench latency` runs: the offline LLM class's defaults (16384
    tokens and 1024 sequences per step on >= 70 GiB GPUs but A100, else 8192 and 256),
    not the server's."""
    d = server_defaults(dep)
    tokens = 16384 if d.max_num_batched_tokens >= 8192 else 8192
    return EngineSetup(1024 if tokens == 16384 else 256, tokens, True,
                       f"vllm LLM-class 0.26/0.33 defaults for {dep.gpu.name}")  # fmt: skip


def replay_latency(
    result: LatencyResult,
    dep: Deployment,
    batch: int,
    prompt_len: int,
    output_len: int,
    setup: EngineSetup | None = None,
) -> Replay:
    """`vllm bench latency`: one batch of `batch` requests at t = 0, timed to the last token
    (the offline LLM class: 16384 tokens per step on >= 70 GiB GPUs but A100, else 8192)."""
    setup = latency_defaults(dep) if setup is None else setup
    check_scale(result, dep, prompt_len + output_len)
    p = np.full(batch, float(prompt_len))
    o = np.full(batch, float(output_len))
    run = run_engine(dep, np.zeros(batch), p, o, setup, None)
    predicted = {"avg_latency_s": float(np.max(run.finish_s))}
    measured = {"avg_latency_s": result.avg_latency_s}
    return Replay(
        result.path, dep.describe(), dep.profile.name, setup, batch,
        f"given: batch {batch}, {prompt_len} in / {output_len} out", "one batch at t = 0",
        0, predicted, measured,
    )  # fmt: skip
