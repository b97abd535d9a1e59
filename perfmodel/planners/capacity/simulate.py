"""One step-level simulator of a serving engine, for the capacity check and the vLLM replay.

`simulate_engine` runs requests through a vLLM-style scheduler one engine step at a time:
- a client sends request i at max(arrival_i, the time a client slot frees) when a maximum
  concurrency C is set (vllm bench serve's semaphore: TTFT is timed from the send, FIFO);
- continuous batching of at most `max_num_seqs` running sequences and a per-step token budget
  `max_num_batched_tokens` (None: unlimited);
- `mixed=True` (vLLM V1, vllm/v1/core/sched/scheduler.py `schedule()`): running requests are
  scheduled first (one decode token each, then the rest of a chunked prefill), then waiting
  requests fill the remaining budget in arrival order; with `chunked_prefill` a prompt longer
  than the budget left is split over steps, without it a prompt that does not fit waits;
- `mixed=False` (prefill-first, vLLM V0 without chunked prefill): a step runs only prefills
  (at most `max_prefills_per_step` whole prompts within the budget) when any can be admitted,
  otherwise one decode step of every running sequence;
- KV cache: a waiting request is admitted only while the running requests' full lengths
  (prompt + output) plus its own fit in `kv_tokens` (no preemption: vLLM admits on the prompt
  and preempts when decodes run out of blocks; reserving the full length never preempts);
- the step that computes a prompt's last token samples its first token (TTFT ends there); each
  later step a sequence takes part in emits one token; a request finishes with its last token.
- decode-only stretches in which nothing can change (no admissible waiting request, no
  chunked prefill in flight) advance k steps at once: k = steps to the first completion or to
  the first step boundary at or after the next send, priced at the mean context over the k
  steps (the step time is linear in the context), so the loop is O(events), not O(tokens).
The capacity check's engine (prefill first, one prompt per step, no budget, KV limit or
client cap) also runs as prefill_first_run, the same run event by event in plain floats
(~8x faster; bit-identical, property-tested against simulate_engine).
Step cost: `step_s(prefill_tokens, prefill_context, n_decode, decode_context)` in seconds
(tokens computed this step, their token-weighted mean cached context; decoding sequences and
their mean context). Returns per-request send, first-token and finish times (seconds).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

SIM_REQUESTS = 1500
SIM_SEED = 0
SIM_MAX_EVENTS = 200_000

StepCost = Callable[[float, float, int, float], float]


@dataclass(frozen=True)
class EngineConfig:
    max_num_seqs: int
    max_num_batched_tokens: float | None = None  # per-step token budget; None = unlimited
    chunked_prefill: bool = False
    mixed: bool = False  # V1: decodes and prefills share a step; False: prefill-first
    max_prefills_per_step: int | None = None  # prefill-first only; None = budget-bound
    max_concurrency: int | None = None  # client-side cap on requests in flight
    kv_tokens: float = math.inf  # KV-cache capacity; a request is admitted only with room
    max_steps: int = SIM_MAX_EVENTS


@dataclass(frozen=True)
class EngineRun:
    """Per-request times (seconds from the start) and whether every request finished."""

    arrival_s: np.ndarray
    send_s: np.ndarray
    first_token_s: np.ndarray
    finish_s: np.ndarray
    steps: int
    complete: bool

    @property
    def ttft_s(self) -> np.ndarray:
        return self.first_token_s - self.send_s

    @property
    def latency_s(self) -> np.ndarray:
        return self.finish_s - self.send_s


def simulate_engine(
    arrivals,
    prompts,
    outputs,
    step_s: StepCost,
    config: EngineConfig,
    decode_context: bool = True,
) -> EngineRun:
    """Step-level simulation (see the module docstring). arrivals sorted ascending (s).
    decode_context=False: step_s ignores its decode-context argument (the capacity check's
    cost reads the batch size only), so the mean context is not computed (0.0 is passed)."""
    arr = np.asarray(arrivals, float)
    p = np.asarray(prompts, float)
    o = np.maximum(np.asarray(outputs, float), 1.0)
    n = arr.size
    send = np.full(n, np.nan)
    first = np.full(n, np.nan)
    done = np.full(n, np.nan)
    computed = np.zeros(n)  # prompt tokens computed so far
    emitted = np.zeros(n)  # output tokens emitted so far
    budget_max = (
        math.inf if config.max_num_batched_tokens is None else config.max_num_batched_tokens
    )
    cap = min(config.max_concurrency or n, n)
    slots: deque[float] = deque([0.0] * cap)  # free client slots, by the time they freed
    client: deque[int] = deque(range(n))  # not yet sent, in arrival order
    waiting: deque[int] = deque()  # sent, not yet scheduled
    running: list[int] = []
    t, steps = 0.0, 0
    kv_used = 0.0

    def kv_fits(r: int) -> bool:
        return not running or kv_used + p[r] + o[r] <= config.kv_tokens

    def send_ready() -> None:
        while client and slots and arr[client[0]] <= t:
            r = client.popleft()
            send[r] = max(arr[r], slots.popleft())
            waiting.append(r)

    def next_send() -> float:
        return arr[client[0]] if client and slots else math.inf

    while steps < config.max_steps:
        send_ready()
        if not running and not waiting:
            if not client:
                break
            t = max(t, next_send())
            continue
        steps += 1
        budget = budget_max
        pre: list[tuple[int, float]] = []  # (request, tokens computed this step)
        dec: list[int] = []
        if config.mixed:
            for r in running:
                if budget <= 0:
                    break
                left = p[r] - computed[r]
                if left <= 0:
                    dec.append(r)
                    budget -= 1
                else:
                    k = min(left, budget) if config.chunked_prefill else left
                    if k > budget:
                        continue
                    pre.append((r, k))
                    budget -= k
            while waiting and len(running) < config.max_num_seqs and budget > 0:
                r = waiting[0]
                k = min(p[r], budget) if config.chunked_prefill else p[r]
                if k > budget or not kv_fits(r):
                    break
                waiting.popleft()
                running.append(r)
                kv_used += p[r] + o[r]
                pre.append((r, k))
                budget -= k
        else:
            limit = config.max_prefills_per_step or n
            while waiting and len(running) < config.max_num_seqs and len(pre) < limit:
                r = waiting[0]
                if (pre and p[r] > budget) or not kv_fits(r):
                    break
                waiting.popleft()
                running.append(r)
                kv_used += p[r] + o[r]
                pre.append((r, p[r]))  # a whole prompt (a lone one may exceed the budget)
                budget -= p[r]
            if not pre:
                dec = list(running)
        if not pre and not dec:  # nothing fits (a prompt over the budget, unchunked)
            nxt = next_send()
            if not math.isfinite(nxt) or nxt <= t:
                break
            t = nxt
            continue
        pre_tokens = float(sum(k for _, k in pre))
        pre_ctx = float(sum(computed[r] * k for r, k in pre) / pre_tokens) if pre else 0.0
        dec_ctx = float(np.mean(p[dec] + emitted[dec])) if dec and decode_context else 0.0
        k_steps = 1
        if dec and not pre and not _admissible(waiting, running, config, kv_fits):
            left = o[dec] - emitted[dec]
            k_steps = int(left.min())
            nxt = next_send() if not waiting else math.inf  # arrivals cannot join a full batch
            if math.isfinite(nxt):
                dt1 = step_s(0.0, 0.0, len(dec), dec_ctx)
                k_steps = min(k_steps, max(1, math.ceil((nxt - t) / dt1)))
            dt = k_steps * step_s(0.0, 0.0, len(dec), dec_ctx + (k_steps - 1) / 2)
        else:
            dt = step_s(pre_tokens, pre_ctx, len(dec), dec_ctx)
        t += dt
        for r, k in pre:
            computed[r] += k
            if computed[r] >= p[r]:
                first[r] = t
                emitted[r] = 1
        for r in dec:
            emitted[r] += k_steps
        # the requests done after this step, in running order (vectorized: a batch is long)
        active = np.fromiter(running, int, len(running))
        finished = active[(computed[active] >= p[active]) & (emitted[active] >= o[active])]
        if finished.size:
            finished = finished.tolist()
            for r in finished:
                done[r] = t
                slots.append(t)
                kv_used -= p[r] + o[r]
            gone = set(finished)
            running = [r for r in running if r not in gone]
    return EngineRun(arr, send, first, done, steps, bool(np.all(np.isfinite(done))))


def _admissible(waiting, running, config: EngineConfig, kv_fits) -> bool:
    """Could the first waiting request be scheduled now (a free slot and KV room)?"""
    return bool(waiting) and len(running) < config.max_num_seqs and kv_fits(waiting[0])


def prefill_first_run(
    arrivals, prompts, outputs, prefill_by_len: dict, step_s, batch: int, max_steps: int
) -> EngineRun | None:
    """simulate_engine's run for the capacity check's engine, event by event in plain floats:
    EngineConfig(max_num_seqs=batch, max_prefills_per_step=1) (prefill first, one whole
    prompt per step, no token budget, no client cap, unlimited KV) with the step cost
    prefill_by_len[prompt] for a prefill and step_s[n - 1] for a decode step of n sequences.
    None where the shortcut's premises fail (a prompt of 0 tokens, a fractional output
    length, batch < 1): simulate_engine then.

    Why it is the same run: with no budget, KV limit or client cap, a step admits the first
    waiting request whenever fewer than `batch` run (its prefill is the whole step, its first
    token ends it) and is otherwise a decode of every running sequence that no waiting request
    can join, which simulate_engine advances k steps at once, k = min(steps to the first
    completion, steps to the first boundary at or after the next send); sends are the
    arrivals (every client slot is free). Running sequences decode in lockstep, so sequence r
    (joined after G0 lockstep tokens) has emitted 1 + G - G0 tokens and finishes when G
    reaches G0 + o_r - 1: a heap of those thresholds gives the first completion. Times add
    the same floats in the same order (t += dt, dt = k * step), whole token counts are exact
    in integers, so every time is bit-identical (tests/test_capacity_simulate_speed.py)."""
    import heapq

    arr = np.asarray(arrivals, float)
    p = np.asarray(prompts, float)
    o = np.maximum(np.asarray(outputs, float), 1.0)
    if batch < 1 or not np.all(p > 0) or not np.all(o == np.floor(o)):
        return None
    n = arr.size
    arr_l, p_l, o_l = arr.tolist(), p.tolist(), [int(x) for x in o.tolist()]
    steps_l = np.asarray(step_s, float).tolist()
    first = [math.nan] * n
    done = [math.nan] * n
    t, steps, sent, gen = 0.0, 0, 0, 0  # gen: lockstep decode tokens so far (G)
    waiting: deque[int] = deque()
    ends: list[tuple[int, int]] = []  # (G at which the request finishes, request)
    while steps < max_steps:
        while sent < n and arr_l[sent] <= t:
            waiting.append(sent)
            sent += 1
        if not ends and not waiting:
            if sent >= n:
                break
            t = max(t, arr_l[sent])
            continue
        steps += 1
        if waiting and len(ends) < batch:  # one prefill: the whole step
            r = waiting.popleft()
            t += prefill_by_len[p_l[r]]
            first[r] = t
            if o_l[r] <= 1:
                done[r] = t
            else:
                heapq.heappush(ends, (gen + o_l[r] - 1, r))
            continue
        running = len(ends)
        k = ends[0][0] - gen
        step = steps_l[running - 1]
        if not waiting and sent < n:  # arrivals cannot join a full batch
            k = min(k, max(1, math.ceil((arr_l[sent] - t) / step)))
        t += k * step
        gen += k
        while ends and ends[0][0] <= gen:
            done[heapq.heappop(ends)[1]] = t
    send = arr.copy()
    send[sent:] = math.nan  # not sent when the step limit ended the run
    done_a = np.array(done)
    return EngineRun(arr, send, np.array(first), done_a, steps, bool(np.all(np.isfinite(done_a))))


def simulate_replica(
    lam: float,
    batch: int,
    prefill_s,  # callable: prompt lengths -> seconds
    step_s: np.ndarray,  # decode step time at 1..batch running sequences
    prompts: np.ndarray,
    outputs: np.ndarray,
    n_requests: int = SIM_REQUESTS,
    seed: int = SIM_SEED,
) -> dict:
    """The capacity check: simulate_engine with Poisson arrivals at lam, prefill first (one
    request per pass, no token budget), continuous-batching decode of at most `batch`
    sequences, request lengths drawn from the workload. The first tenth of the requests is
    warm-up. Returns p50/p90 TTFT and TPOT (s)."""
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / lam, n_requests))
    idx = rng.integers(0, len(prompts), n_requests)
    p, o = np.asarray(prompts, float)[idx], np.maximum(np.asarray(outputs, float)[idx], 1)
    pre = np.asarray(prefill_s(p), float)
    steps = np.asarray(step_s, float)
    by_len = dict(zip(p.tolist(), pre.tolist(), strict=True))

    def cost(prefill_tokens, _ctx, n_decode, _dctx) -> float:
        return by_len[prefill_tokens] if prefill_tokens else float(steps[n_decode - 1])

    config = EngineConfig(max_num_seqs=batch, max_prefills_per_step=1)
    run = prefill_first_run(arrivals, p, o, by_len, steps, batch, config.max_steps)
    if run is None:
        run = simulate_engine(arrivals, p, o, cost, config, decode_context=False)
    warm = n_requests // 10
    finished = np.isfinite(run.finish_s)
    ok = finished.copy()
    ok[:warm] = False
    tp_ok = ok & (o > 1)
    tpot = (run.finish_s[tp_ok] - run.first_token_s[tp_ok]) / (o[tp_ok] - 1)
    tt = run.ttft_s[ok]
    return {
        "requests": int(n_requests),
        "completed": int(finished.sum()),
        "stable": bool(finished.sum() == n_requests),
        "ttft_p50_s": float(np.percentile(tt, 50)) if tt.size else None,
        "ttft_p90_s": float(np.percentile(tt, 90)) if tt.size else None,
        "tpot_p50_s": float(np.percentile(tpot, 50)) if tpot.size else None,
        "tpot_p90_s": float(np.percentile(tpot, 90)) if tpot.size else None,
        "seed": seed,
    }
