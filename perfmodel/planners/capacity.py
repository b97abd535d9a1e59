"""Fleet sizing under TTFT/TPOT SLOs at a given request rate, and cost per token.

Queueing model (utilization-based, checked by a small discrete-event simulation):
- A replica is `tp` GPUs of one type serving one model copy with continuous batching: it
  alternates prefills of arriving requests (one request per prefill pass, prefill first, no
  chunked prefill) and batched decode steps over at most `B` running sequences.
- Per request it spends S_p = prefill(1, L) on prefill and O * D(B) / B on decode, D(B) the
  decode step at batch B (an upper bound: fewer running sequences step faster). Utilization
  at per-replica rate lam: rho = lam * (S_p + O * D(B) / B) <= UTILIZATION_TARGET.
- TPOT: decode stalls while prefills run, TPOT = D(B) / (1 - rho_p), rho_p = lam * S_p.
- TTFT p90: S_p(L90) + D(B) (the step in flight) + the M/M/1 prefill-queue wait tail
  S_p / (1 - rho_p) * max(0, ln(10 rho_p)) (P(W > t) = rho e^(-(1-rho) t / S)).
- replicas = ceil(QPS / lam_max), lam_max the largest rate meeting all three; GPUs = replicas
  * tp; cost/h = GPUs * price; cost per million output tokens = cost/h / (3600 QPS O) * 1e6.
- SLO checks use p90 lengths (prompt, output); throughput uses means; memory uses p90.
- With speculation: prefill uses SpecPrefill at the planner's recommended keep rate where it
  is faster, decode uses the MagicDec planner's best draft/KV/gamma at each batch where it is
  faster and fits (its memory model), the target's KV holding only the kept prompt tokens.
The search is vectorized over batch sizes and TP degrees (one cost-model call per GPU type,
precision and phase: the operators broadcast over an array of TP degrees).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from perfmodel.core.deployment import Deployment, make_deployment
from perfmodel.core.inference import decode_step_time, prefill_time
from perfmodel.core.memory import max_batch
from perfmodel.errors import PerfModelError
from perfmodel.specs.hardware import load_gpu

UTILIZATION_TARGET = 0.8
TP_CHOICES = (1, 2, 4, 8)
BATCH_GRID = np.unique(np.round(np.geomspace(1, 2048, 72))).astype(float)
PRECISIONS = (("bf16", "bf16"), ("fp8", "bf16"), ("fp8", "fp8"), ("int4", "fp8"))
SIM_REQUESTS = 1500
SIM_SEED = 0
SIM_MAX_EVENTS = 200_000
WORKLOAD_MAX_BYTES = 50_000_000
WORKLOAD_MAX_ROWS = 1_000_000
WORKLOAD_COLUMNS = ("prompt_len", "output_len", "arrival_time")

ASSUMPTIONS = (
    "Each replica (tp GPUs, one model copy) alternates prefills of arriving requests (one "
    "request per pass, prefill first, no chunked prefill) and continuous-batching decode steps "
    "over at most B sequences.",
    "Utilization rho = lam * (S_prefill + O * D(B) / B) <= {util:g} per replica; D(B) is the "
    "decode step at the full batch B (an upper bound on the step at lighter load).",
    "TPOT = D(B) / (1 - rho_prefill): decode stalls while prefills run.",
    "TTFT p90 = S_prefill(L_p90) + D(B) + M/M/1 prefill-queue wait tail "
    "S/(1-rho_p) * max(0, ln(10 rho_p)).",
    "Requests are routed to replicas at random (each sees Poisson arrivals at QPS/replicas); a "
    "smarter load balancer does better, so fleet sizes are conservative.",
    "SLO checks use p90 prompt and output lengths, throughput uses their means, memory uses p90.",
    "TP in 1, 2, 4, 8 within one node, dividing the attention heads; precision from bf16/bf16, "
    "fp8/bf16, fp8/fp8, int4/fp8 (weights/KV) unless fixed; the cheapest option wins, ties to "
    "the lower TTFT.",
    "Cost = GPUs x price per GPU-hour (hardware YAML price_per_gpu_hour_usd unless --prices); "
    "cost per million output tokens = cost per hour / (3600 x QPS x mean output) x 1e6.",
    "Check: a seeded discrete-event simulation of one replica ({n} Poisson requests, lengths "
    "drawn from the workload, first 10% dropped as warm-up) estimates p50/p90 TTFT and TPOT at "
    "the chosen fleet; where it misses an SLO, replicas are added (up to 8 more) until it meets "
    "it ('replicas_added_by_simulation').",
    "All times are modeled (cost model and efficiency profile named in 'profile'), not measured.",
)


# --- inputs ---------------------------------------------------------------------------------
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


# --- the per-replica model, vectorized over (TP, batch) ------------------------------------
def _tp_deployment(dep: Deployment, tps: np.ndarray) -> Deployment:
    """A deployment whose tp is an array (T, 1): the operator costs broadcast over it."""
    return replace(dep, tp=tps[:, None], num_gpus=tps[:, None])


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


BINDING = ("utilization", "TPOT SLO", "TTFT SLO")


def load_metrics(s_mean, s_p90, d_p90, d_mean, batch, out_mean, lam):
    """TTFT p90, TPOT and utilization at per-replica rate lam (the formulas above)."""
    rho_p = lam * s_mean
    tpot = d_p90 / np.maximum(1 - rho_p, 1e-9)
    wait = (
        s_mean
        / np.maximum(1 - rho_p, 1e-9)
        * np.maximum(0.0, np.log(np.maximum(10 * rho_p, 1e-300)))
    )
    ttft = s_p90 + d_p90 + wait
    util = lam * (s_mean + out_mean * d_mean / batch)
    return ttft, tpot, util


@dataclass
class Candidates:
    """Every (precision, TP, batch) of one GPU type, flattened; per-replica quantities."""

    gpu: str
    price: float
    weight_dtype: list
    kv_dtype: list
    tp: np.ndarray
    batch: np.ndarray
    s_mean: np.ndarray
    s_p90: np.ndarray
    d_mean: np.ndarray
    d_p90: np.ndarray
    lam: np.ndarray  # max per-replica rate meeting the SLOs (0 = infeasible)
    binding: np.ndarray
    spec: list  # per candidate: dict of the speculation used, or None
    profile: str
    deps: dict  # (weight, kv, tp) -> Deployment


def _spec_prefill(dep_t, wl, max_quality_drop):
    """(S_mean, S_p90, info) with SpecPrefill where the planner says it pays, else None."""
    from perfmodel.planners.recommend import default_speculator
    from perfmodel.planners.specprefill import kept_tokens, recommend_keep_rate, specprefill_times

    name = default_speculator(dep_t.model, dep_t.tp)
    if name is None:
        return None
    spec = dep_t.with_model(name)
    keep, *_ = recommend_keep_rate(
        dep_t, spec, 1, int(round(wl.prompt_p90)), max_quality_drop=max_quality_drop
    )
    if keep is None:
        return None
    t = specprefill_times(dep_t, spec, 1, [wl.prompt_mean, wl.prompt_p90], keep)
    if not np.all(t.ttft_s < t.baseline_s):
        return None
    return (
        float(t.ttft_s[0]),
        float(t.ttft_s[1]),
        {
            "specprefill_keep_rate": keep,
            "speculator": spec.model.name,
            "kept_tokens_p90": float(kept_tokens(wl.prompt_p90, keep)),
            "spec_dep": spec,
        },
    )


def _spec_decode(dep_t, wl, ctx_mean, ctx_p90, acceptance_rate):
    """Best MagicDec step time per batch (BATCH_GRID) at the p90 and mean contexts, from
    the planner's grid; inf where no configuration fits. None when unavailable."""
    from perfmodel.planners.recommend import (
        ASSUMED_ACCEPTANCE,
        _has_published_acceptance,
        _sd_configs,
    )
    from perfmodel.planners.specdecode import evaluate_grid

    try:
        configs = _sd_configs(dep_t, None)
    except PerfModelError:
        return None
    out = []
    source = "published"
    rate = acceptance_rate
    if rate is None and not any(_has_published_acceptance(dep_t.model.name, c) for c in configs):
        rate, source = ASSUMED_ACCEPTANCE, f"assumed {ASSUMED_ACCEPTANCE:g}"
    for ctx, out_len in ((ctx_p90, wl.output_p90 / 2), (ctx_mean, wl.output_mean / 2)):
        g = evaluate_grid(dep_t, configs, BATCH_GRID, ctx, acceptance_rate=rate, output_len=out_len)
        sd = np.broadcast_to(g.times.sd_s, g.shape)
        # unranked (no acceptance data: nan) and out-of-memory configurations never win
        sd = np.where(g.fits[:, None, :] & np.isfinite(sd), sd, np.inf)
        flat = sd.reshape(-1, sd.shape[-1])
        best = flat.argmin(axis=0)
        ci, gi = np.unravel_index(best, sd.shape[:2])
        labels = [
            f"{g.configs[c].label} gamma {int(g.gammas[k])}" for c, k in zip(ci, gi, strict=True)
        ]
        out.append((flat.min(axis=0), labels))
    if acceptance_rate is not None:
        source = f"given {acceptance_rate:g}"
    return out[0][0], out[1][0], out[0][1], source


