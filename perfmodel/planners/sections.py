"""The speculation sections of a recommendation, as typed records built from the planners.

specprefill_section: plan_specprefill at the workload's batch and prompt, the speculator
deployed by speculation.helper_deployment (BF16 beside the target unless given).
specdecode_section: the MagicDec grid over specdecode.planner_configs with
specdecode.planner_policy (published acceptance, else an assumed rate, labeled), its best
configuration (specdecode.choice_at) and the critical sequence length over the same
configurations' compressed-KV drafts. capacity calls the same functions, so the two agree.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from perfmodel.core.deployment import Deployment
from perfmodel.core.inference import mean_decode_context
from perfmodel.planners.critical import CriticalLength, from_raw
from perfmodel.planners.specdecode import (
    PLANNER_BUDGETS,
    SpecDecodeChoice,
    choice_at,
    coarse_contexts,
    critical_length,
    evaluate_grid,
    planner_configs,
    planner_policy,
    price_passes,
)
from perfmodel.planners.specprefill import SpecPrefillPlan, plan_specprefill
from perfmodel.planners.speculation.deploy import (
    SELF,
    default_speculator,
    describe_placement,
    helper_deployment,
    helper_placement,
)


class SpecPrefillSection(NamedTuple):
    """SpecPrefill at the workload's batch and prompt; plan is None when unavailable."""

    speculator: str | None
    reason: str
    plan: SpecPrefillPlan | None = None
    placement: str | None = None  # speculation.helper_placement: first_stage / own_gpus
    placement_text: str = ""  # e.g. "the first stage's 8 GPUs (TP8)"

    @property
    def available(self) -> bool:
        return self.plan is not None

    @property
    def keep_rate(self) -> float | None:
        """The recommended keep rate; None = skip SpecPrefill (plan.reason says why)."""
        return None if self.plan is None else self.plan.recommended_keep_rate

    def _index(self) -> int | None:
        """The recommended keep rate's index in the plan (None: SpecPrefill is skipped)."""
        if self.plan is None or self.keep_rate is None:
            return None
        return int(np.flatnonzero(self.plan.keep_rates == self.keep_rate)[0])

    @property
    def fits(self) -> bool:
        i = self._index()
        return (
            bool(self.plan.fits[i])
            if i is not None
            else bool(self.plan and self.plan.baseline_fits)
        )

    @property
    def speedup(self) -> float:
        i = self._index()
        return float(self.plan.times.speedup[i]) if i is not None else 1.0

    @property
    def specprefill_ttft_s(self) -> float | None:
        i = self._index()
        return float(self.plan.times.ttft_s[i]) if i is not None else None

    @property
    def pays(self) -> bool:
        return self.plan is not None and self.plan.pays

    @property
    def ttft_s(self) -> float | None:
        """TTFT of the recommended configuration (SpecPrefill where it pays, else plain)."""
        if self.plan is None:
            return None
        return self.specprefill_ttft_s if self.pays else self.plan.baseline_ttft_s

    def as_dict(self) -> dict:
        if self.plan is None:
            return {"available": False, "pays": False, "speculator": None, "reason": self.reason}
        plan, i = self.plan, self._index()
        row = None if i is None else plan.row(i)
        out = {
            "available": True,
            "speculator": self.speculator,
            "speculator_weight_dtype": plan.speculator.weight_dtype,
            "speculator_placement": self.placement,
            "speculator_runs_on": self.placement_text,
            "keep_rate": self.keep_rate,
            "best_keep_rate": plan.best_keep_rate,
            "best_speedup": plan.best_speedup,
            "baseline_ttft_s": plan.baseline_ttft_s,
            "break_even_prompt_len": plan.break_even_prompt_len,
            "max_quality_drop": plan.max_quality_drop,
            "qps": plan.qps_dict(),
            "basis": "perfmodel.planners.specprefill.plan_specprefill",
            "ttft_s": self.ttft_s,
            "speedup": self.speedup,
            "pays": self.pays,
            "fits": self.fits,
            "reason": self.reason,
        }
        if row is not None:
            out.update(
                specprefill_ttft_s=row["ttft_s"],
                speculator_s=row["speculator_s"],
                target_s=row["target_s"],
                quality_drop=row["quality"]["drop"],
                quality_source=row["quality"]["source"],
            )
        return out


def specprefill_section(
    dep: Deployment,
    speculator: str | None,
    batch: int,
    prompt_len: int,
    max_quality_drop: float,
    slo_ttft_s: float | None,
) -> SpecPrefillSection:
    """SpecPrefill at this batch and prompt, from specprefill.plan_specprefill."""
    name = speculator or default_speculator(dep.model, dep.tp)
    if name is None:
        return SpecPrefillSection(
            None,
            f"no smaller shipped model shares {dep.model.name}'s vocabulary and divides TP{dep.tp}",
        )
    spec = helper_deployment(dep, name, "speculator")
    plan = plan_specprefill(
        dep, spec, batch, prompt_len, max_quality_drop=max_quality_drop, slo_ttft_s=slo_ttft_s
    )
    where = (helper_placement(dep, spec), describe_placement(dep, spec))
    return SpecPrefillSection(spec.model.name, plan.reason, plan, *where)


