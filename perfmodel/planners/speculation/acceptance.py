"""Acceptance of a MagicDec draft: the math, the published table, and one resolver.

Leviathan et al. 2023: E(a, gamma) = (1 - a^(g+1)) / (1 - a) tokens per round, a the per-token
acceptance rate. The published rows (validation/published/magicdec_*.csv, MagicDec Table 6-7
acceptance lengths) give a through E and gamma.

Every planner gets its rates from resolve_bases, which returns one AcceptanceBasis per draft
configuration (kind given | published | interpolated | nearest | assumed | unknown, the rates,
the source). Whether an assumed rate may stand in for missing data is an explicit switch:
- assumed_rate=None: configurations without data are 'unknown' (never ranked);
- assumed_rate=a, assumed_competes=False: a is used only when no configuration has data
  (every configuration then has basis 'assumed'); otherwise those without data stay unknown,
  so an assumed rate never outranks a published one;
- assumed_competes=True: every configuration without data gets a, beside the published ones.
"""

from __future__ import annotations

import csv
import functools
from typing import NamedTuple

import numpy as np

from perfmodel.core.arrays import sorted_unique
from perfmodel.errors import PerfModelError
from perfmodel.paths import DATA_DIR, PUBLISHED_DIR
from perfmodel.planners.speculation.deploy import helper_deployment
from perfmodel.planners.speculation.drafts import DraftConfig

ASSUMED_ACCEPTANCE = 0.8  # per-token rate used only where the caller allows an assumption
KINDS = ("given", "published", "interpolated", "nearest", "assumed", "unknown")


def check_acceptance_rate(a, what: str = "acceptance rate") -> np.ndarray:
    try:
        a = np.asarray(a, dtype=float)
    except OverflowError:
        a = np.array(np.inf)
    if np.any(~np.isfinite(a)) or np.any(a < 0) or np.any(a >= 1):
        raise PerfModelError(f"{what} must be in [0, 1), got {np.ravel(a).tolist()}")
    return a


MAX_GAMMA = 64  # draft tokens per round: past it the whole run is accepted with a**64 ~ 0


def check_gammas(gammas) -> np.ndarray:
    """Draft tokens per round: whole numbers from 1 to MAX_GAMMA (one line naming --gamma)."""
    try:
        g = np.atleast_1d(np.asarray(gammas, float))
    except (OverflowError, TypeError, ValueError):
        raise PerfModelError(f"--gamma must be an integer from 1 to {MAX_GAMMA}") from None
    if g.size == 0 or np.any(~np.isfinite(g)) or np.any(g < 1) or np.any(g != np.round(g)):
        raise PerfModelError(f"--gamma must be an integer from 1 to {MAX_GAMMA}, got {g.tolist()}")
    if np.any(g > MAX_GAMMA):
        raise PerfModelError(
            f"--gamma must be at most {MAX_GAMMA}, got {g.max():g}: a longer draft is never "
            "accepted whole (a**gamma vanishes)"
        )
    return g


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


# --- published acceptance data ------------------------------------------------------------

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
    PYTHONPATH=. python -c "from perfmodel.planners.speculation.acceptance import write_acceptance_table as w; w()"
    """
    import pandas as pd  # optional at import time: only the regeneration needs it

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
    path = path or DATA_DIR / ACCEPTANCE_FILE
    acceptance_rows_from_published().to_csv(path, index=False)
    return str(path)


@functools.cache
def _shipped_rows() -> dict[str, np.ndarray]:
    """Column arrays of the shipped acceptance CSV (csv module: no pandas on the CLI path),
    read once per process (only read here, never changed)."""
    with open(DATA_DIR / ACCEPTANCE_FILE, newline="") as fh:
        rows = list(csv.DictReader(fh))
    cols: dict[str, np.ndarray] = {}
    for key in ("target", "draft", "method", "source", "table"):
        cols[key] = np.array([r[key] for r in rows], dtype=object)
    for key in ("prompt_len", "batch_size", "gamma", "acceptance_len", "line"):
        cols[key] = np.array([float(r[key]) for r in rows])
    cols["budget"] = np.array([float(r["budget"]) if r["budget"] else np.inf for r in rows])
    return cols


@functools.cache
def _shipped_table() -> dict[str, np.ndarray]:
    """_shipped_rows with the rate column, worked out once and only when a pair of models
    has rows (a target without published data never needs it)."""
    cols = dict(_shipped_rows())
    cols["rate"] = acceptance_rate_from_length(cols["acceptance_len"], cols["gamma"])
    return cols


def acceptance_table() -> dict[str, np.ndarray]:
    """Shipped acceptance rows plus each row's per-token rate a (from its length and gamma)."""
    return {k: v.copy() for k, v in _shipped_table().items()}


