"""Joint recommendation for one workload: precision, SpecPrefill, speculative decoding.

Pure functions returning frozen dataclasses; the CLI (commands/recommend.py) only formats.
Steps, in order:
1. precision: try (bf16 weights, bf16 KV), (fp8, bf16), (fp8, fp8), (int4, fp8); the first
   whose memory per GPU fits at the requested batch, prompt and output wins (memory.py).
   When none fits, the plan is made at the largest batch that fits (the precision with the
   largest max batch; the earlier precision on ties), and the smallest GPU count (doubling,
   tensor parallel) that fits the requested batch is named, flagged when it spans nodes.
2. baseline TTFT, TPOT, e2e and throughput at that precision and batch (inference.py).
3. SpecPrefill and MagicDec: the planners in specprefill.py and specdecode.py are called,
   never reimplemented here.
4. a plain-language rationale from the operator breakdown of one prefill and one decode
   step at the mean decode context (inference.forward_pass(..., detail=True)).
Nothing here imports scipy, pandas or plotly at module level (cold CLI start <= 0.5 s).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from perfmodel.core.deployment import Deployment, make_deployment
from perfmodel.core.inference import forward_pass, mean_decode_context, request_times
from perfmodel.core.memory import max_batch, memory_report, weight_bytes_per_gpu
from perfmodel.errors import OutOfMemoryError, PerfModelError
from perfmodel.specs.hardware import resolve_gpu
from perfmodel.specs.models import ModelSpec, list_models, resolve_model

PRECISIONS: tuple[tuple[str, str], ...] = (
    ("bf16", "bf16"),
    ("fp8", "bf16"),
    ("fp8", "fp8"),
    ("int4", "fp8"),
)
MAX_SCALE_OUT_GPUS = 64  # the largest tensor-parallel group tried when nothing fits


@dataclass(frozen=True)
class PrecisionChoice:
    """The chosen weight/KV dtypes, why, and what fits."""

    weight_dtype: str
    kv_dtype: str
    reason: str
    fits: bool  # True when the requested batch fits at this precision
    requested_batch: int
    batch: int  # the batch the plan is made at (requested, or the largest that fits)
    max_batch: dict[str, int]  # "bf16/bf16" -> largest batch that fits on this deployment
    gpus_needed: int | None = None  # smallest GPU count that fits the requested batch
    gpus_needed_precision: str | None = None
    multi_node: bool = False  # gpus_needed spans more than one node

    def as_dict(self) -> dict:
        return {
            "weight_dtype": self.weight_dtype,
            "kv_dtype": self.kv_dtype,
            "reason": self.reason,
            "fits": self.fits,
            "requested_batch": self.requested_batch,
            "batch": self.batch,
            "max_batch": dict(self.max_batch),
            "gpus_needed": self.gpus_needed,
            "gpus_needed_precision": self.gpus_needed_precision,
            "multi_node": self.multi_node,
        }


def _label(w: str, k: str) -> str:
    return f"{w}/{k}"


def _gpus_needed(
    model, gpu, num_gpus, batch, prompt_len, output_len, profile, mode, fallback
) -> tuple[int | None, str | None, str, int | None]:
    """GPUs the requested batch needs: first a larger TP group inside one node (num_gpus
    doubled up to the node size), else data-parallel replicas of the planned deployment
    (`fallback`: (precision label, its largest batch)). Returns (gpus, precision, how,
    sequences per replica or None)."""
    per_node = resolve_gpu(gpu).max_gpus_per_node
    n = num_gpus * 2
    while n <= per_node:
        for w, k in PRECISIONS:
            try:
                dep = make_deployment(model, gpu, n, None, w, k, mode, profile)
            except PerfModelError:  # TP does not divide the heads
                break
            if bool(memory_report(dep, batch, prompt_len, output_len).fits.flat[0]):
                return n, _label(w, k), f"TP{n} on one node", None
        n *= 2
    label, per_replica = fallback
    if per_replica < 1:
        return None, None, "", None
    replicas = -(-batch // per_replica)
    each = -(-batch // replicas)
    return (
        replicas * num_gpus,
        label,
        f"{replicas} data-parallel replicas of {num_gpus}x (about {each} sequences each)",
        each,
    )


def choose_precision(
    model,
    gpu="h100",
    num_gpus: int = 8,
    tp: int | None = None,
    batch: int = 1,
    prompt_len: int = 4096,
    output_len: int = 256,
    profile=None,
    mode: str | None = None,
) -> tuple[PrecisionChoice, Deployment]:
    """Pick the first precision that fits (bf16, then fp8 weights, then fp8 KV, then int4
    weights); else plan at the largest batch that fits without int4 weights, and say how
    many GPUs the requested batch needs (a larger TP group in the node, else replicas).

    Raises OutOfMemoryError when not even batch 1 fits at any precision.
    """
    deps = [make_deployment(model, gpu, num_gpus, tp, w, k, mode, profile) for w, k in PRECISIONS]
    dep0 = deps[0]
    where = f"{dep0.num_gpus}x {dep0.gpu.name}"
    usable = memory_report(dep0, 1, 1, 1).capacity_gb
    size = _size_name(dep0.model)
    mbs = {
        _label(d.weight_dtype, d.kv_dtype): int(max_batch(d, prompt_len, output_len).flat[0])
        for d in deps
    }
    reports = [memory_report(d, batch, prompt_len, output_len) for d in deps]
    fits = [bool(r.fits.flat[0]) for r in reports]
    ctx = f"batch {batch} x ({prompt_len}+{output_len}) tokens"
    if fits[0]:
        r = reports[0].as_dict()
        reason = (
            f"{size} in bf16 fits on {where}: {r['total_gb']:.1f} of {usable:.1f} GB usable "
            f"per GPU at {ctx}: bf16 weights and KV cache"
        )
        return PrecisionChoice("bf16", "bf16", reason, True, batch, batch, mbs), dep0
    first_fail = reports[0].as_dict()
    w_bf16 = weight_bytes_per_gpu(dep0) / 1e9
    if w_bf16 > usable:
        why = f"{size} in bf16 needs {w_bf16:.1f} GB/GPU of weights on {where} ({usable:.1f} GB usable)"
    else:
        why = (
            f"{size} in bf16 needs {first_fail['total_gb']:.1f} GB/GPU at {ctx} on {where} "
            f"({usable:.1f} GB usable; KV cache {first_fail['kv_cache_gb']:.1f} GB)"
        )
    for i, ((w, k), ok) in enumerate(zip(PRECISIONS, fits, strict=True)):
        if ok:
            r = reports[i].as_dict()
            reason = (
                f"{why}: {w} weights, {k} KV cache ({r['total_gb']:.1f} GB/GPU; the first of "
                f"{', '.join(_label(*p) for p in PRECISIONS)} that fits)"
            )
            return PrecisionChoice(w, k, reason, True, batch, batch, mbs), deps[i]
    # Quality first: the non-int4 precision that holds the most sequences; int4 weights
    # only when nothing else fits a single sequence.
    batches = [mbs[_label(*p)] for p in PRECISIONS]
    preferred = [i for i, (w, _) in enumerate(PRECISIONS) if w != "int4" and batches[i] >= 1]
    best = max(preferred, key=lambda i: batches[i]) if preferred else int(np.argmax(batches))
    best_batch = batches[best]
    if best_batch < 1:
        last = reports[-1].as_dict()
        raise OutOfMemoryError(
            f"{size} does not fit on {where} even at batch 1 with int4 weights and fp8 KV "
            f"({prompt_len}+{output_len} tokens): weights alone are "
            f"{last['weights_gb']:.1f} GB/GPU of {usable:.1f} GB usable; use more GPUs"
        )
    w, k = PRECISIONS[best]
    n, n_prec, how, per_replica = _gpus_needed(
        model,
        gpu,
        dep0.num_gpus,
        batch,
        prompt_len,
        output_len,
        profile,
        mode,
        (_label(w, k), best_batch),
    )
    per_node = dep0.gpu.max_gpus_per_node
    multi = bool(n and n > per_node)
    if n:
        need = f"batch {batch} needs {n}x {dep0.gpu.name} ({n_prec}: {how})" + (
            f", {-(-n // per_node)} nodes" if multi else ""
        )
    else:
        need = f"batch {batch} does not fit on up to {MAX_SCALE_OUT_GPUS} GPUs"
    reason = (
        f"nothing fits at {ctx} on {where} (largest batch per precision: "
        + ", ".join(f"{p} {b}" for p, b in mbs.items())
        + f"); {need}. "
    )
    if per_replica is not None:
        # plan one replica at its share of the batch (leaves room for a speculator/draft)
        plan_batch = per_replica
        reason += f"Plan below: one replica, {plan_batch} sequences, {w} weights and {k} KV cache"
    else:
        plan_batch = best_batch
        reason += f"Plan below at batch {best_batch}, the largest that fits, with {w} weights and {k} KV cache"
    return PrecisionChoice(w, k, reason, False, batch, plan_batch, mbs, n, n_prec, multi), deps[
        best
    ]


def _size_name(model: ModelSpec) -> str:
    """'405B' for Llama-3.1-405B, else the model name."""
    tail = model.name.rsplit("-", 1)[-1]
    return tail if tail[:-1].replace(".", "").isdigit() and tail[-1] in "BbMm" else model.name


# --- speculator / draft defaults ------------------------------------------------------------
def _family(name: str) -> str:
    """'Llama-3.1-405B' -> 'Llama-3.1'; 'Qwen2.5-72B' -> 'Qwen2.5'."""
    return name.rsplit("-", 1)[0] if "-" in name else name


def smaller_models(target: ModelSpec) -> list[ModelSpec]:
    """Shipped models that share the target's vocabulary (same tokenizer) and are smaller,
    those of the same family first, then by size ascending."""
    out = []
    for name in list_models():
        m = resolve_model(name)
        if (
            m.name != target.name
            and m.vocab_size == target.vocab_size
            and m.model_type == target.model_type
            and m.param_count < target.param_count
        ):
            out.append(m)
    fam = _family(target.name)
    return sorted(out, key=lambda m: (_family(m.name) != fam, m.param_count))


def default_speculator(target, tp: int = 1) -> str | None:
    """The smallest smaller model of the target's family (8B for 70B/405B), else of its
    vocabulary (1B for 8B); None when there is none (or none whose heads divide by tp)."""
    for m in smaller_models(resolve_model(target)):
        if m.num_heads % tp == 0:
            return m.name
    return None


# --- baseline and rationale -------------------------------------------------------------
@dataclass(frozen=True)
class Baseline:
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


@dataclass(frozen=True)
class PassShares:
    """Where one forward pass spends its bytes and time (fractions of the totals)."""

    time_s: float
    kv_bytes_share: float  # KV cache read+write / all HBM bytes
    weight_bytes_share: float
    attention_time_share: float
    compute_bound_time_share: float  # time in ops whose compute time exceeds memory time
    comm_time_share: float
    overhead_time_share: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def pass_shares(dep: Deployment, batch, new_tokens, cached) -> PassShares:
    res = forward_pass(dep, batch, new_tokens, cached, 1, detail=True)
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


@dataclass(frozen=True)
class Recommendation:
    model: str
    gpu: str
    num_gpus: int
    tp: int
    prompt_len: int
    output_len: int
    precision: PrecisionChoice
    baseline: Baseline
    memory: dict
    specprefill: dict
    specdecode: dict
    critical_seq_len: float | None
    workload_context: float  # prompt + output/2, the mean decode context
    above_critical: bool | None
    prefill: PassShares
    decode: PassShares
    rationale: list[str]
    profile: str
    mode: str
    basis: str
    notes: list[str] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        return self.precision.fits

    def as_dict(self) -> dict:
        return {
            "model": self.model,
            "gpu": self.gpu,
            "num_gpus": self.num_gpus,
            "tp": self.tp,
            "batch": self.precision.batch,
            "requested_batch": self.precision.requested_batch,
            "prompt_len": self.prompt_len,
            "output_len": self.output_len,
            "precision": self.precision.as_dict(),
            "fits": self.fits,
            "specprefill": self.specprefill,
            "specdecode": self.specdecode,
            "critical_seq_len": self.critical_seq_len,
            "workload_context": self.workload_context,
            "above_critical": self.above_critical,
            "baseline": self.baseline.as_dict(),
            "memory": self.memory,
            "breakdown": {"prefill": self.prefill.as_dict(), "decode": self.decode.as_dict()},
            "rationale": " ".join(self.rationale),
            "notes": list(self.notes),
            "profile": self.profile,
            "mode": self.mode,
            "basis": self.basis,
        }


def rationale(
    dep: Deployment,
    batch: int,
    prompt_len: int,
    output_len: int,
    prefill: PassShares,
    decode: PassShares,
    sp: dict,
    sd: dict,
    critical: float | None,
) -> list[str]:
    """Short plain-language reasons, each backed by a number from the breakdown."""
    ctx = float(mean_decode_context(prompt_len, output_len))
    lines = []
    kv, w = decode.kv_bytes_share, decode.weight_bytes_share
    if kv >= 0.5:
        budget = sd.get("kv_budget")
        if sd.get("available") and sd.get("pays") and budget:
            cheap = (
                f"so a draft with a {int(budget)}-token KV budget reads a small fraction of "
                f"that and verifying {int(sd['gamma']) + 1} tokens costs little more than one step"
            )
        elif sd.get("available") and sd.get("pays"):
            cheap = f"and a {sd['draft']} draft with a full KV cache still pays"
        elif sd.get("available"):
            cheap = (
                "so a compressed-KV draft is cheap, yet a draft-and-verify round does not pay "
                f"here (best {sd['speedup']:.2f}x: the draft still reads its weights every step "
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
    if critical is not None and critical <= 1:
        lines.append(
            f"At batch {batch} the best draft beats plain decoding at every context (critical "
            "sequence length: none; the draft is cheap relative to a target step)."
        )
    elif critical is not None and np.isfinite(critical):
        side = "above" if ctx >= critical else "below"
        lines.append(
            f"The mean decode context ({ctx:.0f} = prompt + output/2) is {side} the critical "
            f"sequence length {critical:.0f} at this batch."
        )
    lines.append(
        f"Prefill is {100 * prefill.compute_bound_time_share:.0f}% compute-bound "
        f"(attention {100 * prefill.attention_time_share:.0f}% of its time)"
        + (
            f"; SpecPrefill keeps {100 * sp['keep_rate']:.0f}% of the prompt for the target, "
            f"{sp['speedup']:.2f}x TTFT."
            if sp.get("available") and sp.get("pays")
            else "; SpecPrefill does not pay here."
            if sp.get("available")
            else "."
        )
    )
    return lines


# --- the planners' sections ------------------------------------------------------------------
SD_BUDGETS = (256, 512, 1024, 2048, 4096)  # restricted KV-budget grid (cold start <= 0.5 s)
SD_KV = "full,streamingllm"
ASSUMED_ACCEPTANCE = 0.8  # per-token rate used only where no published data matches


def specprefill_section(
    dep: Deployment,
    speculator: str | None,
    batch: int,
    prompt_len: int,
    max_quality_drop: float,
    slo_ttft_s: float | None,
) -> dict:
    """SpecPrefill at this batch and prompt, from specprefill.plan_specprefill."""
    from perfmodel.planners.specprefill import plan_specprefill

    name = speculator or default_speculator(dep.model, dep.tp)
    if name is None:
        return {
            "available": False,
            "pays": False,
            "speculator": None,
            "reason": f"no smaller shipped model shares {dep.model.name}'s vocabulary and "
            f"divides TP{dep.tp}",
        }
    spec = dep.with_model(name)
    plan = plan_specprefill(
        dep, spec, batch, prompt_len, max_quality_drop=max_quality_drop, slo_ttft_s=slo_ttft_s
    )
    d = plan.as_dict()
    base = plan.baseline_ttft_s
    keep = plan.recommended_keep_rate
    out = {
        "available": True,
        "speculator": spec.model.name,
        "keep_rate": keep,
        "baseline_ttft_s": base,
        "break_even_prompt_len": plan.break_even_prompt_len,
        "max_quality_drop": plan.max_quality_drop,
        "qps": d["qps"],
        "basis": "perfmodel.planners.specprefill.plan_specprefill",
    }
    if keep is None:
        best = int(np.argmin(plan.times.ttft_s))
        return {
            **out,
            "ttft_s": base,
            "speedup": 1.0,
            "pays": False,
            "fits": plan.baseline_fits,
            "reason": f"no keep rate meets the quality budget of {max_quality_drop:g} LongBench "
            f"points (the fastest, {plan.keep_rates[best]:g}, is below the measured range or "
            "over budget)",
        }
    i = int(np.flatnonzero(plan.keep_rates == keep)[0])
    row = plan.rows()[i]
    pays = row["speedup"] > 1.0 and row["fits"]
    if row["speedup"] > 1.0 and not row["fits"]:
        reason = (
            f"would give {row['speedup']:.2f}x TTFT at keep {keep:g}, but the {spec.model.name} "
            f"speculator (weights and the KV of its full-prompt prefill) does not fit beside "
            f"the target at batch {batch}"
        )
    elif pays:
        reason = (
            f"keep {100 * keep:.0f}% of {prompt_len} tokens: {row['speedup']:.2f}x TTFT "
            f"(quality drop {row['quality']['drop']:.2f} LongBench points, {spec.model.name} "
            "speculator on the same GPUs)"
        )
    else:
        be = plan.break_even_prompt_len
        reason = (
            f"does not pay at {prompt_len} tokens: the speculator costs more than the "
            f"{100 * (1 - keep):.0f}% of the prompt it saves"
            + (f" (pays from {be} tokens at keep {keep:g})" if be else "")
        )
    return {
        **out,
        "ttft_s": row["ttft_s"] if pays else base,
        "specprefill_ttft_s": row["ttft_s"],
        "speedup": row["speedup"],
        "speculator_s": row["speculator_s"],
        "target_s": row["target_s"],
        "quality_drop": row["quality"]["drop"],
        "quality_source": row["quality"]["source"],
        "pays": bool(pays),
        "fits": row["fits"],
        "reason": reason,
    }


def _sd_configs(dep: Deployment, drafts: str | None):
    from perfmodel.planners.specdecode import draft_configs

    if drafts is None:
        small = default_speculator(dep.model, dep.tp)
        names = [n for n in (small, "self") if n]
    else:
        names = [n.strip() for n in drafts.split(",") if n.strip()]
    return draft_configs(names, SD_KV, budgets=SD_BUDGETS)


def _has_published_acceptance(target: str, cfg) -> bool:
    """Whether the shipped acceptance table has rows for this (target, draft, KV method)."""
    from perfmodel.planners.specdecode import has_published_acceptance

    draft = target if cfg.self_speculation else resolve_model(cfg.draft).name
    return has_published_acceptance(target, draft, cfg.method)


def specdecode_section(
    dep: Deployment,
    drafts: str | None,
    batch: int,
    prompt_len: int,
    output_len: int,
    acceptance_rate: float | None,
) -> tuple[dict, float | None]:
    """Best MagicDec configuration at the mean decode context (specdecode.optimize), and the
    critical sequence length at this batch (specdecode.critical_length) over the
    compressed-KV drafts of the same acceptance basis (time model; memory not required).

    Acceptance: the user's rate; else the published data (specdecode's look-up) for the
    configurations it covers, and ASSUMED_ACCEPTANCE, labeled as such, for the others.
    """
    from perfmodel.planners.specdecode import critical_length, optimize

    configs = _sd_configs(dep, drafts)
    ctx = float(mean_decode_context(prompt_len, output_len))
    if acceptance_rate is not None:
        groups = [(configs, acceptance_rate, None)]
    else:
        pub = [c for c in configs if _has_published_acceptance(dep.model.name, c)]
        rest = [c for c in configs if c not in pub]
        groups = [(pub, None, None)] if pub else []
        if rest:
            why = (
                f"assumed {ASSUMED_ACCEPTANCE:g} per token: no published acceptance data for "
                f"{dep.model.name} with {', '.join(sorted({c.draft for c in rest}))} drafts "
                "(validation/published covers Llama-3.1-8B/Llama-3.2-1B only); pass "
                "--acceptance-rate"
            )
            groups.append((rest, ASSUMED_ACCEPTANCE, why))
    best, best_group, excluded = None, None, []
    for group in groups:
        cfgs, rate, _ = group
        res = optimize(dep, cfgs, [batch], [ctx], acceptance_rate=rate, output_len=output_len / 2)
        r = res[0]
        excluded += r["excluded_oom"]
        if r["best"] is not None and (best is None or r["best"]["speedup"] > best["speedup"]):
            best, best_group = r["best"], group
    if best is None:
        return {
            "available": False,
            "pays": False,
            "draft": None,
            "draft_kv": None,
            "gamma": None,
            "speedup": 1.0,
            "reason": "no draft configuration fits in memory beside the target: "
            + ", ".join(excluded),
        }, None
    cfgs, rate, why = best_group
    fitting = [c for c in cfgs if c.label not in excluded]
    compressed = [c for c in fitting if c.method != "full"] or fitting or cfgs
    crit = critical_length(dep, compressed, [batch], acceptance_rate=rate)
    critical = float(crit[0]) if np.isfinite(crit[0]) else None
    source = why or best["acceptance_source"]
    pays = best["speedup"] > 1.0
    kv = best["draft_kv"]
    budget = float(kv.split(":")[1]) if ":" in kv else None
    out = {
        "available": True,
        "draft": best["draft"],
        "draft_kv": kv,
        "kv_budget": budget,
        "gamma": best["gamma"],
        "speedup": best["speedup"],
        "tpot_s": best["t_sd_ms"] / 1e3 if pays else best["t_autoregressive_ms"] / 1e3,
        "sd_tpot_s": best["t_sd_ms"] / 1e3,
        "baseline_tpot_s": best["t_autoregressive_ms"] / 1e3,
        "acceptance_rate": best["acceptance_rate"],
        "acceptance_len": best["acceptance_len"],
        "acceptance_source": source,
        "acceptance_assumed": why is not None,
        "context": ctx,
        "pays": bool(pays),
        "memory": best["memory"],
        "excluded_oom": excluded,
        "critical_seq_len_basis": "smallest context where the best of "
        + ", ".join(c.label for c in compressed[:3])
        + (" ..." if len(compressed) > 3 else "")
        + f" beats plain decoding at batch {batch} (time model, memory not required)",
        "searched": f"drafts {', '.join(dict.fromkeys(c.draft for c in configs))}; KV full "
        f"and streamingllm budgets {', '.join(str(b) for b in SD_BUDGETS)}; gamma 1..8",
        "basis": "perfmodel.planners.specdecode.optimize",
    }
    out["reason"] = (
        f"{best['draft']} draft, {kv} KV, gamma {best['gamma']}: {best['speedup']:.2f}x TPOT "
        f"at context {ctx:.0f}"
        if pays
        else f"does not pay at batch {batch}, context {ctx:.0f}: the best ({best['draft']}, "
        f"{kv}, gamma {best['gamma']}) is {best['speedup']:.2f}x"
    )
    return out, critical


def recommend(
    model,
    batch: int,
    gpu="h100",
    num_gpus: int = 8,
    tp: int | None = None,
    prompt_len: int = 32768,
    output_len: int = 512,
    slo_ttft_s: float | None = None,
    slo_tpot_s: float | None = None,
    max_quality_drop: float = 1.0,
    speculator: str | None = None,
    drafts: str | None = None,
    acceptance_rate: float | None = None,
    profile=None,
    mode: str | None = None,
) -> Recommendation:
    """Joint recommendation (see the module docstring); raises PerfModelError on bad input
    and OutOfMemoryError when not even batch 1 fits at any precision."""
    if batch < 1 or prompt_len < 1 or output_len < 1:
        raise PerfModelError("batch, prompt length and output length must be >= 1")
    for name, v in (("--slo-ttft", slo_ttft_s), ("--slo-tpot", slo_tpot_s)):
        if v is not None and not v > 0:
            raise PerfModelError(f"{name} must be positive, got {v}")
    choice, dep = choose_precision(
        model, gpu, num_gpus, tp, batch, prompt_len, output_len, profile, mode
    )
    if prompt_len + output_len > dep.model.max_position_embeddings:
        raise PerfModelError(
            f"prompt+output ({prompt_len}+{output_len}) exceeds {dep.model.name}'s context "
            f"window of {dep.model.max_position_embeddings} tokens"
        )
    b = choice.batch
    base = baseline(dep, b, prompt_len, output_len)
    mem = memory_report(dep, b, prompt_len, output_len).as_dict()
    sp = specprefill_section(dep, speculator, b, prompt_len, max_quality_drop, slo_ttft_s)
    sd, critical = specdecode_section(dep, drafts, b, prompt_len, output_len, acceptance_rate)
    ctx = float(mean_decode_context(prompt_len, output_len))
    pre = pass_shares(dep, b, prompt_len, 0)
    dec = pass_shares(dep, b, 1, ctx)
    notes = []
    if not choice.fits:
        notes.append(f"PLAN AT BATCH {b}, NOT {batch}: {choice.reason}")
    if slo_ttft_s is not None or slo_tpot_s is not None:
        ttft_with = sp.get("ttft_s", base.ttft_s)
        tpot_with = sd.get("tpot_s", base.tpot_s)
        for label, slo, plain, spec in (
            ("TTFT", slo_ttft_s, base.ttft_s, ttft_with),
            ("TPOT", slo_tpot_s, base.tpot_s, tpot_with),
        ):
            if slo is None:
                continue
            verdict = (
                "met" if plain <= slo else "met only with speculation" if spec <= slo else "missed"
            )
            notes.append(
                f"{label} SLO {slo:g} s {verdict} (baseline {plain:.3g} s, with speculation "
                f"{spec:.3g} s)"
            )
    from perfmodel.cli.commands.common import basis as basis_of

    return Recommendation(
        model=dep.model.name,
        gpu=dep.gpu.name,
        num_gpus=dep.num_gpus,
        tp=dep.tp,
        prompt_len=prompt_len,
        output_len=output_len,
        precision=choice,
        baseline=base,
        memory=mem,
        specprefill=sp,
        specdecode=sd,
        critical_seq_len=critical,
        workload_context=ctx,
        above_critical=None if critical is None else bool(ctx >= critical),
        prefill=pre,
        decode=dec,
        rationale=rationale(dep, b, prompt_len, output_len, pre, dec, sp, sd, critical),
        profile=dep.profile.name,
        mode=dep.mode,
        basis=basis_of(dep),
        notes=notes,
    )
