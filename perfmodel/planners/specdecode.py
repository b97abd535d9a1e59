"""MagicDec: speculative decoding at large batch and long context with a sparse-KV draft.

Chen et al., "MagicDec: Breaking the Latency-Throughput Tradeoff for Long Context
Generation with Speculative Decoding" (ICLR 2025); Leviathan et al. 2023 for E(a, gamma).
- accepted tokens per round: E = (1 - a^(g+1)) / (1 - a), 1 <= E <= g+1.
- T_draft  = g * T_draft_step(b, min(B, ctx))   (the draft reads a KV budget B, or all of it)
- T_verify = T_target(b, ctx, q = g+1)           (one target pass over g+1 tokens per sequence)
- T_SD     = (T_draft + T_verify + T_round) / E   (T_round: sampling, acceptance, KV rollback:
                                                   profile overhead.sd_step_us)
- speedup  = T_auto / T_SD with T_auto one plain target decode step at the same context.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perfmodel.core.deployment import Deployment
from perfmodel.core.inference import decode_step_time
from perfmodel.errors import PerfModelError


def check_acceptance_rate(a) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    if np.any(~np.isfinite(a)) or np.any(a < 0) or np.any(a >= 1):
        raise PerfModelError(f"acceptance rate must be in [0, 1), got {np.ravel(a).tolist()}")
    return a


def expected_accepted(a, gamma) -> np.ndarray:
    """E = (1 - a^(g+1)) / (1 - a): mean tokens produced per draft+verify round."""
    a = check_acceptance_rate(a)
    g = np.asarray(gamma, dtype=float)
    return (1.0 - a ** (g + 1.0)) / (1.0 - a)


def acceptance_rate_from_length(length, gamma, tol: float = 1e-12) -> np.ndarray:
    """Invert E(a, g) = length for a (vectorized bisection; E is increasing in a)."""
    length = np.asarray(length, float)
    g = np.asarray(gamma, float)
    length, g = np.broadcast_arrays(length, g)
    if np.any(length < 1) or np.any(length >= g + 1):
        raise PerfModelError(
            f"acceptance length must be in [1, gamma+1), got {np.ravel(length).tolist()}"
        )
    lo, hi = np.zeros_like(length), np.full_like(length, 1.0 - 1e-12)
    for _ in range(60):
        mid = (lo + hi) / 2
        too_low = (1.0 - mid ** (g + 1.0)) / (1.0 - mid) < length
        lo = np.where(too_low, mid, lo)
        hi = np.where(too_low, hi, mid)
    return (lo + hi) / 2


@dataclass(frozen=True)
class SpecDecodeTimes:
    gamma: np.ndarray
    draft_s: np.ndarray  # all gamma draft steps
    verify_s: np.ndarray
    round_overhead_s: np.ndarray
    acceptance_len: np.ndarray
    autoregressive_s: np.ndarray

    @property
    def sd_s(self) -> np.ndarray:
        """Time per generated token with speculation."""
        return (self.draft_s + self.verify_s + self.round_overhead_s) / self.acceptance_len

    @property
    def speedup(self) -> np.ndarray:
        return self.autoregressive_s / self.sd_s


def specdecode_times(
    target: Deployment,
    draft: Deployment,
    batch,
    context,
    gamma,
    acceptance_len,
    kv_budget=np.inf,
) -> SpecDecodeTimes:
    """Draft, verify and per-token times of one speculative round (seconds), broadcast."""
    b, c, g, e, budget = np.broadcast_arrays(
        *(np.asarray(x, float) for x in (batch, context, gamma, acceptance_len, kv_budget))
    )
    if np.any(g < 1):
        raise PerfModelError("gamma must be >= 1")
    if np.any(budget <= 0):
        raise PerfModelError("KV budget must be positive")
    draft_step = decode_step_time(draft, b, c, 1, kv_budget=budget)
    verify = decode_step_time(target, b, c, g + 1.0)
    auto = decode_step_time(target, b, c, 1)
    overhead = np.full_like(b, target.profile.sd_step_us * 1e-6)
    return SpecDecodeTimes(g, g * draft_step, verify, overhead, e, auto)


def specdecode_memory(
    target: Deployment,
    draft: Deployment,
    batch,
    prompt_len,
    output_len=0,
    kv_budget=np.inf,
    self_speculation=False,
):
    """Memory per GPU with the draft: target weights + KV, plus the draft's weights (unless
    it is the target itself) and its KV cache (min(budget, tokens) per sequence)."""
    from perfmodel.core.memory import kv_cache_bytes_per_gpu, memory_report, weight_bytes_per_gpu

    tokens = np.asarray(prompt_len, float) + np.asarray(output_len, float)
    draft_tokens = np.minimum(np.asarray(kv_budget, float), tokens)
    extra = kv_cache_bytes_per_gpu(draft, batch, draft_tokens)
    if not self_speculation:
        extra = extra + weight_bytes_per_gpu(draft)
    return memory_report(target, batch, prompt_len, output_len, extra_bytes=extra)


# --- the MagicDec planner: draft choices, acceptance, grid, optimizer, critical length ----

KV_METHODS = ("full", "streamingllm", "snapkv")
DEFAULT_GAMMAS = tuple(range(1, 9))
DEFAULT_BUDGETS = tuple(2**k for k in range(7, 14))  # 128 .. 8192 tokens
SELF = "self"


@dataclass(frozen=True)
class DraftConfig:
    """One draft choice: a draft model (or 'self' = the target's weights) and its KV cache.

    method: full (the draft keeps every token), streamingllm (attention sinks + a recent
    window, B tokens in all) or snapkv (B tokens selected from the prompt by attention, window
    included). Both compressed methods read min(B, context) cached tokens per step; they
    differ in acceptance, not in cost.
    """

    draft: str = "1b"
    method: str = "full"
    budget: float = np.inf  # tokens; inf for full

    @property
    def self_speculation(self) -> bool:
        return self.draft == SELF

    @property
    def kv_label(self) -> str:
        return "full" if self.method == "full" else f"{self.method}:{int(self.budget)}"

    @property
    def label(self) -> str:
        return f"{self.draft}/{self.kv_label}"


def parse_draft_kv(text: str, budgets=DEFAULT_BUDGETS) -> list[tuple[str, float]]:
    """'full', 'streamingllm:512', 'snapkv:1024', lists 'full,snapkv:256'; a compressed
    method without a budget stands for every budget in `budgets` (for the optimizer)."""
    out: list[tuple[str, float]] = []
    for part in str(text).split(","):
        part = part.strip().lower()
        if not part:
            continue
        method, _, value = part.partition(":")
        if method not in KV_METHODS:
            raise PerfModelError(
                f"unknown KV method '{method}' in --draft-kv (known: full, streamingllm:B, snapkv:B)"
            )
        if method == "full":
            if value:
                raise PerfModelError(
                    "--draft-kv full takes no budget (use streamingllm:B or snapkv:B)"
                )
            out.append(("full", np.inf))
            continue
        if not value:
            out.extend((method, float(b)) for b in budgets)
            continue
        from perfmodel.specs.units import parse_size

        try:
            budget = parse_size(value, f"--draft-kv {method} budget")
        except PerfModelError:
            raise PerfModelError(
                f"KV budget must be a positive number of tokens, got '{value}' in '{part}'"
            ) from None
        out.append((method, float(budget)))
    if not out:
        raise PerfModelError("--draft-kv: no KV method given")
    return out


def draft_configs(
    drafts: str | list[str] = "1b", kv: str | list[str] = "full", budgets=DEFAULT_BUDGETS
) -> list[DraftConfig]:
    """Cartesian product of draft models and KV methods; self-speculation with a full KV
    cache is left out (it is the target itself: nothing to gain)."""
    names = drafts.split(",") if isinstance(drafts, str) else list(drafts)
    kvs = kv if isinstance(kv, str) else ",".join(kv)
    methods = parse_draft_kv(kvs, budgets)
    out = []
    for name in (n.strip() for n in names if n.strip()):
        for method, budget in methods:
            cfg = DraftConfig(SELF if name.lower() == SELF else name, method, budget)
            if cfg.self_speculation and method == "full":
                continue
            if cfg not in out:
                out.append(cfg)
    if not out:
        raise PerfModelError(
            "self-speculation needs a compressed draft KV cache (--draft-kv streamingllm:B or snapkv:B)"
        )
    return out


def draft_deployment(target: Deployment, cfg: DraftConfig) -> Deployment:
    """The draft on the target's GPUs, TP and profile; checks size and vocabulary."""
    if cfg.self_speculation:
        return target
    draft = target.with_model(cfg.draft)
    if draft.model.param_count > target.model.param_count:
        raise PerfModelError(
            f"draft {draft.model.name} is bigger than the target {target.model.name}"
        )
    if draft.model.vocab_size != target.model.vocab_size:
        raise PerfModelError(
            f"draft {draft.model.name} (vocabulary {draft.model.vocab_size}) and target "
            f"{target.model.name} (vocabulary {target.model.vocab_size}) do not share a vocabulary"
        )
    return draft


def check_gammas(gammas) -> np.ndarray:
    g = np.atleast_1d(np.asarray(gammas, float))
    if g.size == 0 or np.any(~np.isfinite(g)) or np.any(g < 1) or np.any(g != np.round(g)):
        raise PerfModelError(f"gamma must be an integer >= 1, got {g.tolist()}")
    return g


# --- published acceptance data -------------------------------------------------------------

ACCEPTANCE_FILE = "magicdec_acceptance.csv"
ACCEPTANCE_COLUMNS = (
    "target",
    "draft",
    "method",
    "budget",
    "prompt_len",
    "batch_size",
    "gamma",
    "acceptance_len",
    "source",
    "line",
    "table",
)


def acceptance_rows_from_published(published_dir=None):
    """The acceptance columns of validation/published/magicdec_*.csv (rows with a measured
    acceptance length), as a DataFrame with ACCEPTANCE_COLUMNS. Regenerate the shipped file:
    PYTHONPATH=. python -c "from perfmodel.planners.specdecode import write_acceptance_table as w; w()"
    """
    import pandas as pd

    from perfmodel.paths import PUBLISHED_DIR

    frames = []
    for path in sorted((published_dir or PUBLISHED_DIR).glob("magicdec_*.csv")):
        f = pd.read_csv(path)
        f = f[(f["status"] == "ok") & f["acceptance_len"].notna()]
        frames.append(
            pd.DataFrame(
                {
                    "target": f["model"],
                    "draft": f["draft_model"],
                    "method": f["draft_kv"].str.lower(),
                    "budget": f["draft_kv_budget"].astype("Int64"),
                    "prompt_len": f["prompt_len"].astype(int),
                    "batch_size": f["batch_size"].astype(int),
                    "gamma": f["gamma"].astype(int),
                    "acceptance_len": f["acceptance_len"],
                    "source": f["source"],
                    "line": f["line"].astype(int),
                    "table": path.stem,
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["target", "draft", "method", "prompt_len", "line"]).reset_index(
        drop=True
    )[list(ACCEPTANCE_COLUMNS)]


def write_acceptance_table(path=None) -> str:
    from perfmodel.paths import DATA_DIR

    path = path or DATA_DIR / ACCEPTANCE_FILE
    acceptance_rows_from_published().to_csv(path, index=False)
    return str(path)


def _acceptance_table() -> dict[str, np.ndarray]:
    """Column arrays of the shipped acceptance CSV (csv module: no pandas on the CLI path)."""
    import csv

    from perfmodel.paths import DATA_DIR

    with open(DATA_DIR / ACCEPTANCE_FILE, newline="") as fh:
        rows = list(csv.DictReader(fh))
    cols: dict[str, np.ndarray] = {}
    for key in ("target", "draft", "method", "source", "table"):
        cols[key] = np.array([r[key] for r in rows], dtype=object)
    for key in ("prompt_len", "batch_size", "gamma", "acceptance_len", "line"):
        cols[key] = np.array([float(r[key]) for r in rows])
    cols["budget"] = np.array([float(r["budget"]) if r["budget"] else np.inf for r in rows])
    cols["rate"] = acceptance_rate_from_length(cols["acceptance_len"], cols["gamma"])
    return cols


_TABLE_CACHE: list = []


def acceptance_table() -> dict[str, np.ndarray]:
    """Shipped acceptance rows plus each row's per-token rate a (from its length and gamma)."""
    if not _TABLE_CACHE:
        _TABLE_CACHE.append(_acceptance_table())
    return {k: v.copy() for k, v in _TABLE_CACHE[0].items()}


def _lines(sources: np.ndarray, lines: np.ndarray) -> str:
    parts = []
    for src in sorted(set(sources)):
        picked = sorted(int(x) for x in lines[sources == src])
        parts.append(f"{src} lines {','.join(str(x) for x in picked)}")
    return "; ".join(parts)


def _pair_rows(t: dict, target: str, draft: str, method: str) -> np.ndarray:
    """Mask of the acceptance rows of one (target, draft, KV method); names case-insensitive."""
    lower = np.vectorize(str.lower, otypes=[object])
    return (
        (lower(t["target"]) == target.lower())
        & (lower(t["draft"]) == draft.lower())
        & (t["method"] == method)
    )


def has_published_acceptance(target: str, draft: str, method: str) -> bool:
    """Whether the shipped table has rows for this (target, draft, KV method) at all."""
    return bool(np.any(_pair_rows(acceptance_table(), target, draft, method)))


def published_acceptance(
    target: str, draft: str, method: str, budget: float, prompt_len
) -> tuple[np.ndarray, str]:
    """Per-token acceptance rate a for a model pair and KV method at the given prompt
    lengths: each published row's length is turned into a with its gamma, rows at the same
    (prompt, budget) are averaged over batch, then a is interpolated linearly in log2(prompt)
    (and log2(budget) for compressed methods), nearest beyond the data or where there is only
    one point. Returns (a, source). Raises PerfModelError where there is no data."""
    t = acceptance_table()
    mask = _pair_rows(t, target, draft, method)
    if not mask.any():
        raise PerfModelError(
            f"no published acceptance data for target {target}, draft {draft}, KV {method}; "
            "pass --acceptance-rate or --acceptance-len"
        )
    sub = {k: v[mask] for k, v in t.items()}
    p = np.asarray(prompt_len, float)
    # mean rate per (prompt_len, budget) point, averaged over batch
    keys = sorted(set(zip(sub["prompt_len"], sub["budget"], strict=True)))
    pts_p = np.array([k[0] for k in keys])
    pts_b = np.array([k[1] for k in keys])
    pts_r = np.array(
        [sub["rate"][(sub["prompt_len"] == kp) & (sub["budget"] == kb)].mean() for kp, kb in keys]
    )
    lp, lb = np.log2(pts_p), pts_b
    qb = np.inf if method == "full" else float(budget)
    budgets = np.unique(lb)
    if np.isfinite(qb) and not budgets.min() <= qb <= budgets.max():
        # acceptance falls as the draft's KV budget shrinks: never extrapolate in budget
        raise PerfModelError(
            f"no published acceptance data for target {target}, draft {draft}, KV {method}:"
            f"{int(qb)} (published budgets: {', '.join(str(int(x)) for x in budgets)}); "
            "pass --acceptance-rate or --acceptance-len"
        )
    if budgets.size > 1 and np.isfinite(qb):
        # interpolate in log2(budget) at each prompt length, then over prompt length
        grid_p = np.unique(lp)
        at_p = []
        for x in grid_p:  # a handful of published prompt lengths, not configurations
            m = lp == x
            order = np.argsort(lb[m])
            at_p.append(np.interp(np.log2(qb), np.log2(lb[m][order]), pts_r[m][order]))
        rate = np.interp(np.log2(np.maximum(p, 1)), grid_p, np.asarray(at_p))
        used = np.ones(sub["prompt_len"].size, bool)
    else:
        order = np.argsort(lp)
        xs, ys = lp[order], pts_r[order]
        if np.unique(xs).size < xs.size:  # several budgets, full or nominal query: nearest budget
            keep = np.isclose(
                lb[order], budgets[np.argmin(np.abs(np.log2(budgets) - np.log2(min(qb, 2**20))))]
            )
            xs, ys = xs[keep], ys[keep]
        q = np.log2(np.maximum(p, 1))
        rate = np.interp(q, xs, ys)
        lo = np.searchsorted(xs, q.min(), side="right") - 1
        hi = np.searchsorted(xs, q.max(), side="left")
        chosen = 2 ** xs[max(lo, 0) : min(hi, xs.size - 1) + 1]
        used = np.isin(sub["prompt_len"], np.round(chosen))
    used_prompts = sorted({int(x) for x in sub["prompt_len"][used]})
    how = "interpolated" if len(used_prompts) > 1 else "nearest published point"
    src = (
        f"{ACCEPTANCE_FILE} ({how}): {target}/{draft} {method} at prompt "
        f"{'/'.join(str(x) for x in used_prompts)}, per-token rate from "
        f"acceptance length and gamma, mean over batch; "
        f"{_lines(sub['source'][used], sub['line'][used])}"
    )
    return rate, src


def resolve_acceptance(
    acceptance_rate: float | None = None, acceptance_len: float | None = None, gamma=None
) -> float | None:
    """The user's acceptance as a per-token rate a (None: look it up from published data)."""
    if acceptance_rate is not None and acceptance_len is not None:
        raise PerfModelError("pass either --acceptance-rate or --acceptance-len, not both")
    if acceptance_rate is not None:
        return float(check_acceptance_rate(acceptance_rate))
    if acceptance_len is not None:
        if gamma is None:
            raise PerfModelError(
                "--acceptance-len depends on gamma: pass --gamma too, or use --acceptance-rate"
            )
        g = float(check_gammas(gamma)[0])
        return float(acceptance_rate_from_length(acceptance_len, g))
    return None


# --- the vectorized grid ------------------------------------------------------------------


@dataclass(frozen=True)
class SpecDecodeGrid:
    """Every (draft config c, gamma g, point n) at once; arrays are (C, G, N).

    Points are paired (batch[n], context[n]); memory is per (C, N) and does not depend on g.
    """

    configs: list[DraftConfig]
    gammas: np.ndarray  # (G,)
    batch: np.ndarray  # (N,)
    context: np.ndarray  # (N,)
    times: SpecDecodeTimes  # fields broadcast to (C, G, N)
    acceptance_rate: np.ndarray  # (C, 1, N)
    acceptance_source: list[str]  # per config
    fits: np.ndarray  # (C, N)
    memory_total_gb: np.ndarray  # (C, N)
    memory_capacity_gb: float
    memory_groups: list  # per config: (MemoryReport over its draft's configs x N, row index)

    @property
    def speedup(self) -> np.ndarray:
        return np.broadcast_to(self.times.speedup, self.shape)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.configs), self.gammas.size, self.batch.size)

    def memory(self, c: int):
        """Config c's MemoryReport over the N points (built on demand)."""
        mem, j = self.memory_groups[c]
        return _memory_row(mem, j)

    def masked_speedup(self, require_fit: bool = True) -> np.ndarray:
        """Speedup with configurations that cannot be ranked set to -inf: those without an
        acceptance rate (no published data for them) and, if required, those that OOM."""
        s = np.where(np.isfinite(self.speedup), self.speedup, -np.inf)
        return np.where(self.fits[:, None, :], s, -np.inf) if require_fit else s

    def best_index(self, require_fit: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(config index, gamma index) of the best speedup at each point (argmax)."""
        s = self.masked_speedup(require_fit)
        flat = s.reshape(-1, s.shape[-1]).argmax(axis=0)
        return np.unravel_index(flat, s.shape[:2])

    def best_speedup(self, require_fit: bool = True) -> np.ndarray:
        return self.masked_speedup(require_fit).max(axis=(0, 1))

    def record(self, c: int, g: int, n: int) -> dict:
        """One configuration as a JSON-ready dict."""
        t = self.times

        def at(x):
            return float(np.broadcast_to(x, self.shape)[c, g, n])

        cfg = self.configs[c]
        return {
            "batch": int(self.batch[n]),
            "prompt_len": int(self.context[n]),
            "draft": cfg.draft,
            "draft_kv": cfg.kv_label,
            "gamma": int(self.gammas[g]),
            "t_draft_ms": at(t.draft_s) * 1e3,
            "t_verify_ms": at(t.verify_s) * 1e3,
            "t_round_overhead_ms": at(t.round_overhead_s) * 1e3,
            "acceptance_len": at(t.acceptance_len),
            "acceptance_rate": float(self.acceptance_rate[c, 0, n]),
            "acceptance_source": self.acceptance_source[c],
            "t_sd_ms": at(t.sd_s) * 1e3,
            "t_autoregressive_ms": at(t.autoregressive_s) * 1e3,
            "speedup": at(t.speedup),
            "fits": bool(self.fits[c, n]),
            "memory": self.memory(c).as_dict(n),
        }

    def top(self, n: int = 0, k: int = 5, require_fit: bool = True) -> list[dict]:
        s = self.masked_speedup(require_fit)[:, :, n].ravel()
        order = [i for i in np.argsort(-s, kind="stable")[:k] if np.isfinite(s[i])]
        return [self.record(*np.unravel_index(i, self.shape[:2]), n) for i in order]


def evaluate_grid(
    target: Deployment,
    configs: list[DraftConfig],
    batch,
    context,
    gammas=DEFAULT_GAMMAS,
    acceptance_rate: float | None = None,
    output_len=0,
) -> SpecDecodeGrid:
    """Speculative decoding for every draft config x gamma x (batch, context) point.

    acceptance_rate: one per-token rate a for every config, or None to look each config up
    in the published acceptance data (its prompt length = the context). Memory counts target
    weights + KV of prompt+output tokens, the draft's weights (none for self-speculation)
    and the draft's KV cache of min(budget, tokens) per sequence.
    """
    g = check_gammas(gammas)
    b, c = (
        np.atleast_1d(x).ravel()
        for x in np.broadcast_arrays(np.asarray(batch, float), np.asarray(context, float))
    )
    if np.any(b < 1) or np.any(c < 1):
        raise PerfModelError("batch and context must be >= 1")
    budgets = np.array([cfg.budget for cfg in configs], float)
    if np.any(budgets <= 0):
        raise PerfModelError("KV budget must be positive")
    n_c = len(configs)
    draft_step = np.empty((n_c, 1, b.size))
    fits = np.empty((n_c, b.size), bool)
    total = np.empty((n_c, b.size))
    groups: list = [None] * n_c
    # one vectorized call per distinct draft model (at most a few), budgets broadcast
    for name in dict.fromkeys(cfg.draft for cfg in configs):
        idx = np.array([i for i, cfg in enumerate(configs) if cfg.draft == name])
        dep = draft_deployment(target, configs[idx[0]])
        bud = budgets[idx][:, None]
        draft_step[idx, 0, :] = decode_step_time(dep, b[None, :], c[None, :], 1, kv_budget=bud)
        mem = specdecode_memory(target, dep, b[None, :], c[None, :], output_len, bud, name == SELF)
        fits[idx], total[idx] = mem.fits, mem.total_gb
        for j, i in enumerate(idx):
            groups[i] = (mem, j)
        capacity = mem.capacity_gb
    gg = g[None, :, None]
    verify = decode_step_time(target, b[None, None, :], c[None, None, :], gg + 1.0)
    auto = decode_step_time(target, b, c, 1)[None, None, :]
    if acceptance_rate is not None:
        a = np.full((n_c, 1, b.size), float(check_acceptance_rate(acceptance_rate)))
        sources = [f"given: per-token acceptance rate {float(acceptance_rate):.4g}"] * n_c
    else:
        a = np.full((n_c, 1, b.size), np.nan)  # nan: no data, never ranked
        sources = []
        missing = []
        for i, cfg in enumerate(configs):  # table look-up per config, vectorized over points
            dep = draft_deployment(target, cfg)
            draft_name = target.model.name if cfg.self_speculation else dep.model.name
            try:
                rate, src = published_acceptance(
                    target.model.name, draft_name, cfg.method, cfg.budget, c
                )
            except PerfModelError:
                who = f"self-speculation of {draft_name}" if cfg.self_speculation else draft_name
                missing.append(f"{who} with {cfg.kv_label} KV")
                sources.append("no published acceptance data (not ranked)")
                continue
            a[i, 0, :] = rate
            sources.append(src)
        if len(missing) == n_c:
            raise PerfModelError(
                f"no published acceptance data for {missing[0]}"
                + (f" (nor {len(missing) - 1} other configurations)" if len(missing) > 1 else "")
                + "; pass --acceptance-rate or --acceptance-len"
            )
    known = np.isfinite(a)
    e = np.where(known, expected_accepted(np.where(known, a, 0.0), gg), np.nan)
    overhead = np.full((1, 1, 1), target.profile.sd_step_us * 1e-6)
    times = SpecDecodeTimes(gg, gg * draft_step, verify, overhead, e, auto)
    return SpecDecodeGrid(configs, g, b, c, times, a, sources, fits, total, float(capacity), groups)


def _memory_row(mem, j):
    """The j-th config's MemoryReport (rows of (C, N) arrays)."""
    from perfmodel.core.memory import MemoryReport

    def row(x):
        return np.broadcast_to(np.asarray(x), mem.total_gb.shape)[j]

    return MemoryReport(
        row(mem.weights_gb),
        row(mem.kv_cache_gb),
        row(mem.activation_gb),
        row(mem.total_gb),
        mem.capacity_gb,
        row(mem.fits),
        row(mem.missing_gb),
    )


def optimize(
    target: Deployment,
    configs: list[DraftConfig],
    batch,
    context,
    gammas=DEFAULT_GAMMAS,
    acceptance_rate: float | None = None,
    output_len=0,
    top_k: int = 5,
) -> list[dict]:
    """Best configuration per (batch, context) point (configs that do not fit excluded):
    {'best': record or None, 'top': [...], 'excluded_oom': [labels]} per point."""
    grid = evaluate_grid(target, configs, batch, context, gammas, acceptance_rate, output_len)
    ci, gi = grid.best_index(require_fit=True)
    out = []
    for n in range(grid.batch.size):
        any_fit = bool(grid.fits[:, n].any())
        out.append(
            {
                "best": grid.record(int(ci[n]), int(gi[n]), n) if any_fit else None,
                "top": grid.top(n, top_k),
                "excluded_oom": [cfg.label for i, cfg in enumerate(configs) if not grid.fits[i, n]],
            }
        )
    return out


# --- critical sequence length and minimum acceptance rate ---------------------------------


def _best_speedup_at(target, configs, batch, context, gammas, acceptance_rate, require_fit):
    grid = evaluate_grid(target, configs, batch, context, gammas, acceptance_rate)
    return grid.best_speedup(require_fit)


def critical_length(
    target: Deployment,
    configs: list[DraftConfig],
    batch,
    gammas=DEFAULT_GAMMAS,
    acceptance_rate: float | None = None,
    max_len: int | None = None,
    require_fit: bool = False,
    grid_points: int = 48,
) -> np.ndarray:
    """Smallest context L (tokens) at which the best configuration's speedup exceeds 1, per
    batch size; nan where it never does up to max_len (default: the target's context
    window). Exact: best(L-1) <= 1 < best(L) (best(0) is taken as <= 1).

    speedup(L) is monotone in practice but not guaranteed (budget caps, overheads), so a
    coarse log grid is scanned first and the first crossing is bisected on integers,
    all batch sizes at once. Memory is ignored unless require_fit (time model only).
    """
    b = np.atleast_1d(np.asarray(batch, float))
    top = int(max_len or target.model.max_position_embeddings)
    coarse = np.unique(np.round(np.geomspace(1, top, grid_points)).astype(int))
    bb, ll = np.meshgrid(b, coarse, indexing="ij")
    s = _best_speedup_at(
        target, configs, bb.ravel(), ll.ravel(), gammas, acceptance_rate, require_fit
    ).reshape(bb.shape)
    above = s > 1.0
    found = above.any(axis=1)
    first = above.argmax(axis=1)
    hi = coarse[first].astype(np.int64)
    lo = np.where(first > 0, coarse[np.maximum(first - 1, 0)], 0).astype(np.int64)
    while True:  # integer bisection on the first crossing, vectorized over batches
        active = found & (hi - lo > 1)
        if not active.any():
            break
        mid = (lo + hi) // 2
        s_mid = _best_speedup_at(
            target, configs, b[active], mid[active], gammas, acceptance_rate, require_fit
        )
        up = np.zeros_like(active)
        up[active] = s_mid > 1.0
        hi = np.where(active & up, mid, hi)
        lo = np.where(active & ~up, mid, lo)
    return np.where(found, hi.astype(float), np.nan)


def min_acceptance_rate(
    target: Deployment,
    configs: list[DraftConfig],
    batch: float,
    context: float,
    gammas=DEFAULT_GAMMAS,
) -> list[dict]:
    """Per (config, gamma): the per-token acceptance rate a at which speedup = 1 (brentq on
    a in [0, 1)); None where even a -> 1 (E = gamma+1) does not pay for the round."""
    from scipy.optimize import brentq

    grid = evaluate_grid(target, configs, [batch], [context], gammas, acceptance_rate=0.0)
    t = grid.times
    cost = np.broadcast_to(t.draft_s + t.verify_s + t.round_overhead_s, grid.shape)[:, :, 0]
    auto = float(np.ravel(t.autoregressive_s)[0])
    out = []
    for ci, cfg in enumerate(configs):
        for gi, g in enumerate(grid.gammas):

            def f(a, c=cost[ci, gi], g=g):
                return auto * (1.0 - a ** (g + 1.0)) / (1.0 - a) / c - 1.0

            hi = 1.0 - 1e-9
            rate = brentq(f, 0.0, hi, xtol=1e-10) if f(0.0) < 0 < f(hi) else None
            if f(0.0) >= 0:
                rate = 0.0
            out.append(
                {
                    "draft": cfg.draft,
                    "draft_kv": cfg.kv_label,
                    "gamma": int(g),
                    "min_acceptance_rate": rate,
                    "fits": bool(grid.fits[ci, 0]),
                }
            )
    return out