def _lines(sources: np.ndarray, lines: np.ndarray) -> str:
    parts = []
    for src in sorted(set(sources)):
        picked = sorted(int(x) for x in lines[sources == src])
        parts.append(f"{src} lines {','.join(str(x) for x in picked)}")
    return "; ".join(parts)


@functools.cache
def _lower_names() -> tuple[np.ndarray, np.ndarray]:
    """The shipped rows' target and draft names in lower case (pairs match case-insensitively),
    lowered once per process."""
    t = _shipped_rows()
    return tuple(np.array([n.lower() for n in t[k]], dtype=object) for k in ("target", "draft"))


@functools.lru_cache(maxsize=256)
def _pair_mask(target: str, draft: str, method: str) -> np.ndarray:
    """Mask of the shipped acceptance rows of one (target, draft, KV method), names
    case-insensitive; once per pair: a planner asks for every KV budget of one pair
    (read-only mask)."""
    targets, drafts = _lower_names()
    mask = (
        (targets == target.lower())
        & (drafts == draft.lower())
        & (_shipped_rows()["method"] == method)
    )
    mask.flags.writeable = False
    return mask


@functools.lru_cache(maxsize=256)
def _has_pair(target: str, draft: str, method: str) -> bool:
    """Whether the shipped table has any row of the pair (_published_acceptance refuses a
    pair without one, whatever the budget and prompt lengths asked)."""
    return bool(_pair_mask(target, draft, method).any())


def published_acceptance(
    target: str, draft: str, method: str, budget: float, prompt_len
) -> tuple[np.ndarray, str, str]:
    """_published_acceptance, memoized: a pure function of the shipped rows, asked for every
    configuration of every deployment a planner searches (a copy of the rates each time)."""
    p = np.asarray(prompt_len, float)
    answer = _published_acceptance_cached(
        target, draft, method, float(budget), p.shape, tuple(p.ravel().tolist())
    )
    if isinstance(answer, str):  # no data: the same one-line error every time
        raise PerfModelError(answer)
    rate, src, kind = answer
    return rate.copy(), src, kind


@functools.lru_cache(maxsize=4096)
def _published_acceptance_cached(target, draft, method, budget, shape, values):
    try:
        rate, src, kind = _published_acceptance(
            target, draft, method, budget, np.array(values, float).reshape(shape)
        )
    except PerfModelError as exc:
        return str(exc)
    rate = np.asarray(rate, float)
    rate.flags.writeable = False
    return rate, src, kind


