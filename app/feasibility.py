"""Feasible defaults and the "does it fit" line of every page (no Streamlit here).

No model logic: the smallest deployment comes from perfmodel.planners.deployment_search
(search_gpu, the search `perfmodel recommend` runs), memory from perfmodel.core.memory
(memory_report, what `perfmodel predict` prints). Pages wrap these in st.cache_data.
"""

from __future__ import annotations

import numpy as np

from perfmodel.errors import PerfModelError

# the workload the sidebar's default TP must serve: one request of the pages' default prompt
# (32k tokens) and output (512)
REFERENCE_BATCH, REFERENCE_PROMPT, REFERENCE_OUTPUT = 1, 32768, 512
MAX_TP = 8  # the sidebar offers TP 1, 2, 4, 8 (one node)


def feasible_default(model: str, gpu: str, weight_dtype: str, kv_dtype: str) -> dict:
    """The sidebar's default for a model and GPU: the smallest TP (one node, no pipeline) at
    which the model serves the reference workload at the given precision; where none does,
    the smallest TP and the first precision that do (planners.deployment_search.search_gpu:
    fewest GPUs, then bf16/bf16, fp8/bf16, fp8/fp8, then int4). fits=False: nothing on one
    node of this GPU serves it (the page then says why)."""
    from perfmodel.planners.deployment_search import search_gpu

    args = (model, gpu, REFERENCE_BATCH, REFERENCE_PROMPT, REFERENCE_OUTPUT)
    for kwargs in (
        {"precisions": ((weight_dtype, kv_dtype),), "fallback_precisions": ()},
        {},  # the search's own precision order
    ):
        try:
            choice = search_gpu(*args, max_gpus=MAX_TP, pp=1, **kwargs).choice
        except PerfModelError:
            choice = None
        if choice is not None:
            return {
                "num_gpus": int(choice.tp),
                "weight_dtype": choice.weight_dtype,
                "kv_dtype": choice.kv_dtype,
                "fits": True,
            }
    return {"num_gpus": MAX_TP, "weight_dtype": weight_dtype, "kv_dtype": kv_dtype, "fits": False}


def memory_problem(dep, batch, prompt_len: int, output_len: int, extra_bytes=0.0) -> str | None:
    """Why a deployment cannot serve a request, in one line, or None when it can: the context
    window (model config) and the memory per GPU (core.memory.memory_report)."""
    from perfmodel.core.memory import memory_report

    m = dep.model
    if prompt_len + output_len > m.max_position_embeddings:
        return (
            f"{prompt_len:,} + {output_len:,} tokens exceed {m.name}'s context window of "
            f"{m.max_position_embeddings:,}"
        )
    mem = memory_report(dep, batch, prompt_len, output_len, extra_bytes=extra_bytes)
    total = float(np.max(mem.total_gb))
    if total <= mem.capacity_gb:
        return None
    return (
        f"{total:,.1f} GB per GPU needed, {mem.capacity_gb:,.1f} GB usable on "
        f"{dep.gpu.name} ({total - mem.capacity_gb:,.1f} GB short)"
    )


def helper_options(cfg: dict, role: str = "draft") -> dict:
    """The shipped models that can serve as this target's speculator or draft at the
    sidebar's deployment (planners.speculation: smaller, same vocabulary, heads divisible by
    the TP the helper runs with), and 'name: why' for those that cannot."""
    from app.compute import deployment
    from perfmodel.planners.speculation.deploy import helper_deployment, smaller_models
    from perfmodel.specs.models import resolve_model

    target = deployment(cfg)
    usable, excluded = [], []
    for m in smaller_models(resolve_model(cfg["model"])):
        try:
            helper_deployment(target, m.name, role)
        except PerfModelError as exc:
            excluded.append(f"{m.name}: {exc}")
        else:
            usable.append(m.name)
    return {"usable": usable, "excluded": excluded}


def target_problem(cfg: dict, batch: int, prompt_len: int, output_len: int) -> str | None:
    """memory_problem for the sidebar's target alone, named: 'Llama-3.1-70B (bf16) on 1x
    rtx4090 does not fit: ...'; None when it serves the request."""
    from app.compute import deployment

    dep = deployment(cfg)
    why = memory_problem(dep, batch, prompt_len, output_len)
    if why is None:
        return None
    return f"{dep.model.name} ({dep.weight_dtype}) on {dep.num_gpus}x {dep.gpu.name} does not fit: {why}"


def specprefill_default_batch(
    cfg: dict, speculator: str, prompt_len: int, keep_rate: float = 0.5, most: int = 16
) -> int:
    """The SpecPrefill page's default batch: the largest power of two up to `most` at which
    both the baseline and SpecPrefill (speculator beside the target) fit in memory
    (planners.specprefill.memory_max_batch); 1 when even that does not (the page says why)."""
    from app.compute import deployment
    from perfmodel.planners.specprefill import memory_max_batch
    from perfmodel.planners.speculation.deploy import helper_deployment

    target = deployment(cfg)
    try:
        spec = helper_deployment(target, speculator, "speculator")
        base, sp = memory_max_batch(target, spec, prompt_len, keep_rate)
    except PerfModelError:
        return 1
    fits = int(min(float(np.min(base)), float(np.min(sp)), most))
    return 1 << max(fits, 1).bit_length() - 1
