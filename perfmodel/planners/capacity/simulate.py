"""A seeded discrete-event simulation of one replica: the check on the queueing formulas."""

from __future__ import annotations

import math

import numpy as np

SIM_REQUESTS = 1500
SIM_SEED = 0
SIM_MAX_EVENTS = 200_000


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
    """Discrete-event simulation of one replica: Poisson arrivals at lam, prefill first (one
    request per pass), continuous-batching decode of at most `batch` sequences. Events are
    arrivals, prefills and runs of decode steps until the next arrival or completion, so the
    loop is O(requests), capped at SIM_MAX_EVENTS. Returns p50/p90 TTFT and TPOT (s)."""
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / lam, n_requests))
    idx = rng.integers(0, len(prompts), n_requests)
    p, o = np.asarray(prompts, float)[idx], np.maximum(np.asarray(outputs, float)[idx], 1)
    pre = np.asarray(prefill_s(p), float)
    ttft = np.full(n_requests, np.nan)
    done_t = np.full(n_requests, np.nan)
    first_t = np.full(n_requests, np.nan)
    queue: list[int] = []
    q_head = 0
    running: list[int] = []  # request ids in the batch (plain lists: batches are small)
    remaining: list[float] = []  # decode steps each still needs
    t, nxt, events = 0.0, 0, 0
    while events < SIM_MAX_EVENTS:
        events += 1
        while nxt < n_requests and arrivals[nxt] <= t:
            queue.append(nxt)
            nxt += 1
        if q_head < len(queue) and len(running) < batch:
            r = queue[q_head]
            q_head += 1
            t += pre[r]
            ttft[r] = t - arrivals[r]
            first_t[r] = t
            if o[r] > 1:
                running.append(r)
                remaining.append(o[r] - 1)
            else:
                done_t[r] = t
            continue
        if running:
            dt = step_s[len(running) - 1]
            k = min(remaining)
            if q_head < len(queue):  # full batch: run to the next completion
                pass
            elif nxt < n_requests:  # stop at the step in flight when the next request arrives
                k = min(k, max(1.0, math.ceil((arrivals[nxt] - t) / dt)))
            t += k * dt
            keep_r, keep_left = [], []
            for r, left in zip(running, remaining, strict=True):
                if left - k <= 0:
                    done_t[r] = t
                else:
                    keep_r.append(r)
                    keep_left.append(left - k)
            running, remaining = keep_r, keep_left
            continue
        if nxt >= n_requests:
            break
        t = arrivals[nxt]
    warm = n_requests // 10
    ok = ~np.isnan(done_t)
    ok[:warm] = False
    tp_ok = ok & (o > 1)
    tpot = (done_t[tp_ok] - first_t[tp_ok]) / (o[tp_ok] - 1)
    tt = ttft[ok]
    return {
        "requests": int(n_requests),
        "completed": int((~np.isnan(done_t)).sum()),
        "stable": bool((~np.isnan(done_t)).sum() == n_requests),
        "ttft_p50_s": float(np.percentile(tt, 50)) if tt.size else None,
        "ttft_p90_s": float(np.percentile(tt, 90)) if tt.size else None,
        "tpot_p50_s": float(np.percentile(tpot, 50)) if tpot.size else None,
        "tpot_p90_s": float(np.percentile(tpot, 90)) if tpot.size else None,
        "seed": seed,
    }
