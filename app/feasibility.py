"""Feasible defaults and the "does it fit" line of every page (no Streamlit here).

No model logic: the smallest deployment comes from perfmodel.planners.deployment_search
(search_gpu, the search `perfmodel recommend` runs); whether a choice runs, and why not,
from perfmodel.planners.feasibility (check_request: the Verdict and its Reasons, the layer
every CLI command checks with). Pages wrap these in st.cache_data.
"""

from __future__ import annotations

import re

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


def verdict(cfg: dict, batch, prompt_len: int, output_len: int) -> dict:
    """Whether the sidebar's deployment serves batch x (prompt + output) tokens, through the
    feasibility layer every CLI command uses (perfmodel.planners.feasibility.check_request:
    topology, context window, memory per GPU), as plain values a page can cache and show:
    {"ok", "reasons": [{kind, message, limit, value, excess}], "labels", "why", "describe"}.
    "why" is the headline's text: what does not fit and by how much (headline_reason)."""
    from app.compute import deployment_options
    from perfmodel.planners import feasibility as fz

    o = deployment_options(cfg)
    dep, v = fz.check_request(o, batch, prompt_len, output_len)
    gpu = dep.gpu.name if dep is not None else str(o.gpu)
    describe = (
        f"{dep.model.name} ({dep.weight_dtype}) on {dep.num_gpus}x {gpu}"
        if dep is not None
        else f"{o.model} on {o.num_gpus}x {gpu}"
    )
    return {
        "ok": v.ok,
        "reasons": [r.as_dict() for r in v.reasons],
        "labels": list(v.labels),
        "why": "; ".join(headline_reason(r, gpu) for r in v.reasons),
        "describe": describe,
    }


def headline_reason(reason, gpu: str) -> str:
    """One Reason (perfmodel.planners.feasibility) as a page says it: memory with the GB
    needed, usable and short; every other kind as the layer's own line."""
    from perfmodel.planners.feasibility import CONTEXT, MEMORY

    numbers = reason.value is not None and reason.limit is not None
    if reason.kind == MEMORY and numbers:
        return (
            f"{reason.value:,.1f} GB per GPU needed, {reason.limit:,.1f} GB usable on {gpu} "
            f"({reason.value - reason.limit:,.1f} GB short)"
        )
    if reason.kind == CONTEXT and numbers:
        return (
            f"{reason.value:,.0f} positions (prompt + output) exceed the model's context "
            f"window of {reason.limit:,.0f} tokens ({reason.value - reason.limit:,.0f} over)"
        )
    return ui_text(reason.message)


def ui_text(message: str) -> str:
    """A layer's line without command-line options: '--tp 8' -> 'TP 8', and the clause
    that names an option to pass ('; ... --allow-cross-node-tp ...', '(use --tp ...)')
    dropped: the page has its own controls."""
    text = re.sub(r"\s*\((?:use|pass)[^)]*--[^)]*\)", "", message)
    text = re.sub(r";[^;]*--[a-z-]+[^;]*$", "", text)
    return re.sub(r"--(tp|pp|num-gpus)\b", lambda m: m.group(1).upper().replace("NUM-", ""), text)


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
