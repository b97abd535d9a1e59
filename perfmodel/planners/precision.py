"""Precision choice for one workload: the first of PRECISIONS whose memory per GPU fits.

Order (specs.dtypes.PRECISIONS): (bf16 weights, bf16 KV), (fp8, bf16), (fp8, fp8),
(int4, fp8). When none fits at the requested batch, the plan is made at the largest batch
that fits (the precision with the largest max batch, int4 only when nothing else holds one
sequence), and the smallest GPU count that fits the requested batch is named (a larger TP
group inside the node, else data-parallel replicas), flagged when it spans nodes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import numpy as np

from perfmodel.core.deployment import Deployment, make_deployment
from perfmodel.core.memory import max_batch, memory_report, weight_bytes_per_gpu
from perfmodel.errors import OutOfMemoryError, PerfModelError
from perfmodel.specs.dtypes import PRECISIONS
from perfmodel.specs.hardware import resolve_gpu
from perfmodel.specs.models import ModelSpec
from perfmodel.specs.units import plural

MAX_SCALE_OUT_GPUS = 64  # the largest tensor-parallel group tried when nothing fits


class PrecisionChoice(NamedTuple):
    """The chosen weight/KV dtypes, why, and what fits (an immutable NamedTuple)."""

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
    max_batch_on: str | None = None  # the GPUs max_batch is for, e.g. "8x h100-sxm (TP8)"

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
            "max_batch_on": self.max_batch_on,
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
        f"{plural(replicas, 'data-parallel replica')} of {num_gpus}x (about "
        f"{plural(each, 'sequence')} each)",
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
            f", {plural(-(-n // per_node), 'node')}" if multi else ""
        )
    else:
        need = f"batch {batch} does not fit on up to {plural(MAX_SCALE_OUT_GPUS, 'GPU')}"
    reason = (
        f"nothing fits at {ctx} on {where} (largest batch per precision: "
        + ", ".join(f"{p} {b}" for p, b in mbs.items())
        + f"); {need}. "
    )
    if per_replica is not None:
        # plan one replica at its share of the batch (leaves room for a speculator/draft)
        plan_batch = per_replica
        reason += (
            f"Plan below: one replica, {plural(plan_batch, 'sequence')}, {w} weights and {k} "
            "KV cache"
        )
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


def named_deployment(
    model, gpu, num_gpus=None, tp=None, pp=None, profile=None, mode=None, allow_cross_node_tp=False
):
    """The GPUs the user named, for the one-line 'what fits here' answer: --num-gpus (with
    --tp/--pp, predict's rule), else one node of the GPU type at the largest TP that divides
    both the node and the heads. None when that cannot be built (say, no interconnect)."""
    if num_gpus is not None or tp is not None or pp is not None:
        n = num_gpus if num_gpus is not None else (tp or 1) * (pp or 1)
        return make_deployment(
            model,
            gpu,
            n,
            tp,
            "bf16",
            "bf16",
            mode,
            profile,
            pp=pp or 1,
            allow_cross_node_tp=allow_cross_node_tp,
        )
    hw = resolve_gpu(gpu)
    heads = make_deployment(model, hw, 1, 1, mode=mode, profile=profile).model.num_heads
    n = hw.max_gpus_per_node
    t = max(t for t in range(1, n + 1) if n % t == 0 and heads % t == 0)
    try:
        return make_deployment(model, hw, n, t, "bf16", "bf16", mode, profile)
    except PerfModelError:
        return None


def max_batches(dep: Deployment, prompt_len, output_len) -> dict[str, int]:
    """'bf16/bf16' -> largest batch one replica of `dep` holds, for every precision."""
    return {
        _label(w, k): int(
            max_batch(replace(dep, weight_dtype=w, kv_dtype=k), prompt_len, output_len).flat[0]
        )
        for w, k in PRECISIONS
    }


def from_deployment(
    choice, named: Deployment | None, prompt_len, output_len, reason: str
) -> PrecisionChoice:
    """The precision of a searched deployment (deployment_search.DeploymentChoice): it serves
    the requested batch, so fits is True; max_batch is what the named GPUs hold; `reason`
    is the precision policy's (precision_policy.precision_reason)."""
    mbs = {} if named is None else max_batches(named, prompt_len, output_len)
    where = "" if named is None else f"{named.num_gpus}x {named.gpu.name} (TP{named.tp}"
    where += f" PP{named.pp})" if named is not None and named.pp > 1 else ")" * bool(where)
    return PrecisionChoice(
        choice.weight_dtype,
        choice.kv_dtype,
        reason,
        True,
        choice.batch,
        choice.batch_per_replica,
        mbs,
        choice.num_gpus,
        choice.precision,
        choice.nodes > 1,
        where or None,
    )
