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

from typing import NamedTuple

import numpy as np

from perfmodel.core.arrays import sorted_unique
from perfmodel.core.deployment import Deployment
from perfmodel.core.memory import MemoryReport, memory_report
from perfmodel.errors import PerfModelError
from perfmodel.planners.feasibility.memory import memory_verdict
from perfmodel.planners.feasibility.reasons import MEMORY, Reason, Verdict
from perfmodel.planners.pricing_memo import decode_step_time
from perfmodel.planners.speculation.acceptance import (
    ASSUMED_ACCEPTANCE,
    AcceptanceBasis,
    AcceptancePolicy,
    check_gammas,
    expected_accepted,
    resolve_bases,
)
from perfmodel.planners.speculation.deploy import (
    SELF,
    default_speculator,
    helper_deployment,
    helper_memory,
)
from perfmodel.planners.speculation.drafts import (
    DraftConfig,
    draft_configs,
    split_names,
)


class SpecDecodeTimes(NamedTuple):
    """One speculative round's times (seconds) and accepted tokens, broadcast arrays."""

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
) -> MemoryReport:
    """Memory per GPU with the draft: target weights + KV, plus the draft's memory beside it
    (speculation.helper_memory: its weights unless it is the target, KV of min(budget, tokens)),
    on the first stage's GPUs (core.memory). Self-speculation under pp > 1: the draft's
    compressed KV lies on every stage with the target's layers, so it is counted as
    min(budget, tokens) more tokens of the target's own KV cache."""
    output_len, extra = _draft_memory_terms(
        target, draft, batch, prompt_len, output_len, kv_budget, self_speculation
    )
    return memory_report(target, batch, prompt_len, output_len, extra_bytes=extra)


def _draft_memory_terms(target, draft, batch, prompt_len, output_len, kv_budget, self_spec):
    """(output_len, extra_bytes) that put the draft beside the target in core.memory: its
    bytes per GPU as extra_bytes, or, for self-speculation under pp > 1, its compressed KV
    as min(budget, tokens) more output tokens of the target's own cache (no weights)."""
    tokens = np.asarray(prompt_len, float) + np.asarray(output_len, float)
    if self_spec and target.pp > 1:
        held = np.minimum(np.asarray(kv_budget, float), tokens)
        return np.asarray(output_len, float) + held, 0.0
    return output_len, helper_memory(draft, tokens, kv_budget, self_spec).total(batch)


def draft_memory_verdict(
    target: Deployment, config: DraftConfig, batch, prompt_len, output_len=0
) -> Verdict:
    """The feasibility layer's memory_verdict of the target with this draft configuration
    beside it (specdecode_memory's bytes: the draft's weights unless it is the target, its
    KV of min(budget, tokens))."""
    draft = helper_deployment(target, config.draft, "draft")
    out, extra = _draft_memory_terms(
        target, draft, batch, prompt_len, output_len, config.budget, config.self_speculation
    )
    return memory_verdict(target, batch, prompt_len, out, extra, f"draft {config.label}")


class NoFitPoint(NamedTuple):
    """One answered point of a MagicDec command: its batch and context, and the draft
    configuration its answer shows (the best, or the one whose figures stand for it)."""

    batch: int
    context: int
    config: DraftConfig
    fits_any: bool  # some configuration fits at this point


def no_fit_verdict(target: Deployment, points: list[NoFitPoint]) -> Verdict:
    """One MEMORY reason when some point has no draft configuration that fits beside the
    target, empty when every point has one: how many points, and the worst one's figures
    (draft_memory_verdict of its shown configuration: GB per GPU needed, usable, short).
    The message is the text every MagicDec command leads with after "does not fit:"."""
    short = []
    for pt in points:
        if not pt.fits_any:
            v = draft_memory_verdict(target, pt.config, pt.batch, pt.context)
            if not v.ok:
                short.append((pt, v.reasons[0]))
    if not short:
        return Verdict()
    worst, why = max(short, key=lambda s: s[1].value - s[1].limit)
    where = f"batch {worst.batch}, context {worst.context}"
    if len(points) == 1:
        head = f"at {where} no draft configuration fits beside the target"
    else:
        head = (
            f"{len(short)} of {len(points)} points have no draft configuration that fits beside "
            f"the target (worst: {where})"
        )
    message = (
        f"{head}: {why.value:.1f} GB per GPU needed, {why.limit:.1f} GB usable "
        f"({why.value - why.limit:.1f} GB short)."
    )
    return Verdict((Reason(MEMORY, message, why.limit, why.value),))


