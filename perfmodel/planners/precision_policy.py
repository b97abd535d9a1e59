"""The one precision policy of recommend and capacity (stated in both outputs).

Quality first: (weights, KV) in the order bf16/bf16, fp8/bf16, fp8/fp8; int4 weights
(FALLBACK_PRECISIONS) only when no deployment at those precisions is feasible (fits and meets
the SLOs). Within one GPU type the deployment search tries the fallback only when nothing
else serves; across GPU types (rank_key) and in capacity's ranking (capacity.rank) a fallback
precision ranks after every feasible deployment at a quality precision. A quantized
checkpoint (quantization_config: gpt-oss MXFP4, DeepSeek-V3 block FP8) is served in its own
format, never upcast (tried_precisions). precision_reason says which of these set a choice.
"""

from __future__ import annotations

from perfmodel.planners.deployment_choice import DeploymentChoice
from perfmodel.specs.dtypes import precisions_for

PRECISIONS: tuple[tuple[str, str], ...] = (("bf16", "bf16"), ("fp8", "bf16"), ("fp8", "fp8"))
FALLBACK_PRECISIONS: tuple[tuple[str, str], ...] = (("int4", "fp8"),)
PRECISION_POLICY = (
    "precision policy (recommend and capacity): quality first, bf16/bf16, fp8/bf16, fp8/fp8; "
    "int4/fp8 weights only when no deployment at those precisions serves the batch and meets "
    "the SLOs"
)


def last_resort(weight_dtype: str, kv_dtype: str) -> bool:
    """True for a fallback precision (int4 weights): ranked after every deployment at a
    quality precision, by recommend and capacity alike (PRECISION_POLICY)."""
    return (weight_dtype, kv_dtype) in FALLBACK_PRECISIONS


def rank_key(precisions, fallback_precisions):
    """The one precision policy across GPU types, as within one: a fallback precision (int4
    weights) ranks after every deployment at a quality precision, then cost per hour, cost
    per million output tokens, fewest GPUs, precision order, latency."""
    order = {p: i for i, p in enumerate(tuple(precisions) + tuple(fallback_precisions))}
    fallback = set(fallback_precisions)

    def key(c: DeploymentChoice):
        precision = order[(c.weight_dtype, c.kv_dtype)]
        fallback_first = (c.weight_dtype, c.kv_dtype) in fallback
        return (fallback_first, c.cost_per_hour, c.cost_per_mtok, c.num_gpus, precision, c.e2e_s)

    return key


def tried_precisions(
    checkpoint_format: str, precisions=PRECISIONS, fallback_precisions=FALLBACK_PRECISIONS
) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """(quality, fallback) (weights, KV) pairs tried for a model whose checkpoint is published
    in `checkpoint_format` ('' when unquantized): each weight dtype wider than the format
    becomes the format (specs.dtypes.precisions_for); a fallback already among the quality
    pairs is dropped."""
    quality = precisions_for(checkpoint_format, precisions)
    fallback = precisions_for(checkpoint_format, fallback_precisions)
    return quality, tuple(p for p in fallback if p not in quality)


def precision_reason(
    chosen: DeploymentChoice,
    memory_only: DeploymentChoice | None,
    slo_text: str,
    checkpoint_format: str,
) -> str:
    """Why the chosen (weights, KV) pair, naming what forced it:

    - the checkpoint's own format (a quantized checkpoint is never upcast) fixes the weights;
    - an SLO, when the smallest deployment that merely fits (`memory_only`: the same search
      without SLOs, on the same GPU type) has another precision or size: its precision is
      named, with the SLOs (`slo_text`, e.g. '--slo-tpot 0.008 s');
    - memory otherwise: the first pair in policy order that holds the batch on the fewest
      GPUs;
    - int4 (the fallback) only when no quality pair holds the batch (memory) or meets the
      SLOs (then an SLO forced it, and what would merely fit is named).
    """
    quality, fallback = tried_precisions(checkpoint_format)
    order = ", ".join(f"{w}/{k}" for w, k in quality)
    where = (
        f"({chosen.num_gpus}; {chosen.memory_per_gpu_gb:.1f} of {chosen.capacity_gb:.1f} GB "
        "per GPU)"
    )
    by_slo = memory_only is not None and (
        memory_only.precision != chosen.precision or memory_only.num_gpus != chosen.num_gpus
    )
    unforced = (
        ""
        if not by_slo
        else f"; without the SLOs, {memory_only.precision} on {memory_only.num_gpus}x "
        f"{memory_only.gpu} would hold it"
    )
    head = ""
    if checkpoint_format and chosen.weight_dtype == checkpoint_format:
        head = (
            f"weights in {checkpoint_format}, the checkpoint's own format (its "
            "quantization_config: served as published, never upcast); "
        )
    if last_resort(chosen.weight_dtype, chosen.kv_dtype):
        what = f"meets {slo_text}" if by_slo else f"holds batch {chosen.batch}"
        return (
            f"{head}{chosen.precision}, the fallback {where}: no deployment on {chosen.gpu} at "
            f"{order} {what}{unforced}"
        )
    what = f"serves batch {chosen.batch}" + (f" and meets {slo_text}" if by_slo else "")
    also = ", ".join(f"{w}/{k}" for w, k in fallback)
    return f"{head}the first of {order} that {what} on the fewest GPUs {where}{unforced}" + (
        f"; {also} only when none of them {'does' if by_slo else 'serves it'}" if also else ""
    )