def candidates_for_gpu(
    model,
    gpu: str,
    wl: Workload,
    slo_ttft: float,
    slo_tpot: float,
    price: float,
    with_spec: bool,
    profile=None,
    mode=None,
    precisions=PRECISIONS,
    util: float = UTILIZATION_TARGET,
    max_quality_drop: float = 1.0,
    acceptance_rate: float | None = None,
) -> Candidates:
    from perfmodel.core.memory import kv_bytes_per_token_per_gpu, weight_bytes_per_gpu

    hw = load_gpu(gpu)
    rows: dict[str, list] = {k: [] for k in ("w", "k", "tp", "b", "sm", "s9", "dm", "d9", "spec")}
    deps = {}
    prof_name = ""
    ctx_mean = wl.prompt_mean + wl.output_mean / 2
    ctx_p90 = wl.prompt_p90 + wl.output_p90 / 2
    B = BATCH_GRID[None, :]
    for w, k in precisions:
        tps = []
        for t in TP_CHOICES:
            if t > hw.max_gpus_per_node:
                continue
            try:
                d = make_deployment(model, hw, t, t, w, k, mode, profile)
            except PerfModelError:
                continue
            tps.append(t)
            deps[(w, k, t)] = d
        if not tps:
            continue
        base = deps[(w, k, tps[0])]
        prof_name = base.profile.name
        tarr = np.array(tps, float)
        dv = _tp_deployment(base, tarr)
        sm = prefill_time(dv, 1.0, wl.prompt_mean)  # (T, 1)
        s9 = prefill_time(dv, 1.0, wl.prompt_p90)
        dm = decode_step_time(dv, B, ctx_mean)  # (T, NB)
        d9 = decode_step_time(dv, B, ctx_p90)
        mb = np.array(
            [float(max_batch(deps[(w, k, t)], wl.prompt_p90, wl.output_p90)) for t in tps]
        )[:, None]
        variants = [(sm, s9, dm, d9, B <= mb, None)]
        if with_spec:
            for i, t in enumerate(tps):
                d_t = deps[(w, k, t)]
                sp = _spec_prefill(d_t, wl, max_quality_drop)
                sd = _spec_decode(d_t, wl, ctx_mean, ctx_p90, acceptance_rate)
                if sp is None and sd is None:
                    continue
                sm_i = np.full((1, 1), sp[0] if sp else sm[i, 0])
                s9_i = np.full((1, 1), sp[1] if sp else s9[i, 0])
                dm_i, d9_i = dm[i : i + 1], d9[i : i + 1]
                info = {"tp": t}
                if sp:
                    info.update({k2: v for k2, v in sp[2].items() if k2 != "spec_dep"})
                    # target KV holds the kept prompt tokens; speculator weights and one
                    # full-prompt speculator KV sit beside it
                    extra = (
                        weight_bytes_per_gpu(sp[2]["spec_dep"])
                        + kv_bytes_per_token_per_gpu(sp[2]["spec_dep"]) * wl.prompt_p90
                    )
                    mb_i = float(
                        max_batch(d_t, sp[2]["kept_tokens_p90"], wl.output_p90, extra_bytes=extra)
                    )
                else:
                    mb_i = float(mb[i, 0])
                fits = B <= mb_i
                labels = None
                if sd:
                    sd9, sdm, labels, src = sd
                    use = (sd9[None, :] < d9_i) & np.isfinite(sd9[None, :])
                    d9_i = np.where(use, sd9[None, :], d9_i)
                    dm_i = np.where(use, np.minimum(sdm[None, :], dm_i), dm_i)
                    info["acceptance"] = src
                    info["_use_sd"] = use[0]
                    info["_labels"] = labels
                variants.append((sm_i, s9_i, dm_i, d9_i, fits, (i, info)))
        for sm_v, s9_v, dm_v, d9_v, fits, spec in variants:
            if spec is None:
                t_list = tps
            else:
                t_list = [tps[spec[0]]]
            tt = np.array(t_list, float)[:, None]
            shape = (len(t_list), BATCH_GRID.size)
            lam, binding = replica_rate(
                sm_v, s9_v, d9_v, dm_v, B, wl.output_mean, slo_ttft, slo_tpot, util
            )
            lam = np.where(fits, lam, 0.0)
            for arr, key in (
                (np.broadcast_to(tt, shape), "tp"),
                (np.broadcast_to(B, shape), "b"),
                (np.broadcast_to(sm_v, shape), "sm"),
                (np.broadcast_to(s9_v, shape), "s9"),
                (np.broadcast_to(dm_v, shape), "dm"),
                (np.broadcast_to(d9_v, shape), "d9"),
            ):
                rows[key].append(arr.ravel())
            rows.setdefault("lam", []).append(np.broadcast_to(lam, shape).ravel())
            rows.setdefault("bind", []).append(np.broadcast_to(binding, shape).ravel())
            n = shape[0] * shape[1]
            rows["w"] += [w] * n
            rows["k"] += [k] * n
            if spec is None:
                rows["spec"] += [None] * n
            else:
                info = spec[1]
                for j in range(n):
                    d = {kk: v for kk, v in info.items() if not kk.startswith("_")}
                    if "_use_sd" in info and info["_use_sd"][j]:
                        d["specdecode"] = info["_labels"][j]
                    rows["spec"].append(d)
    if not rows["tp"]:
        raise PerfModelError(
            f"no TP degree in {TP_CHOICES} divides the heads of {model} on {hw.name}"
        )
    cat = {k: np.concatenate(v) for k, v in rows.items() if k not in ("w", "k", "spec")}
    return Candidates(
        hw.name,
        price,
        rows["w"],
        rows["k"],
        cat["tp"],
        cat["b"],
        cat["sm"],
        cat["s9"],
        cat["dm"],
        cat["d9"],
        cat["lam"],
        cat["bind"],
        rows["spec"],
        prof_name,
        deps,
    )