# --- the MagicDec planner: draft choices, acceptance, grid, optimizer, critical length ----

DEFAULT_GAMMAS = tuple(range(1, 9))


# --- the vectorized grid ------------------------------------------------------------------


class SpecDecodeGrid(NamedTuple):
    """Every (draft config c, gamma g, point n) at once; arrays are (C, G, N).

    Points are paired (batch[n], context[n]); memory is per (C, N) and does not depend on g.
    """

    configs: list[DraftConfig]
    gammas: np.ndarray  # (G,)
    batch: np.ndarray  # (N,)
    context: np.ndarray  # (N,)
    times: SpecDecodeTimes  # fields broadcast to (C, G, N)
    acceptance_rate: np.ndarray  # (C, 1, N)
    acceptance: list[AcceptanceBasis]  # per config
    fits: np.ndarray  # (C, N)
    memory_total_gb: np.ndarray  # (C, N)
    memory_capacity_gb: float
    memory_groups: list  # per config: (MemoryReport over its draft's configs x N, row index)
    draft_tp: tuple[int, ...] = ()  # per config: the draft's TP (speculation.helper_tp)

    @property
    def speedup(self) -> np.ndarray:
        return np.broadcast_to(self.times.speedup, self.shape)

    @property
    def acceptance_source(self) -> list[str]:
        return [b.source for b in self.acceptance]

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
        s = _ranked(self.speedup)
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
            "draft_tp": self.draft_tp[c] if self.draft_tp else None,
            "t_draft_ms": at(t.draft_s) * 1e3,
            "t_verify_ms": at(t.verify_s) * 1e3,
            "t_round_overhead_ms": at(t.round_overhead_s) * 1e3,
            "acceptance_len": at(t.acceptance_len),
            "acceptance_rate": float(self.acceptance_rate[c, 0, n]),
            "acceptance_source": self.acceptance[c].source,
            "acceptance_basis": self.acceptance[c].kind,
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
    acceptance_rate: float | AcceptancePolicy | None = None,
    output_len=0,
    passes: GridPasses | None = None,
) -> SpecDecodeGrid:
    """Speculative decoding for every draft config x gamma x (batch, context) point.

    acceptance_rate: one per-token rate a for every config, None to look each config up in
    the published acceptance data (its prompt length = the context), or an AcceptancePolicy
    (speculation.acceptance: whether an assumed rate stands in for missing data). Memory counts target
    weights + KV of prompt+output tokens, the draft's weights (none for self-speculation)
    and the draft's KV cache of min(budget, tokens) per sequence. passes: the grid's passes
    already priced (price_passes, or its take of a larger pricing); None: priced here.
    """
    g, b, c, budgets = _grid_points(configs, batch, context, gammas)
    drafts = _draft_groups(target, configs)
    times, a, bases = _grid_times(
        target, configs, drafts, g, b, c, budgets, acceptance_rate, passes
    )
    n_c = len(configs)
    fits = np.empty((n_c, b.size), bool)
    total = np.empty((n_c, b.size))
    groups: list = [None] * n_c
    draft_tp = [0] * n_c
    for name, idx, dep in drafts:  # memory per distinct draft model, budgets broadcast
        bud = budgets[idx][:, None]
        mem = specdecode_memory(target, dep, b[None, :], c[None, :], output_len, bud, name == SELF)
        fits[idx], total[idx] = mem.fits, mem.total_gb
        for j, i in enumerate(idx):
            groups[i], draft_tp[i] = (mem, j), int(dep.tp)
        capacity = mem.capacity_gb
    return SpecDecodeGrid(
        configs, g, b, c, times, a, bases, fits, total, float(capacity), groups, tuple(draft_tp)
    )


