"""MagicDec draft choices: a draft model (or the target itself) and its KV cache method."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from perfmodel.errors import PerfModelError
from perfmodel.planners.speculation.deploy import SELF
from perfmodel.specs.units import parse_size

KV_METHODS = ("full", "streamingllm", "snapkv")
DEFAULT_BUDGETS = tuple(2**k for k in range(7, 14))  # 128 .. 8192 tokens


class DraftConfig(NamedTuple):
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
    def kv_budget(self) -> float | None:
        return None if self.method == "full" else float(self.budget)

    @property
    def label(self) -> str:
        return f"{self.draft}/{self.kv_label}"


def split_names(text: str, what: str) -> list[str]:
    """A comma-separated list of names; an empty item ('1b,,self', '1b,', '') is an error,
    not silently dropped."""
    parts = [part.strip() for part in str(text).split(",")]
    if any(not part for part in parts):
        shown = str(text).strip()
        raise PerfModelError(f"{what}: empty item in '{shown}'" if shown else f"{what}: none given")
    return parts


def parse_draft_kv(text: str, budgets=DEFAULT_BUDGETS) -> list[tuple[str, float]]:
    """'full', 'streamingllm:512', 'snapkv:1024', lists 'full,snapkv:256'; a compressed
    method without a budget stands for every budget in `budgets` (for the optimizer)."""
    out: list[tuple[str, float]] = []
    for part in split_names(text, "--draft-kv"):
        part = part.lower()
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
    names = split_names(drafts, "--draft") if isinstance(drafts, str) else list(drafts)
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
