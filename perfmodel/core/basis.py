"""What prices each operator class of a deployment, in words (STYLE 16: the label is part of
the number): "measured" only where a measured row of this GPU prices it (which table,
framework version); "transferred" where a table of another GPU of the family does (from
which GPU, by which rule); "roofline" where no table applies (with which efficiencies).

Each label follows the decision its pricing takes (core/optable/kernels.py: exact curve of a
measured shape on the table's GPU, else the nearest measured sizes' ratio to the roofline;
TransferredPricing across GPUs; core/collective.py for the all-reduce), asked of the same
loaded curves, so the two cannot drift apart silently: a shape the table has is measured,
one it lacks is not, whatever the rest of the table holds.
"""

from __future__ import annotations

import numpy as np

from perfmodel.core.collective import deployment_basis
from perfmodel.core.deployment import cross_node_tp_label
from perfmodel.core.optable.kernels import TransferredPricing, kernel_pricing
from perfmodel.core.optable.load import Curves
from perfmodel.core.optable.price import layer_gemm_shapes

CLASSES = (
    "gemm",
    "attention_decode",
    "attention_prefill",
    "elementwise",
    "allreduce",
    "pipeline",
    "overheads",
)


def _table_words(cv: Curves) -> str:
    t = cv.table
    version = f" {t.framework_version}" if t.framework_version else ""
    source = t.provenance.get("source_package") or "perfmodel profile --ops"
    return f"operator table {t.name} ({t.framework}{version}, {source})"


def _gemm(dep, cv: Curves, same_gpu: bool) -> str:
    fp8_weights = dep.w_bytes < 2
    rows = cv.fp8 if fp8_weights and cv.fp8 is not None else cv
    dtype = "FP8" if rows.w_bytes < 2 else "BF16"
    shapes = [(n, float(k), float(nn)) for n, k, nn in layer_gemm_shapes(dep.model, dep.tp)]
    if dep.model.is_moe:
        shapes = [s for s in shapes if not s[0].startswith("mlp")]
    measured = [n for n, k, nn in shapes if (k, nn) in rows.gemm]
    others = [n for n, _, _ in shapes if n not in measured] + ["lm_head"]
    if dep.model.is_moe:
        others.append("moe experts")
    words = _table_words(cv)
    if fp8_weights and cv.fp8 is None:
        if "fp8" not in dep.gpu.peak_tflops:  # A100: FP8 weights on BF16 tensor cores
            return (
                f"{words}: BF16 rows scaled to the roofline of FP8 weights read at 1 byte and "
                f"multiplied at the BF16 peak ({dep.gpu.name} has no FP8 tensor cores: "
                "weight-only FP8; no FP8 GEMM measured)"
            )
        return f"{words}: BF16 rows scaled to the FP8 roofline (no FP8 GEMM measured)"
    if same_gpu and measured and rows.w_bytes == (1.0 if fp8_weights else 2.0):
        return (
            f"measured: {words}, {dtype} rows of {', '.join(measured)}; "
            f"{', '.join(others)} from the nearest measured sizes' ratio to the roofline"
        )
    return f"{words}, {dtype} rows of other shapes: ratio to the roofline of each shape"


def _attention(dep, cv: Curves, store: dict, what: str, same_gpu: bool) -> str:
    tp = dep.tp
    cfg = (
        float(dep.model.num_heads / tp),
        float(np.ceil(dep.model.num_kv_heads / tp)),
        float(dep.model.head_dim),
    )
    words = _table_words(cv)
    shape = f"{cfg[0]:g} heads / {cfg[1]:g} KV heads x {cfg[2]:g}"
    if not store:
        return ""
    kv_words = "" if dep.kv_bytes == 2.0 else f"; {dep.kv_dtype} KV cache from BF16-KV rows"
    if cfg in store and same_gpu and (dep.kv_bytes == 2.0 or what == "prefill"):
        return f"measured: {words}, {what} attention of {shape}{kv_words}"
    return (
        f"{words}, {what} attention of the nearest measured head shape (no row for {shape}): "
        f"ratio to the roofline{kv_words}"
    )