def _grid_points(configs: list[DraftConfig], batch, context, gammas):
    """(gammas, batch and context as flat paired points, each config's KV budget), checked."""
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
    return g, b, c, budgets


def _draft_groups(target: Deployment, configs: list[DraftConfig]) -> list:
    """(draft name, indices of its configs, its deployment) per distinct draft model."""
    out = []
    for name in dict.fromkeys(cfg.draft for cfg in configs):
        idx = np.array([i for i, cfg in enumerate(configs) if cfg.draft == name])
        out.append((name, idx, helper_deployment(target, configs[idx[0]].draft, "draft")))
    return out


class GridPasses(NamedTuple):
    """The passes a grid of C configurations, G gammas and N points prices: each
    configuration's draft step (C, 1, N), the target's plain step (1, 1, N) and its
    verification of each gamma (1, G, N), seconds."""

    draft_step: np.ndarray
    auto: np.ndarray
    verify: np.ndarray

    def take(self, configs, points) -> GridPasses:
        """The passes of some configurations (indices) at some points (indices or a slice)."""
        return GridPasses(
            self.draft_step[np.asarray(configs, int)][:, :, points],
            self.auto[:, :, points],
            self.verify[:, :, points],
        )


def price_passes(
    target: Deployment, configs: list[DraftConfig], batch, context, gammas=DEFAULT_GAMMAS
) -> GridPasses:
    """The passes evaluate_grid prices for these configurations at these (batch, context)
    points. Each point of a sweep is priced as on its own, so the passes of several grids
    may be priced at once and handed to each (GridPasses.take)."""
    g, b, c, budgets = _grid_points(configs, batch, context, gammas)
    return _grid_passes(target, _draft_groups(target, configs), g, b, c, budgets)


def _grid_passes(target, drafts, g, b, c, budgets) -> GridPasses:
    draft_step = np.empty((budgets.size, 1, b.size))
    own = np.array([], int)  # self-speculation's configs: priced with the target's passes
    for _, idx, dep in drafts:  # one vectorized call per distinct draft model (a few)
        if dep is target:
            own = idx
        else:
            bud = budgets[idx][:, None]
            draft_step[idx, 0, :] = decode_step_time(dep, b[None, :], c[None, :], 1, kv_budget=bud)
    # the target's passes in one call (each point is priced as on its own), a row each:
    # self-speculation's draft steps at their KV budgets, the plain step, and the
    # verification of each gamma (new tokens and KV budget per row)
    new_tokens = np.concatenate((np.ones(own.size), np.ones(1), g + 1.0))
    budget = np.concatenate((budgets[own], np.full(1 + g.size, np.inf)))
    rows = decode_step_time(
        target, b[None, :], c[None, :], new_tokens[:, None], kv_budget=budget[:, None]
    )
    draft_step[own, 0, :] = rows[: own.size]
    return GridPasses(draft_step, rows[own.size][None, None, :], rows[own.size + 1 :][None, :, :])


def _grid_times(target, configs, drafts, g, b, c, budgets, acceptance_rate, passes=None):
    """(SpecDecodeTimes over (C, G, N), acceptance rates (C, 1, N), bases): evaluate_grid's
    time model, without its memory; passes: already priced (None: priced here)."""
    n_c = len(configs)
    if passes is None:
        passes = _grid_passes(target, drafts, g, b, c, budgets)
    elif passes.draft_step.shape != (n_c, 1, b.size) or passes.verify.shape != (1, g.size, b.size):
        raise ValueError("the passes given were priced for another grid")
    draft_step, auto, verify = passes
    gg = g[None, :, None]
    bases = resolve_bases(target, configs, c, acceptance_rate)
    missing = [cfg for cfg, bs in zip(configs, bases, strict=True) if not bs.ranked]
    if len(missing) == n_c:
        who = (
            f"self-speculation of {target.model.name}"
            if missing[0].self_speculation
            else (helper_deployment(target, missing[0].draft, "draft").model.name)
        )
        raise PerfModelError(
            f"no published acceptance data for {who} with {missing[0].kv_label} KV"
            + (f" (nor {len(missing) - 1} other configurations)" if len(missing) > 1 else "")
            + "; pass --acceptance-rate or --acceptance-len"
        )
    a = np.stack([bs.rate for bs in bases])[:, None, :]  # nan where unknown: never ranked
    known = np.isfinite(a)
    e = np.where(known, expected_accepted(np.where(known, a, 0.0), gg), np.nan)
    overhead = np.full((1, 1, 1), target.profile.sd_step_us * 1e-6)
    return SpecDecodeTimes(gg, gg * draft_step, verify, overhead, e, auto), a, bases