def _published_acceptance(
    target: str, draft: str, method: str, budget: float, prompt_len
) -> tuple[np.ndarray, str, str]:
    """Per-token acceptance rate a for a model pair and KV method at the given prompt
    lengths: each published row's length is turned into a with its gamma, rows at the same
    (prompt, budget) are averaged over batch, then a is interpolated linearly in log2(prompt)
    (and log2(budget) for compressed methods), nearest beyond the data or where there is only
    one point. Returns (a, source, kind): kind 'published' where every query is a published
    point, 'interpolated' between points, 'nearest' from one point. Raises PerfModelError
    where there is no data."""
    mask = _pair_mask(target, draft, method)
    if not mask.any():
        raise PerfModelError(
            f"no published acceptance data for target {target}, draft {draft}, KV {method}; "
            "pass --acceptance-rate or --acceptance-len"
        )
    t = _shipped_table()  # read only: the rows of the pair are copied out below
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
    budgets = sorted_unique(lb)
    if np.isfinite(qb) and not budgets.min() <= qb <= budgets.max():
        # acceptance falls as the draft's KV budget shrinks: never extrapolate in budget
        raise PerfModelError(
            f"no published acceptance data for target {target}, draft {draft}, KV {method}:"
            f"{int(qb)} (published budgets: {', '.join(str(int(x)) for x in budgets)}); "
            "pass --acceptance-rate or --acceptance-len"
        )
    if budgets.size > 1 and np.isfinite(qb):
        # interpolate in log2(budget) at each prompt length, then over prompt length
        grid_p = sorted_unique(lp)
        at_p = []
        for x in grid_p:  # a handful of published prompt lengths, not configurations
            m = lp == x
            order = np.argsort(lb[m])
            at_p.append(np.interp(np.log2(qb), np.log2(lb[m][order]), pts_r[m][order]))
        rate = np.interp(np.log2(np.maximum(p, 1)), grid_p, np.asarray(at_p))
        used = np.ones(sub["prompt_len"].size, bool)
        exact_budget = bool(np.any(np.isclose(budgets, qb)))
    else:
        order = np.argsort(lp)
        xs, ys = lp[order], pts_r[order]
        if (
            sorted_unique(xs).size < xs.size
        ):  # several budgets, full or nominal query: nearest budget
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
        exact_budget = True
    used_prompts = sorted({int(x) for x in sub["prompt_len"][used]})
    exact = exact_budget and bool(np.all(np.isin(np.round(np.ravel(p)), pts_p)))
    kind = "published" if exact else "interpolated" if len(used_prompts) > 1 else "nearest"
    how = {"published": "published point", "interpolated": "interpolated"}.get(
        kind, "nearest published point"
    )
    src = (
        f"{ACCEPTANCE_FILE} ({how}): {target}/{draft} {method} at prompt "
        f"{'/'.join(str(x) for x in used_prompts)}, per-token rate from "
        f"acceptance length and gamma, mean over batch; "
        f"{_lines(sub['source'][used], sub['line'][used])}"
    )
    return rate, src, kind


def resolve_acceptance(
    acceptance_rate: float | None = None, acceptance_len: float | None = None, gamma=None
) -> float | None:
    """The user's acceptance as a per-token rate a (None: look it up from published data)."""
    if acceptance_rate is not None and acceptance_len is not None:
        raise PerfModelError("pass either --acceptance-rate or --acceptance-len, not both")
    if acceptance_rate is not None:
        return float(check_acceptance_rate(acceptance_rate, "--acceptance-rate"))
    if acceptance_len is not None:
        if gamma is None:
            raise PerfModelError(
                "--acceptance-len depends on gamma: pass --gamma too, or use --acceptance-rate"
            )
        g = float(check_gammas([gamma])[0])
        return float(acceptance_rate_from_length(acceptance_len, g))
    return None


class AcceptanceBasis(NamedTuple):
    """The per-token acceptance rate of one draft configuration and what it rests on.

    kind: given (by the user), published (a published point), interpolated (between
    published points), nearest (the nearest published point), assumed (a stated assumption,
    no data), unknown (no data and no assumption allowed: never ranked; rate is nan).
    rate: per point (the contexts asked for).
    """

    kind: str
    rate: np.ndarray
    source: str

    @property
    def ranked(self) -> bool:
        return self.kind != "unknown"

    @property
    def label(self) -> str:
        """'published', 'assumed 0.8', 'given 0.7': the short label captions show."""
        if self.kind in ("given", "assumed"):
            return f"{self.kind} {float(np.ravel(self.rate)[0]):g}"
        return self.kind


