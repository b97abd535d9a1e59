"""The speculative-decoding choices a user makes (draft, its KV cache, gamma, acceptance) and
their resolution into what the MagicDec planner runs: draft configurations, gammas and the
acceptance policy. One declaration for specdecode, critical-length and min-acceptance."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perfmodel.core.deployment import Deployment
from perfmodel.errors import PerfModelError
from perfmodel.planners import specdecode as sd
from perfmodel.planners.speculation.acceptance import (
    ASSUMED_ACCEPTANCE,
    AcceptancePolicy,
    all_assumed,
    resolve_acceptance,
    resolve_bases,
)
from perfmodel.planners.speculation.deploy import describe_placement, helper_deployment
from perfmodel.planners.speculation.drafts import DraftConfig, draft_configs
from perfmodel.specs.units import parse_size_list

DEFAULT_BUDGETS_TEXT = "128,256,512,1024,2048,4096,8192"


@dataclass(frozen=True)
class SpeculationOptions:
    """The user's speculative-decoding choices, as given (validated by `resolve_speculation`).

    draft: draft model(s), '1b', 'self' or a list '1b,self'; draft_kv: full | streamingllm:B |
    snapkv:B or a list (no :B = every budget in `budgets`, a list of sizes); gamma None =
    optimize over 1..8; acceptance_rate or acceptance_len (tokens per round, needs gamma),
    neither = published data, else the assumed rate, labeled."""

    draft: str = "1b"
    draft_kv: str = "streamingllm:512"
    budgets: str = DEFAULT_BUDGETS_TEXT
    gamma: int | None = None
    acceptance_rate: float | None = None
    acceptance_len: float | None = None


@dataclass(frozen=True)
class SpeculationSetup:
    """What the MagicDec planner runs: configurations, gammas, the acceptance policy, and the
    notices the user should read (the assumed-acceptance warning)."""

    configs: list[DraftConfig]
    gammas: np.ndarray
    policy: AcceptancePolicy
    notices: tuple[str, ...] = ()


def placement_notices(dep: Deployment, configs: list[DraftConfig]) -> tuple[str, ...]:
    """Where each draft that does not run at the target's TP runs (speculation.helper_tp),
    one line each; checks every draft's size and vocabulary (PerfModelError)."""
    out = []
    for name in dict.fromkeys(cfg.draft for cfg in configs):
        draft = helper_deployment(dep, name, "draft")
        if draft is not dep and draft.tp != dep.tp:
            out.append(f"draft {draft.model.name} runs on {describe_placement(dep, draft)}")
    return tuple(out)


def resolve_speculation(dep: Deployment, options: SpeculationOptions) -> SpeculationSetup:
    """Check the choices against the target deployment (draft size and vocabulary, gamma,
    acceptance) before any work; raises PerfModelError with one line naming the option."""
    budget_list = parse_size_list(options.budgets, "--budgets")
    configs = draft_configs(options.draft, options.draft_kv, budget_list)
    placed = placement_notices(dep, configs)  # size and vocabulary checks before any work
    gamma, length = options.gamma, options.acceptance_len
    gammas = sd.check_gammas([gamma]) if gamma is not None else np.array(sd.DEFAULT_GAMMAS, float)
    rate = resolve_acceptance(options.acceptance_rate, length, gamma)
    if length is not None and gamma is not None and not 1 <= length < gamma + 1:
        raise PerfModelError(f"acceptance length must be in [1, gamma+1) = [1, {gamma + 1})")
    # the planners' policy (recommend, capacity, the dashboard): the user's rate, else
    # published data, else (only where no configuration has any) an assumed rate, labeled
    policy = sd.planner_policy(rate)
    notices = tuple(placed)
    if rate is None and all_assumed(resolve_bases(dep, configs, [1.0], policy)):
        notices += (
            f"no published acceptance data for {dep.model.name} with "
            f"{', '.join(c.label for c in configs[:3])}{' ...' if len(configs) > 3 else ''}; "
            f"assuming {ASSUMED_ACCEPTANCE:g} per token (labeled 'assumed'): pass "
            "--acceptance-rate or --acceptance-len to set it",
        )
    return SpeculationSetup(configs, gammas, policy, notices)
