"""Joint recommendation for one workload: precision, SpecPrefill, speculative decoding.

Pure functions returning typed immutable records (NamedTuples: built once, read, never
compared); the CLI (commands/recommend.py) only formats.
Steps, in order:
1. deployment (planners.deployment_search.search_deployments): the smallest deployment
   (nodes, TP x PP x DP, precision: the first of bf16/bf16, fp8/bf16, fp8/fp8, then int4/fp8,
   that needs no more GPUs) serving the requested batch on the requested GPU type, and the
   best one on each other shipped type (alternatives; none when the caller pins the type).
   With SLOs (feasibility.Slos: TTFT, TPOT, e2e of plain serving), the cheapest deployment
   that fits and meets every one; no GPU pinned: across every type. None meets them:
   NoFeasibleDeployment (exit 2) naming the nearest deployment and how far it misses.
   binding: what set the size of the choice (binding_constraint); the precision line says
   what set the precision: memory, an SLO or the checkpoint's own format
   (precision_policy.precision_reason).
   Pins (the rule for --num-gpus/--tp/--pp): --tp and --pp fix those degrees; --num-gpus N
   fixes the replica as predict builds it (tp = --tp or N / pp, pp = --pp or 1) and N/(tp*pp)
   is the fewest replicas; the search adds replicas (DP) and chooses the precision.
   What the named GPUs hold (--num-gpus, else one node) per precision stays as one line
   (precision.max_batches).
2. baseline TTFT, TPOT, e2e and throughput of one replica at its share of the batch
   (batch_per_replica = ceil(batch / dp); inference.py).
3. SpecPrefill and MagicDec: planners.sections (the specprefill and specdecode planners,
   the helper from planners.speculation), never reimplemented here.
4. a plain-language rationale from the operator breakdown of one prefill and one decode
   step at the mean decode context (inference.pass_breakdown).
Nothing here imports scipy, pandas or plotly at module level (cold CLI start <= 0.5 s).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from perfmodel.core.deployment import Deployment, basis_label, make_deployment
from perfmodel.core.inference import (
    last_stage_pass,
    mean_decode_context,
    pass_breakdown,
    request_times,
)
from perfmodel.core.memory import memory_report
from perfmodel.core.options import DeploymentPins
from perfmodel.errors import PerfModelError
from perfmodel.planners.binding import Binding, binding_constraint, slo_check
from perfmodel.planners.critical import CriticalLength
from perfmodel.planners.deployment_search import MAX_GPUS, DeploymentChoice, search_deployments
from perfmodel.planners.feasibility import Slos, context_verdict, deployment_topology
from perfmodel.planners.precision import (
    PrecisionChoice,
    from_deployment,
    named_deployment,
)
from perfmodel.planners.precision_policy import PRECISION_POLICY, precision_reason
from perfmodel.planners.sections import (
    SpecDecodeSection,
    SpecPrefillSection,
    specdecode_section,
    specprefill_section,
)
from perfmodel.specs.units import plural


# --- baseline and rationale -------------------------------------------------------------
class Baseline(NamedTuple):
    """Plain serving of one replica at its share of the batch: TTFT, TPOT, e2e, tokens/s."""

    ttft_s: float
    tpot_s: float
    e2e_s: float
    throughput_tok_s: float

    def as_dict(self) -> dict:
        return {
            "ttft_s": self.ttft_s,
            "tpot_s": self.tpot_s,
            "e2e_s": self.e2e_s,
            "throughput_tok_s": self.throughput_tok_s,
        }


def baseline(dep: Deployment, batch, prompt_len, output_len) -> Baseline:
    t = request_times(dep, batch, prompt_len, output_len)
    return Baseline(
        float(t.ttft_s.flat[0]),
        float(t.tpot_s.flat[0]),
        float(t.e2e_s.flat[0]),
        float(t.throughput_tok_s.flat[0]),
    )


class PassShares(NamedTuple):
    """Where one forward pass spends its bytes and time (fractions of the totals)."""

    time_s: float
    kv_bytes_share: float  # KV cache read+write / all HBM bytes
    weight_bytes_share: float
    attention_time_share: float
    compute_bound_time_share: float  # time in ops whose compute time exceeds memory time
    comm_time_share: float
    overhead_time_share: float

    def as_dict(self) -> dict:
        return dict(self._asdict())


def pass_shares(dep: Deployment, batch, new_tokens, cached) -> PassShares:
    """Shares of one forward pass (with pp > 1: inference.last_stage_pass)."""
    dep, batch = last_stage_pass(dep, batch)
    res = pass_breakdown(dep, batch, new_tokens, cached, 1)
    total = float(np.ravel(res.time_s)[0])
    mem = sum(float(np.ravel(op.mem_bytes)[0]) for op in res.ops) or 1.0
    kv = sum(float(np.ravel(op.kv_read_bytes + op.kv_write_bytes)[0]) for op in res.ops)
    wb = sum(float(np.ravel(op.weight_bytes)[0]) for op in res.ops)
    attn = comp = comm = 0.0
    for op, t in zip(res.ops, res.times, strict=True):
        ts = float(np.ravel(t.time_s)[0])
        if op.kind == "attention":
            attn += ts
        if op.kind == "comm":
            comm += ts
        elif float(np.ravel(t.compute_s)[0]) > float(np.ravel(t.memory_s)[0]):
            comp += ts
    over = float(np.ravel(res.overhead_s)[0])
    return PassShares(
        total, kv / mem, wb / mem, attn / total, comp / total, comm / total, over / total
    )


class Recommendation(NamedTuple):
    """Everything recommend found for one workload (as_dict: the --json payload)."""

    model: str
    gpu: str
    num_gpus: int
    tp: int
    prompt_len: int
    output_len: int
    precision: PrecisionChoice
    baseline: Baseline
    memory: dict
    specprefill: SpecPrefillSection
    specdecode: SpecDecodeSection
    critical: CriticalLength | None  # None: speculative decoding unavailable
    workload_context: float  # prompt + output/2, the mean decode context
    prefill: PassShares
    decode: PassShares
    rationale: list[str]
    profile: str
    mode: str
    basis: str
    notes: list[str]
    deployment: DeploymentChoice | None = None
    alternatives: tuple[DeploymentChoice, ...] = ()
    skipped: tuple[str, ...] = ()
    slos: Slos = Slos()  # frozen: one shared default
    binding: Binding | None = None
    labels: tuple[str, ...] = ()  # what runs only because it was asked for

    @property
    def fits(self) -> bool:
        return self.precision.fits

    def headline(self) -> str:
        """'serves batch 64: 16x h100-sxm (2 nodes, TP8 x PP2), fp8/fp8: $48.00/h, ...'"""
        return f"serves batch {self.precision.requested_batch}: {self.deployment.describe()}"

    def as_dict(self) -> dict:
        d = self.deployment
        chosen = d.as_dict()  # built once: its basis label per operator class is not free
        return {
            "model": self.model,
            "gpu": self.gpu,
            "num_gpus": self.num_gpus,
            "tp": self.tp,
            "pp": d.pp,
            "dp": d.dp,
            "deployment": chosen,
            "headline": self.headline(),
            "alternatives": [a.as_dict() for a in self.alternatives],
            "skipped": list(self.skipped),
            "batch": self.precision.requested_batch,
            "batch_per_replica": d.batch_per_replica,
            "requested_batch": self.precision.requested_batch,
            "prompt_len": self.prompt_len,
            "output_len": self.output_len,
            "precision": self.precision.as_dict(),
            "precision_policy": PRECISION_POLICY,
            "fits": self.fits,
            "specprefill": self.specprefill.as_dict(),
            "specdecode": self.specdecode.as_dict(),
            **_critical_dict(self.critical),
            "workload_context": self.workload_context,
            "above_critical": None
            if self.critical is None
            else self.critical.above(self.workload_context),
            "baseline": self.baseline.as_dict(),
            "memory": self.memory,
            "breakdown": {"prefill": self.prefill.as_dict(), "decode": self.decode.as_dict()},
            "rationale": " ".join(self.rationale),
            "notes": list(self.notes),
            "profile": self.profile,
            "mode": self.mode,
            "basis": self.basis,
            "basis_by_class": chosen["basis_by_class"],
            "slos": self.slos.as_dict(),
            "slo_check": slo_check(self.slos, d),
            "binding": None if self.binding is None else self.binding.as_dict(),
            "labels": list(self.labels),
        }


def _critical_dict(c: CriticalLength | None) -> dict:
    if c is not None:
        return c.as_dict()
    return {
        "critical_seq_len": None,
        "pays_at_every_context": False,
        "critical_seq_len_text": "unavailable (no draft configuration)",
    }


def rationale(
    dep: Deployment,
    batch: int,
    prompt_len: int,
    output_len: int,
    prefill: PassShares,
    decode: PassShares,
    sp: SpecPrefillSection,
    sd: SpecDecodeSection,
    critical: CriticalLength | None,
) -> list[str]:
    """Short plain-language reasons, each backed by a number from the breakdown."""
    ctx = float(mean_decode_context(prompt_len, output_len))
    lines = []
    c = sd.choice
    kv, w = decode.kv_bytes_share, decode.weight_bytes_share
    if kv >= 0.5:
        if c is not None and c.pays and c.kv_budget:
            cheap = (
                f"so a draft with a {int(c.kv_budget)}-token KV budget reads a small fraction of "
                f"that and verifying {c.gamma + 1} tokens costs little more than one step"
            )
        elif c is not None and c.pays:
            cheap = f"and a {c.draft} draft with a full KV cache still pays"
        elif c is not None:
            cheap = (
                "so a compressed-KV draft is cheap, yet a draft-and-verify round does not pay "
                f"here (best {c.speedup:.2f}x: the draft still reads its weights every step "
                "and verification costs more than a plain step)"
            )
        else:
            cheap = "so a draft with a compressed (constant-budget) KV cache would be cheap"
        lines.append(
            f"Decode is KV-bound at batch {batch} and context {ctx:.0f}: the KV cache is "
            f"{100 * kv:.0f}% of bytes read per step ({100 * w:.0f}% weights), {cheap}."
        )
    elif w >= 0.5:
        lines.append(
            f"Decode is weight-bound at batch {batch} and context {ctx:.0f}: weights are "
            f"{100 * w:.0f}% of bytes read per step (KV cache {100 * kv:.0f}%); a small draft "
            "model is cheap while the batch stays small."
        )
    else:
        lines.append(
            f"Decode reads {100 * w:.0f}% weights and {100 * kv:.0f}% KV cache per step at "
            f"batch {batch} and context {ctx:.0f}."
        )
    if decode.compute_bound_time_share > 0.5:
        lines.append(
            f"{100 * decode.compute_bound_time_share:.0f}% of a decode step is compute-bound, "
            "so verifying extra tokens is not free: speculation gains less."
        )
    if decode.comm_time_share + decode.overhead_time_share > 0.3:
        lines.append(
            f"Fixed costs (all-reduce {100 * decode.comm_time_share:.0f}%, per-step overhead "
            f"{100 * decode.overhead_time_share:.0f}%) are a large part of each step."
        )
    if c is not None and c.acceptance.kind == "assumed":
        lines.append(
            f"The draft's acceptance is assumed ({c.acceptance_rate:g} per token), not "
            "published for this model pair: the speculative-decoding numbers are an estimate."
        )
    if critical is not None and critical.pays_at_every_context:
        lines.append(
            f"At batch {batch} the best draft {critical.text()} (the draft is cheap relative "
            "to a target step)."
        )
    elif critical is not None and critical.tokens is not None:
        side = "above" if critical.above(ctx) else "below"
        lines.append(
            f"The mean decode context ({ctx:.0f} = prompt + output/2) is {side} the critical "
            f"sequence length, {critical.text()} at this batch."
        )
    elif critical is not None:
        lines.append(f"At batch {batch} speculative decoding {critical.text()}.")
    lines.append(
        f"Prefill is {100 * prefill.compute_bound_time_share:.0f}% compute-bound "
        f"(attention {100 * prefill.attention_time_share:.0f}% of its time)"
        + (
            f"; SpecPrefill keeps {100 * sp.keep_rate:.0f}% of the prompt for the target, "
            f"{sp.speedup:.2f}x TTFT."
            if sp.pays
            else "; SpecPrefill does not pay here."
            if sp.available
            else "."
        )
    )
    return lines


def recommend(
    pins: DeploymentPins,
    batch: int,
    prompt_len: int = 32768,
    output_len: int = 512,
    slo_ttft_s: float | None = None,
    slo_tpot_s: float | None = None,
    max_quality_drop: float = 1.0,
    speculator: str | None = None,
    drafts: str | None = None,
    acceptance_rate: float | None = None,
    *,
    alternatives: list[str] | tuple[str, ...] | None = None,
    slo_e2e_s: float | None = None,
    beyond_context: bool = False,
    max_gpus: int = MAX_GPUS,
) -> Recommendation:
    """Joint recommendation (see the module docstring) for the deployment `pins` fixes
    (core.options.DeploymentPins, the record the CLI and the pages build; None = searched).
    pins.gpu: the type of the choice (None: the cheapest of all types); alternatives: the
    other GPU types to compare (None: every shipped type; []: none, the type is pinned). The
    precision is always searched: pinned weight or KV dtypes are refused. Raises
    PerfModelError (one line) on bad input, beyond the context window (unless
    beyond_context), and when no deployment of up to max_gpus GPUs serves the batch
    (NoFeasibleDeployment: none meets the SLOs)."""
    if pins.weight_dtype is not None or pins.kv_dtype is not None:
        raise PerfModelError(
            "recommend searches the precision: weight and KV dtypes cannot be pinned"
        )
    model, gpu, num_gpus, tp, pp = pins.model, pins.gpu, pins.num_gpus, pins.tp, pins.pp
    profile, mode, allow_cross_node_tp = pins.profile, pins.mode, pins.allow_cross_node_tp
    if batch < 1 or prompt_len < 1 or output_len < 1:
        raise PerfModelError("batch, prompt length and output length must be >= 1")
    slos = Slos(slo_ttft_s, slo_tpot_s, slo_e2e_s)
    m = make_deployment(model, gpu or "h100", 1, 1, mode=mode, profile=profile).model
    labels = context_verdict(m, prompt_len, output_len, beyond_context).require().labels
    named = (
        named_deployment(model, gpu, num_gpus, tp, pp, profile, mode, allow_cross_node_tp)
        if gpu is not None
        else None
    )
    if named is None and gpu is None and (num_gpus is not None or tp is not None or pp is not None):
        named = named_deployment(
            model, "h100", num_gpus, tp, pp, profile, mode, allow_cross_node_tp
        )
    pins = {}
    if num_gpus is not None:  # predict's rule: the replica as --num-gpus/--tp/--pp build it
        pins = {"tp": named.tp, "pp": named.pp, "min_dp": named.replicas}
    elif tp is not None or pp is not None:
        pins = {"tp": tp, "pp": pp}
    found = search_deployments(
        model,
        batch,
        prompt_len,
        output_len,
        gpu,
        alternatives=alternatives,
        profile=profile,
        mode=mode,
        max_gpus=max_gpus,
        slos=slos,
        allow_cross_node_tp=allow_cross_node_tp,
        **pins,
    )
    chosen = found.choice
    memory_only = chosen
    if slos.given:  # what would merely fit on the chosen type: did an SLO make it larger?
        memory_only = search_deployments(
            model,
            batch,
            prompt_len,
            output_len,
            chosen.gpu,
            alternatives=[],
            profile=profile,
            mode=mode,
            max_gpus=max_gpus,
            allow_cross_node_tp=allow_cross_node_tp,
            **pins,
        ).choice
    binding = binding_constraint(chosen, memory_only, slos, bool(pins))
    labels += deployment_topology(chosen.deployment).labels
    dep, b = chosen.deployment, chosen.batch_per_replica
    slo_text = ", ".join(f"{option} {limit:g} s" for _, _, option, limit in slos.items())
    why = precision_reason(chosen, memory_only, slo_text, dep.model.checkpoint_format)
    choice = from_deployment(chosen, named, prompt_len, output_len, why)
    base = baseline(dep, b, prompt_len, output_len)
    mem = memory_report(dep, b, prompt_len, output_len).as_dict()
    sp = specprefill_section(dep, speculator, b, prompt_len, max_quality_drop, slo_ttft_s)
    sd = specdecode_section(dep, drafts, b, prompt_len, output_len, acceptance_rate)
    critical = sd.critical
    ctx = float(mean_decode_context(prompt_len, output_len))
    pre = pass_shares(dep, b, prompt_len, 0)
    dec = pass_shares(dep, b, 1, ctx)
    notes = []
    if chosen.dp > 1:
        notes.append(
            f"{plural(chosen.dp, 'replica')} of {plural(chosen.tp * chosen.pp, 'GPU')}; the "
            f"plan below is one replica at {b} of the {plural(batch, 'sequence')}"
        )
    for row in slo_check(slos, chosen):  # the search admitted only deployments meeting them
        notes.append(
            f"{row['slo']} SLO {row['limit_s']:g} s met without speculation "
            f"({row['value_s']:.4g} s)"
        )
    return Recommendation(
        model=dep.model.name,
        gpu=dep.gpu.name,
        num_gpus=chosen.num_gpus,
        tp=dep.tp,
        prompt_len=prompt_len,
        output_len=output_len,
        precision=choice,
        baseline=base,
        memory=mem,
        specprefill=sp,
        specdecode=sd,
        critical=critical,
        workload_context=ctx,
        prefill=pre,
        decode=dec,
        rationale=rationale(dep, b, prompt_len, output_len, pre, dec, sp, sd, critical),
        profile=dep.profile.name,
        mode=dep.mode,
        basis=basis_label(dep),
        notes=notes,
        deployment=chosen,
        alternatives=found.alternatives,
        skipped=found.skipped,
        slos=slos,
        binding=binding,
        labels=tuple(dict.fromkeys(labels)),
    )