def given_basis(rate: float, n: int = 1) -> AcceptanceBasis:
    a = float(check_acceptance_rate(rate, "--acceptance-rate"))
    return AcceptanceBasis("given", np.full(n, a), f"given: per-token acceptance rate {a:.4g}")


def assumed_basis(rate: float, n: int, why: str) -> AcceptanceBasis:
    a = float(check_acceptance_rate(rate))
    return AcceptanceBasis("assumed", np.full(n, a), f"assumed {a:g} per token: {why}")


def published_basis(target, cfg: DraftConfig, context, draft: str | None = None) -> AcceptanceBasis:
    """The published look-up for one configuration; kind 'unknown' where there is no data.
    draft: the draft model's name when the caller has checked it already (resolve_bases)."""
    c = np.atleast_1d(np.asarray(context, float))
    if draft is None:
        draft = (
            target.model.name
            if cfg.self_speculation
            else helper_deployment(target, cfg.draft, "draft").model.name
        )
    if _has_pair(target.model.name, draft, cfg.method):  # else the look-up would refuse it
        try:
            rate, src, kind = published_acceptance(
                target.model.name, draft, cfg.method, cfg.budget, c
            )
        except PerfModelError:
            pass
        else:
            return AcceptanceBasis(kind, np.broadcast_to(rate, c.shape).astype(float), src)
    return AcceptanceBasis(
        "unknown", np.full(c.size, np.nan), "no published acceptance data (not ranked)"
    )


class AcceptancePolicy(NamedTuple):
    """Where a draft's acceptance comes from: the user's rate, else published data, else
    (only if assumed_rate is set) an assumption; see the module docstring for the switch."""

    given_rate: float | None = None
    assumed_rate: float | None = None
    assumed_competes: bool = False


def as_policy(acceptance) -> AcceptancePolicy:
    """A policy from a policy, a user's per-token rate, or None (published data only)."""
    if isinstance(acceptance, AcceptancePolicy):
        return acceptance
    return AcceptancePolicy(None if acceptance is None else float(acceptance))


def all_assumed(bases: list[AcceptanceBasis]) -> bool:
    """True when no configuration has published data and every rate is the assumption."""
    return bool(bases) and all(b.kind == "assumed" for b in bases)


def resolve_bases(
    target, configs: list[DraftConfig], context, acceptance=None
) -> list[AcceptanceBasis]:
    """One AcceptanceBasis per configuration under a policy (or a given rate, or None)."""
    pol = as_policy(acceptance)
    n = np.atleast_1d(np.asarray(context, float)).size
    if pol.given_rate is not None:
        return [given_basis(pol.given_rate, n)] * len(configs)
    names: dict = {}  # one helper deployment (its checks, its name) per distinct draft
    for cfg in configs:
        if cfg.draft not in names:
            names[cfg.draft] = (
                target.model.name
                if cfg.self_speculation
                else helper_deployment(target, cfg.draft, "draft").model.name
            )
    bases = [published_basis(target, cfg, context, names[cfg.draft]) for cfg in configs]
    if pol.assumed_rate is None:
        return bases
    missing = [i for i, b in enumerate(bases) if not b.ranked]
    if not missing or (len(missing) < len(bases) and not pol.assumed_competes):
        return bases
    whole = {configs[i].draft for i in missing} - {
        c.draft for c, b in zip(configs, bases, strict=True) if b.ranked
    }
    named = sorted(whole) + sorted(
        {configs[i].label for i in missing if configs[i].draft not in whole}
    )
    why = (
        f"no published acceptance data for {target.model.name} with {', '.join(named)} "
        "(published: Llama-3.1-8B with Llama-3.2-1B, full KV and StreamingLLM 512)"
    )
    out = list(bases)
    assumed = assumed_basis(pol.assumed_rate, n, why)  # one record: the same for each
    for i in missing:
        out[i] = assumed
    return out