def _memory_row(mem, j):
    """The j-th config's MemoryReport (rows of (C, N) arrays)."""

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
    acceptance_rate: float | AcceptancePolicy | None = None,
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


# --- the planners' shared MagicDec choice -------------------------------------------------
PLANNER_BUDGETS = (256, 512, 1024, 2048, 4096)  # restricted KV-budget grid (cold start <= 0.5 s)
PLANNER_KV = "full,streamingllm"


def decode_pays(speedup, fits) -> bool:
    """The one rule for speculative decoding, in every command, page and planner: it pays
    where the best configuration beats plain decoding (speedup > 1) and fits in memory
    beside the target."""
    return bool(speedup > 1.0 and fits)


class SpecDecodeChoice(NamedTuple):
    """The best MagicDec configuration at one (batch, context) point and its basis."""

    draft: str
    draft_kv: str
    kv_budget: float | None
    gamma: int
    speedup: float
    t_sd_s: float
    t_autoregressive_s: float
    acceptance_rate: float
    acceptance_len: float
    acceptance: AcceptanceBasis
    fits: bool

    @property
    def pays(self) -> bool:
        return decode_pays(self.speedup, self.fits)

    @property
    def label(self) -> str:
        return f"{self.draft}/{self.draft_kv} gamma {self.gamma}"


def choice_at(
    grid: SpecDecodeGrid, n: int, require_fit: bool = True, masked: np.ndarray | None = None
) -> SpecDecodeChoice | None:
    """The grid's best configuration at point n (None when nothing is ranked, or nothing
    fits and require_fit). masked: grid.masked_speedup(require_fit), passed in by a caller
    that asks for every point (computed once, not once per point)."""
    s = (grid.masked_speedup(require_fit) if masked is None else masked)[:, :, n]
    if not np.any(np.isfinite(s)):
        return None
    c, g = np.unravel_index(int(np.argmax(s)), s.shape)
    cfg = grid.configs[c]
    t = grid.times

    def at(x):
        return float(np.broadcast_to(x, grid.shape)[c, g, n])

    return SpecDecodeChoice(
        draft=cfg.draft,
        draft_kv=cfg.kv_label,
        kv_budget=cfg.kv_budget,
        gamma=int(grid.gammas[g]),
        speedup=at(t.speedup),
        t_sd_s=at(t.sd_s),
        t_autoregressive_s=at(t.autoregressive_s),
        acceptance_rate=float(grid.acceptance_rate[c, 0, n]),
        acceptance_len=at(t.acceptance_len),
        acceptance=grid.acceptance[c],
        fits=bool(grid.fits[c, n]),
    )


def choices_at(grid: SpecDecodeGrid, require_fit: bool = True) -> list[SpecDecodeChoice | None]:
    """choice_at at every point of the grid, vectorized: the argmax of every point at once
    and each field read once (the capacity search asks for every batch of its grid)."""
    s = grid.masked_speedup(require_fit)
    flat = s.reshape(-1, s.shape[-1])
    ranked = np.isfinite(flat).any(axis=0)
    ci, gi = np.unravel_index(flat.argmax(axis=0), s.shape[:2])
    n = np.arange(s.shape[-1])
    t = grid.times

    def at(x):
        return np.broadcast_to(x, grid.shape)[ci, gi, n]

    speedup, sd, auto, length = (
        at(t.speedup),
        at(t.sd_s),
        at(t.autoregressive_s),
        at(t.acceptance_len),
    )
    rate = grid.acceptance_rate[ci, 0, n]
    fits = grid.fits[ci, n]
    out: list[SpecDecodeChoice | None] = []
    for j in n:
        if not ranked[j]:
            out.append(None)
            continue
        cfg = grid.configs[ci[j]]
        out.append(
            SpecDecodeChoice(
                draft=cfg.draft,
                draft_kv=cfg.kv_label,
                kv_budget=cfg.kv_budget,
                gamma=int(grid.gammas[gi[j]]),
                speedup=float(speedup[j]),
                t_sd_s=float(sd[j]),
                t_autoregressive_s=float(auto[j]),
                acceptance_rate=float(rate[j]),
                acceptance_len=float(length[j]),
                acceptance=grid.acceptance[ci[j]],
                fits=bool(fits[j]),
            )
        )
    return out


