"""Per-replica queueing formulas of the capacity planner (utilization-based, closed form).

A replica (tp GPUs, one model copy, continuous batching of at most B sequences, prefill
first, one request per prefill pass) serving Poisson arrivals at rate lam:
- S = prefill service time of one request, D(B) = decode step at batch B, O output tokens.
- utilization        rho   = lam * (S_mean + O_mean * D_mean(B) / B)   <= util
- prefill share      rho_p = lam * S_mean
- TPOT               = D_p90(B) / (1 - rho_p)          (decode stalls while prefills run)
- TTFT p90           = S_p90 + D_p90(B) + W90,  W90 = S_mean / (1 - rho_p) * max(0, ln(10 rho_p))
  (M/M/1 waiting-time tail P(W > t) = rho e^(-(1-rho) t / S), solved for P = 0.1)
- fleet: replicas = ceil(QPS / lam_max), GPUs = replicas * tp, cost/h = GPUs * price,
  cost per million output tokens = cost/h / (3600 * QPS * O_mean) * 1e6.
"""

from __future__ import annotations

import numpy as np

UTILIZATION_TARGET = 0.8
BINDING = ("utilization", "TPOT SLO", "TTFT SLO")


def wait_p90(s_mean, rho_p) -> np.ndarray:
    """90th-percentile M/M/1 queue wait: S / (1 - rho) * max(0, ln(10 rho)) (seconds)."""
    rho_p = np.asarray(rho_p, float)
    return (
        np.asarray(s_mean, float)
        / np.maximum(1 - rho_p, 1e-9)
        * np.maximum(0.0, np.log(np.maximum(10 * rho_p, 1e-300)))
    )


def replica_rate(s_mean, s_p90, d_p90, d_mean, batch, out_mean, slo_ttft, slo_tpot, util):
    """Largest per-replica arrival rate (req/s) meeting utilization, TPOT and TTFT p90.

    All arguments broadcast; s_* prefill service times, d_* decode step times at batch.
    Returns (lam_max, binding) where binding names the limiting constraint.
    """
    lam_u = util / (s_mean + out_mean * d_mean / batch)
    lam_tpot = np.where(d_p90 <= slo_tpot, (1.0 - d_p90 / slo_tpot) / s_mean, 0.0)
    room = slo_ttft - s_p90 - d_p90
    # TTFT: largest rho_p with S/(1-rho) * max(0, ln(10 rho)) <= room (increasing in rho)
    lo = np.zeros(np.broadcast(room, s_mean).shape)
    hi = np.full_like(lo, 1.0 - 1e-9)
    s = np.broadcast_to(s_mean, lo.shape)
    r = np.broadcast_to(room, lo.shape)
    for _ in range(50):
        mid = (lo + hi) / 2
        ok = s / (1 - mid) * np.maximum(0.0, np.log(np.maximum(10 * mid, 1e-300))) <= r
        lo = np.where(ok, mid, lo)
        hi = np.where(ok, hi, mid)
    lam_ttft = np.where(r >= 0, lo / s, 0.0)
    stack = np.broadcast_arrays(lam_u, lam_tpot, lam_ttft)
    lam = np.minimum(np.minimum(stack[0], stack[1]), stack[2])
    binding = np.argmin(np.stack(stack), axis=0)
    return np.maximum(lam, 0.0), binding


def load_metrics(s_mean, s_p90, d_p90, d_mean, batch, out_mean, lam):
    """TTFT p90, TPOT and utilization at per-replica rate lam (the formulas above)."""
    rho_p = lam * s_mean
    tpot = d_p90 / np.maximum(1 - rho_p, 1e-9)
    ttft = s_p90 + d_p90 + wait_p90(s_mean, rho_p)
    util = lam * (s_mean + out_mean * d_mean / batch)
    return ttft, tpot, util


def fleet(
    lam_max, gpus_per_replica, price, qps, out_mean
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(replicas, GPUs, cost per hour, cost per million output tokens) at a QPS, broadcast;
    replicas inf where lam_max is 0 (infeasible). gpus_per_replica = tp * pp; cost =
    replicas * gpus_per_replica * price per GPU-hour."""
    lam_max = np.asarray(lam_max, float)
    q = np.asarray(qps, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        replicas = np.where(lam_max > 0, np.ceil(q / lam_max - 1e-9), np.inf)
    gpus = replicas * np.asarray(gpus_per_replica, float)
    cost = gpus * price
    return replicas, gpus, cost, cost_per_mtok(cost, q, out_mean)


def cost_per_mtok(cost_per_hour, qps, out_mean) -> np.ndarray:
    """USD per million output tokens: cost/h / (3600 * QPS * mean output) * 1e6."""
    return np.asarray(cost_per_hour, float) / (3600.0 * np.asarray(qps, float) * out_mean) * 1e6