class SpecDecodeSection(NamedTuple):
    """MagicDec's best configuration at the mean decode context; choice None = unavailable."""

    choice: SpecDecodeChoice | None
    context: float
    batch: int
    excluded_oom: list[str]
    critical: CriticalLength | None = None  # None: no ranked configuration
    critical_basis: str = ""
    searched: str = ""
    memory: dict | None = None
    placement: str | None = None  # the chosen draft's: self / first_stage
    placement_text: str = ""

    @property
    def available(self) -> bool:
        return self.choice is not None

    @property
    def pays(self) -> bool:
        return self.choice is not None and self.choice.pays

    @property
    def tpot_s(self) -> float | None:
        c = self.choice
        if c is None:
            return None
        return c.t_sd_s if c.pays else c.t_autoregressive_s

    @property
    def reason(self) -> str:
        c = self.choice
        if c is None:
            return "no draft configuration fits in memory beside the target: " + ", ".join(
                self.excluded_oom
            )
        if c.pays:
            return (
                f"{c.draft} draft, {c.draft_kv} KV, gamma {c.gamma}: {c.speedup:.2f}x TPOT at "
                f"context {self.context:.0f}"
            )
        return (
            f"does not pay at batch {self.batch}, context {self.context:.0f}: the best "
            f"({c.draft}, {c.draft_kv}, gamma {c.gamma}) is {c.speedup:.2f}x"
        )

    def as_dict(self) -> dict:
        c = self.choice
        if c is None:
            return {
                "available": False,
                "pays": False,
                "draft": None,
                "draft_kv": None,
                "gamma": None,
                "speedup": 1.0,
                "reason": self.reason,
            }
        return {
            "available": True,
            "draft": c.draft,
            "draft_kv": c.draft_kv,
            "draft_placement": self.placement,
            "draft_runs_on": self.placement_text,
            "kv_budget": c.kv_budget,
            "gamma": c.gamma,
            "speedup": c.speedup,
            "tpot_s": self.tpot_s,
            "sd_tpot_s": c.t_sd_s,
            "baseline_tpot_s": c.t_autoregressive_s,
            "acceptance_rate": c.acceptance_rate,
            "acceptance_len": c.acceptance_len,
            "acceptance_source": c.acceptance.source,
            "acceptance_basis": c.acceptance.kind,
            "acceptance_assumed": c.acceptance.kind == "assumed",
            "context": self.context,
            "pays": self.pays,
            "memory": self.memory,
            "excluded_oom": list(self.excluded_oom),
            "critical_seq_len_basis": self.critical_basis,
            "searched": self.searched,
            "basis": "perfmodel.planners.specdecode.evaluate_grid",
            "reason": self.reason,
        }


def specdecode_section(
    dep: Deployment,
    drafts: str | None,
    batch: int,
    prompt_len: int,
    output_len: int,
    acceptance_rate: float | None,
) -> SpecDecodeSection:
    """Best MagicDec configuration at the mean decode context (prompt + output/2; memory at
    output/2 generated tokens), and the critical sequence length at this batch over the
    compressed-KV drafts that fit (time model; memory not required there)."""
    configs = planner_configs(dep, drafts)
    policy = planner_policy(acceptance_rate)
    ctx = float(mean_decode_context(prompt_len, output_len))
    # the passes of the workload's point (column 0) and of critical_length's coarse scan at
    # this batch (columns 1..) in one set of calls: each point of a sweep is priced as on its own
    top = dep.model.max_position_embeddings
    joint = price_passes(dep, configs, batch, np.append(ctx, coarse_contexts(top)))
    grid = evaluate_grid(
        dep,
        configs,
        [batch],
        [ctx],
        acceptance_rate=policy,
        output_len=output_len / 2,
        passes=joint.take(range(len(configs)), [0]),
    )
    excluded = [cfg.label for i, cfg in enumerate(configs) if not grid.fits[i, 0]]
    best = choice_at(grid, 0, require_fit=True)
    searched = (
        f"drafts {', '.join(dict.fromkeys(c.draft for c in configs))}; KV full and streamingllm "
        f"budgets {', '.join(str(b) for b in PLANNER_BUDGETS)}; gamma 1..8"
    )
    if best is None:
        return SpecDecodeSection(None, ctx, batch, excluded, searched=searched)
    ranked = [c for c, bs in zip(configs, grid.acceptance, strict=True) if bs.ranked]
    fitting = [c for c in ranked if c.label not in excluded]
    compressed = [c for c in fitting if c.method != "full"] or fitting or ranked
    scan = joint.take([configs.index(c) for c in compressed], slice(1, None))
    crit = critical_length(dep, compressed, [batch], acceptance_rate=policy, coarse_passes=scan)
    ci = configs.index(next(c for c in configs if c.label == f"{best.draft}/{best.draft_kv}"))
    draft = helper_deployment(dep, configs[ci].draft, "draft")
    where = (
        (SELF, "the target itself")
        if draft is dep
        else (
            helper_placement(dep, draft),
            describe_placement(dep, draft),
        )
    )
    return SpecDecodeSection(
        best,
        ctx,
        batch,
        excluded,
        from_raw(crit[0], batch, top),
        "smallest context where the best of "
        + ", ".join(c.label for c in compressed[:3])
        + (" ..." if len(compressed) > 3 else "")
        + f" beats plain decoding at batch {batch} (time model, memory not required; "
        f"acceptance {best.acceptance.label})",
        searched,
        grid.memory(ci).as_dict(0),
        *where,
    )