def _roofline(dep, kind: str) -> str:
    p = dep.profile
    eff = {
        "gemm": f"matmul {p.matmul:g} of peak, memory {p.memory:g} of HBM",
        "attention_decode": f"KV read at {p.attention_decode or p.memory:g} of HBM",
        "attention_prefill": f"attention {p.attention:g} of peak",
        "elementwise": f"memory {p.memory:g} of HBM",
    }[kind]
    return f"roofline: {eff} (profile {p.name})"


def basis_by_class(dep) -> dict[str, str]:
    """Operator class -> how its time is priced (see the module docstring)."""
    kp = kernel_pricing(dep.optable, dep.gpu)
    out: dict[str, str] = {}
    if kp is None:
        for kind in ("gemm", "attention_decode", "attention_prefill", "elementwise"):
            out[kind] = _roofline(dep, kind)
    else:
        cv, same = kp.curves, kp.same_gpu
        out["gemm"] = (
            _gemm(dep, cv, same) if cv.gemm_ratio_by_size != () else _roofline(dep, "gemm")
        )
        dec = _attention(dep, cv, cv.attn_decode, "decode", same)
        pre = _attention(dep, cv, cv.attn_prefill, "prefill", same)
        both = cv.attn_decode and cv.attn_prefill  # price.py: the table prices both or none
        out["attention_decode"] = dec if both else _roofline(dep, "attention_decode")
        out["attention_prefill"] = pre if both else _roofline(dep, "attention_prefill")
        if "rmsnorm" in cv.eltwise:
            out["elementwise"] = ("measured: " if same else "") + (
                f"{_table_words(cv)}, RMSNorm and elementwise kernels by bytes moved"
            )
        else:
            out["elementwise"] = _roofline(dep, "elementwise") + " (the table has no norms)"
        if isinstance(kp, TransferredPricing):
            rule = (
                f"then carried from {cv.table.gpu} to {dep.gpu.name}: the part above the "
                f"{cv.table.framework} latency measured per class on H100/H200 scales by the "
                "roofline ratio"
                if kp.latencies
                else f"then scaled from {cv.table.gpu} to {dep.gpu.name} by the roofline ratio"
            )
            for kind in ("gemm", "attention_decode", "attention_prefill", "elementwise"):
                if not out[kind].startswith("roofline"):
                    text = out[kind].removeprefix("measured: ")
                    out[kind] = f"transferred: {text}; {rule}"
    if dep.tp == 1:
        out["allreduce"] = "none (TP1)"
    elif dep.tp_spans_nodes:  # the network prices it, not a table measured inside a node
        out["allreduce"] = cross_node_tp_label(dep.gpu)
    else:
        out["allreduce"] = deployment_basis(dep).label
    if dep.pp > 1:
        hw = dep.gpu
        inter = (
            f"; across nodes analytical over {hw.inter_node_kind or 'the network'} "
            f"{hw.inter_node_bandwidth_gbps:g} GB/s + {hw.inter_node_latency_us:g} us "
            "(hardware YAML)"
            if hw.has_node_data and dep.nodes > 1
            else ""
        )
        out["pipeline"] = (
            f"analytical: stage-to-stage activations over {hw.link_kind} "
            f"{hw.link_bandwidth_gbps:g} GB/s + {hw.link_latency_us:g} us{inter}"
        )
    unidentified = [k for k in dep.profile.unidentified if k.startswith("overhead.")]
    out["overheads"] = (
        f"set, not identified by data ({', '.join(k.split('.')[1] for k in unidentified)}: "
        f"reasons in profile {dep.profile.name})"
        if unidentified
        else f"fitted (profile {dep.profile.name})"
    )
    return out