def fleet_cost(c: Candidates, qps) -> tuple[np.ndarray, np.ndarray]:
    """(replicas, cost per hour) of every candidate at each QPS: arrays (Q, N); inf where
    infeasible."""
    q = np.atleast_1d(np.asarray(qps, float))[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        replicas = np.where(c.lam[None, :] > 0, np.ceil(q / c.lam[None, :] - 1e-9), np.inf)
    return replicas, replicas * c.tp[None, :] * c.price


# --- simulation check ----------------------------------------------------------------------
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


# --- the plan -------------------------------------------------------------------------------
@dataclass(frozen=True)
class CapacityPlan:
    model: str
    workload: Workload
    slo_ttft_s: float
    slo_tpot_s: float
    options: list[dict]
    curves: dict  # per option label: QPS grid and cost per hour; TTFT/TPOT vs batch
    assumptions: list[str]
    profile: str
    critical: dict | None = None

    def as_dict(self) -> dict:
        feasible = [o for o in self.options if o["meets_slo"]]
        best = min(feasible, key=lambda o: o["cost_per_hour"]) if feasible else None
        return {
            "model": self.model,
            "workload": self.workload.as_dict(),
            "slo": {"ttft_s": self.slo_ttft_s, "tpot_s": self.slo_tpot_s},
            "options": self.options,
            "best": best,
            "assumptions": self.assumptions,
            "profile": self.profile,
            "basis": f"modeled: profile {self.profile}; utilization-based queueing model "
            "checked by a seeded simulation",
        }


def _with_replicas(c: Candidates, i: int, opt: dict, wl: Workload, replicas: int) -> dict:
    """The same option served by more replicas (each sees QPS / replicas)."""
    lam = wl.qps / replicas
    ttft, tpot, u = load_metrics(
        c.s_mean[i], c.s_p90[i], c.d_p90[i], c.d_mean[i], c.batch[i], wl.output_mean, lam
    )
    gpus = replicas * int(c.tp[i])
    cost = gpus * c.price
    return {
        **opt,
        "replicas": replicas,
        "gpus_needed": gpus,
        "cost_per_hour": cost,
        "cost_per_mtok": cost / (3600.0 * wl.qps * wl.output_mean) * 1e6,
        "ttft_s": float(ttft),
        "tpot_s": float(tpot),
        "utilization": float(u),
    }


def _sim_meets(sim: dict, slo_ttft_s: float, slo_tpot_s: float) -> bool:
    return bool(
        sim["stable"]
        and sim["ttft_p90_s"] is not None
        and sim["ttft_p90_s"] <= slo_ttft_s
        and (sim["tpot_p90_s"] or 0.0) <= slo_tpot_s
    )


MAX_SIM_EXTRA_REPLICAS = 8


def _option(c: Candidates, i: int | None, wl: Workload, with_spec: bool, util: float) -> dict:
    if i is None:
        return {
            "gpu": c.gpu,
            "with_spec": with_spec,
            "meets_slo": False,
            "tp": None,
            "replicas": None,
            "gpus_needed": None,
            "batch": None,
            "cost_per_hour": None,
            "cost_per_mtok": None,
            "ttft_s": None,
            "tpot_s": None,
            "reason": "no TP, precision and batch meets both SLOs and fits in memory",
            "profile": c.profile,
        }
    lam_max = float(c.lam[i])
    replicas = int(math.ceil(wl.qps / lam_max - 1e-9))
    lam = wl.qps / replicas
    ttft, tpot, u = load_metrics(
        c.s_mean[i], c.s_p90[i], c.d_p90[i], c.d_mean[i], c.batch[i], wl.output_mean, lam
    )
    gpus = replicas * int(c.tp[i])
    cost = gpus * c.price
    return {
        "gpu": c.gpu,
        "with_spec": with_spec,
        "meets_slo": True,
        "weight_dtype": c.weight_dtype[i],
        "kv_dtype": c.kv_dtype[i],
        "tp": int(c.tp[i]),
        "replicas": replicas,
        "gpus_needed": gpus,
        "batch": int(c.batch[i]),
        "price_per_gpu_hour": c.price,
        "cost_per_hour": cost,
        "cost_per_mtok": cost / (3600.0 * wl.qps * wl.output_mean) * 1e6,
        "ttft_s": float(ttft),
        "tpot_s": float(tpot),
        "utilization": float(u),
        "qps_per_replica_max": lam_max,
        "binding_constraint": BINDING[int(c.binding[i])],
        "prefill_s": float(c.s_p90[i]),
        "decode_step_s": float(c.d_p90[i]),
        "speculation": c.spec[i],
        "profile": c.profile,
    }


def _best_index(c: Candidates, qps: float) -> int | None:
    _, cost = fleet_cost(c, qps)
    cost = cost[0]
    if not np.any(np.isfinite(cost)):
        return None
    ttft = np.where(np.isfinite(cost), c.s_p90 + c.d_p90, np.inf)
    order = np.lexsort((ttft, cost))
    return int(order[0])


def _check_possible(all_c: list[Candidates], slo_ttft, slo_tpot):
    """Raise when an SLO cannot be met even at batch 1 on the best configuration."""
    best_t, best_d = (np.inf, None), (np.inf, None)
    for c in all_c:
        one = c.batch == 1
        if not np.any(one):
            continue
        it = np.flatnonzero(one)[np.argmin((c.s_p90 + c.d_p90)[one])]
        idd = np.flatnonzero(one)[np.argmin(c.d_p90[one])]
        if c.s_p90[it] + c.d_p90[it] < best_t[0]:
            best_t = (float(c.s_p90[it] + c.d_p90[it]), (c, it))
        if c.d_p90[idd] < best_d[0]:
            best_d = (float(c.d_p90[idd]), (c, idd))
    for label, slo, (value, where) in (("TTFT", slo_ttft, best_t), ("TPOT", slo_tpot, best_d)):
        if where is not None and value > slo:
            c, i = where
            raise PerfModelError(
                f"{label} SLO {slo:g} s is impossible: the best is {value:.3g} s at batch 1 on "
                f"{int(c.tp[i])}x {c.gpu} ({c.weight_dtype[i]}/{c.kv_dtype[i]})"
            )


def plan_capacity(
    model,
    workload: Workload,
    slo_ttft_s: float,
    slo_tpot_s: float,
    gpus=("h100", "h200", "a100"),
    prices: dict[str, float] | None = None,
    with_spec: bool = False,
    profile=None,
    mode=None,
    precisions=PRECISIONS,
    util: float = UTILIZATION_TARGET,
    simulate: bool = True,
    max_quality_drop: float = 1.0,
    acceptance_rate: float | None = None,
) -> CapacityPlan:
    """Cheapest fleet per GPU type (and with speculation) meeting both SLOs at the QPS."""
    for name, v in (("--slo-ttft", slo_ttft_s), ("--slo-tpot", slo_tpot_s)):
        if not (v is not None and np.isfinite(v) and v > 0):
            raise PerfModelError(f"{name} must be positive, got {v}")
    if not (np.isfinite(workload.qps) and workload.qps > 0):
        raise PerfModelError(f"--qps must be positive, got {workload.qps}")
    if not 0 < util <= 1:
        raise PerfModelError(f"utilization target must be in (0, 1], got {util}")
    hws = [load_gpu(g) for g in gpus]
    if not hws:
        raise PerfModelError("--gpus: no GPU given")
    prices = prices or {}
    wl = workload
    prompt_samples = (
        wl.prompt_samples if wl.prompt_samples is not None else np.array([wl.prompt_mean])
    )
    output_samples = (
        wl.output_samples if wl.output_samples is not None else np.array([wl.output_mean])
    )
    sets: list[tuple[Candidates, bool]] = []
    for hw in hws:
        price = prices.get(hw.name, hw.price_per_gpu_hour_usd)
        for spec in (False, True) if with_spec else (False,):
            c = candidates_for_gpu(
                model,
                hw.name,
                wl,
                slo_ttft_s,
                slo_tpot_s,
                price,
                spec,
                profile,
                mode,
                precisions,
                util,
                max_quality_drop,
                acceptance_rate,
            )
            if spec:  # keep only the speculative rows in the with-spec set
                keep = np.array([s is not None for s in c.spec])
                c = _subset(c, keep) if keep.any() else None
            if c is not None:
                sets.append((c, spec))
    _check_possible([c for c, _ in sets], slo_ttft_s, slo_tpot_s)
    options, curves = [], {}
    qgrid = np.geomspace(wl.qps / 10, wl.qps * 10, 41)
    for c, spec in sets:
        i = _best_index(c, wl.qps)
        opt = _option(c, i, wl, spec, util)
        if i is not None and simulate:
            # The utilization model ignores waiting for a free batch slot; where the
            # simulation misses an SLO, add replicas (bounded) until it meets it.
            sim = _simulate_option(c, i, opt, wl, prompt_samples, output_samples)
            first = opt["replicas"]
            while (
                not _sim_meets(sim, slo_ttft_s, slo_tpot_s)
                and opt["replicas"] < first + MAX_SIM_EXTRA_REPLICAS
            ):
                opt = _with_replicas(c, i, opt, wl, opt["replicas"] + 1)
                sim = _simulate_option(c, i, opt, wl, prompt_samples, output_samples)
            sim["meets_slo"] = _sim_meets(sim, slo_ttft_s, slo_tpot_s)
            opt["replicas_added_by_simulation"] = opt["replicas"] - first
            opt["meets_slo"] = sim["meets_slo"]
            opt["simulation"] = sim
        options.append(opt)
        _, cost = fleet_cost(c, qgrid)
        label = f"{c.gpu}{' + spec' if spec else ''}"
        curves[label] = {
            "qps": qgrid.tolist(),
            "cost_per_hour": np.min(cost, axis=1).tolist(),
        }
        if i is not None:
            same = (c.tp == c.tp[i]) & np.array(
                [
                    (w, k) == (c.weight_dtype[i], c.kv_dtype[i])
                    for w, k in zip(c.weight_dtype, c.kv_dtype, strict=True)
                ]
            )
            if spec:
                same &= np.array([s is not None for s in c.spec])
            curves[label].update(
                {
                    "batch": c.batch[same].tolist(),
                    "ttft_s": (c.s_p90 + c.d_p90)[same].tolist(),
                    "tpot_s": c.d_p90[same].tolist(),
                    "config": f"TP{int(c.tp[i])} {c.weight_dtype[i]}/{c.kv_dtype[i]}",
                }
            )
    if with_spec:
        crit = _critical_curve(sets, options, acceptance_rate)
    else:
        crit = None
    assumptions = [a.format(util=util, n=SIM_REQUESTS) for a in ASSUMPTIONS]
    assumptions.append(f"Workload: {wl.source}.")
    if with_spec:
        assumptions.append(
            "With speculation: SpecPrefill at the planner's recommended keep rate (speculator on "
            "the same GPUs, its weights and one full-prompt KV beside the target) where it is "
            "faster; MagicDec's best draft/KV budget (256..4096)/gamma per batch where it is "
            "faster and fits (acceptance from published data where it exists, else assumed)."
        )
    profiles = sorted({c.profile for c, _ in sets})
    return CapacityPlan(
        sets[0][0].deps and next(iter(sets[0][0].deps.values())).model.name,
        wl,
        slo_ttft_s,
        slo_tpot_s,
        options,
        curves,
        assumptions,
        ", ".join(profiles),
        crit,
    )


def _subset(c: Candidates, keep: np.ndarray) -> Candidates:
    idx = np.flatnonzero(keep)
    return Candidates(
        c.gpu,
        c.price,
        [c.weight_dtype[i] for i in idx],
        [c.kv_dtype[i] for i in idx],
        c.tp[idx],
        c.batch[idx],
        c.s_mean[idx],
        c.s_p90[idx],
        c.d_mean[idx],
        c.d_p90[idx],
        c.lam[idx],
        c.binding[idx],
        [c.spec[i] for i in idx],
        c.profile,
        c.deps,
    )


def _simulate_option(c: Candidates, i: int, opt: dict, wl: Workload, prompts, outputs) -> dict:
    """Simulate one replica of the chosen option at QPS / replicas (plain step times; with
    speculation the modeled per-token decode time replaces the step at the full batch)."""
    dep = c.deps[(c.weight_dtype[i], c.kv_dtype[i], int(c.tp[i]))]
    b = int(c.batch[i])
    n = np.arange(1, b + 1, dtype=float)
    ctx = wl.prompt_mean + wl.output_mean / 2
    step = decode_step_time(dep, n, ctx)
    scale = c.d_mean[i] / float(step[-1]) if step[-1] > 0 else 1.0
    step = step * min(scale, 1.0)  # speculation: same relative gain at every batch
    s_ratio = c.s_mean[i] / float(prefill_time(dep, 1.0, wl.prompt_mean))

    def prefill(lengths):
        return prefill_time(dep, 1.0, lengths) * min(s_ratio, 1.0)

    return simulate_replica(wl.qps / opt["replicas"], b, prefill, step, prompts, outputs)


def _critical_curve(sets, options, acceptance_rate) -> dict | None:
    """Critical sequence length vs batch from the MagicDec planner, for the cheapest
    with-spec option's deployment (None when unavailable)."""
    from perfmodel.planners.recommend import ASSUMED_ACCEPTANCE, _sd_configs
    from perfmodel.planners.specdecode import critical_length

    spec_opts = [o for o in options if o["with_spec"] and o["meets_slo"]]
    if not spec_opts:
        return None
    o = min(spec_opts, key=lambda x: x["cost_per_hour"])
    c = next(c for c, s in sets if s and c.gpu == o["gpu"])
    dep = c.deps[(o["weight_dtype"], o["kv_dtype"], o["tp"])]
    batches = np.array([1, 4, 16, 64, 256], float)
    configs = [cfg for cfg in _sd_configs(dep, None) if cfg.method != "full"]
    rate = acceptance_rate
    try:
        crit = critical_length(dep, configs, batches, acceptance_rate=rate)
    except PerfModelError:
        rate = ASSUMED_ACCEPTANCE
        crit = critical_length(dep, configs, batches, acceptance_rate=rate)
    return {
        "gpu": o["gpu"],
        "config": f"TP{o['tp']} {o['weight_dtype']}/{o['kv_dtype']}",
        "batch": batches.tolist(),
        "critical_seq_len": [None if not np.isfinite(x) else float(x) for x in crit],
        "acceptance": "given"
        if acceptance_rate is not None
        else ("published" if rate is None else f"assumed {rate:g}"),
        "drafts": sorted({cfg.label for cfg in configs})[:6],
    }