def planner_configs(target: Deployment, drafts: str | None = None) -> list[DraftConfig]:
    """The draft configurations recommend and capacity search: the default speculator model
    and self-speculation (or the user's drafts), full KV and StreamingLLM PLANNER_BUDGETS."""
    if drafts is None:
        small = default_speculator(target.model, target.tp, role="draft")
        names = [n for n in (small, SELF) if n]
    else:
        names = split_names(drafts, "--draft")
    return draft_configs(names, PLANNER_KV, budgets=PLANNER_BUDGETS)


def planner_policy(acceptance_rate: float | None = None) -> AcceptancePolicy:
    """The planners' acceptance policy: the user's rate, else published data, else (only
    where no configuration has data) ASSUMED_ACCEPTANCE, labeled 'assumed'."""
    return AcceptancePolicy(acceptance_rate, ASSUMED_ACCEPTANCE, assumed_competes=False)


# --- critical sequence length and minimum acceptance rate ---------------------------------


def _ranked(speedup: np.ndarray) -> np.ndarray:
    """Speedup with the configurations that have no acceptance rate (nan) set to -inf."""
    return np.where(np.isfinite(speedup), speedup, -np.inf)


def _best_speedup_at(
    target, configs, batch, context, gammas, acceptance_rate, require_fit, passes=None
):
    """evaluate_grid(...).best_speedup(require_fit); without require_fit from the grid's
    times alone (its memory is never read)."""
    if require_fit:
        grid = evaluate_grid(target, configs, batch, context, gammas, acceptance_rate, 0, passes)
        return grid.best_speedup(require_fit)
    g, b, c, budgets = _grid_points(configs, batch, context, gammas)
    drafts = _draft_groups(target, configs)
    times = _grid_times(target, configs, drafts, g, b, c, budgets, acceptance_rate, passes)[0]
    return _ranked(np.broadcast_to(times.speedup, (len(configs), g.size, b.size))).max(axis=(0, 1))


def critical_length(
    target: Deployment,
    configs: list[DraftConfig],
    batch,
    gammas=DEFAULT_GAMMAS,
    acceptance_rate: float | AcceptancePolicy | None = None,
    max_len: int | None = None,
    require_fit: bool = False,
    grid_points: int = 48,
    coarse_passes: GridPasses | None = None,
) -> np.ndarray:
    """Smallest context L (tokens) at which the best configuration's speedup exceeds 1, per
    batch size; nan where it never does up to max_len (default: the target's context
    window). Exact: best(L-1) <= 1 < best(L) (best(0) is taken as <= 1).

    speedup(L) is monotone in practice but not guaranteed (budget caps, overheads), so a
    coarse log grid (coarse_contexts) is scanned first and the first crossing is bisected
    on integers, all batch sizes at once. Memory is ignored unless require_fit (time model
    only). coarse_passes: the scan's passes already priced, at each batch (outer) and
    coarse context (inner); None: priced here.
    """
    b = np.atleast_1d(np.asarray(batch, float))
    top = int(max_len or target.model.max_position_embeddings)
    coarse = coarse_contexts(top, grid_points)
    bb, ll = np.meshgrid(b, coarse, indexing="ij")
    s = _best_speedup_at(
        target,
        configs,
        bb.ravel(),
        ll.ravel(),
        gammas,
        acceptance_rate,
        require_fit,
        coarse_passes,
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


def coarse_contexts(top: int, grid_points: int = 48) -> np.ndarray:
    """The contexts critical_length scans first: a log grid from 1 to top, whole tokens."""
    return sorted_unique(np.round(np.geomspace(1, top, grid_points)).astype(int))


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
