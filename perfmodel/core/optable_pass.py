"""One forward pass priced by an operator table (optable_cost.py), fast enough for sweeps.

Per layer, the kernels of a Llama block in a PyTorch-style stack: 2 RMSNorm, QKV GEMM, 2 KV
writes, attention, O GEMM, residual add, gate_up GEMM, SiLU*mul (2 kernels), down GEMM,
residual add; per pass, the final norm and the LM head over the sampled tokens (RoPE is not
priced: the reference benchmark leaves it out).

Every kernel but attention depends on one variable only, the token count M (or the sampled
tokens for the LM head and final norm), so for a deployment its time is tabulated once on a
dense uniform log-M grid (4096 nodes over 1..1e8 tokens, 0.45% apart in M: linear
interpolation between nodes stays within 1e-4 of the kernel curves) and a sweep costs, per
operator, two gathers and a multiply-add (the node index is computed once per pass). Attention depends on (batch, context) and is
evaluated directly. Clamp notices come from evaluating the exact kernels at the sweep's
smallest and largest M.

A compute-bound kernel never runs faster than the profile's sustained tensor rate:
t = max(t_table, FLOPs / (peak * efficiency)): microbenchmarks of a few ms run at boost
clock, a long compute-bound pass at the power-limited clock.
"""

from __future__ import annotations

import numpy as np

from perfmodel.core.ops import forward_ops
from perfmodel.core.optable_cost import (
    DECODE_MAX_TOKENS,
    TableCost,
    layer_gemm_shapes,
    table_curves,
)

GRID = np.linspace(0.0, np.log(1e8), 4096)
STEP = GRID[1] - GRID[0]


def _token_kernels(tc: TableCost, dep, tp: float) -> dict:
    """Functions of the token count (array) -> time of each token-only operator, x layers.
    'norm_rope_act' is split in its per-layer part (tokens) and the final norm (sampled)."""
    m, L = dep.model, dep.model.num_layers
    act, kvb, wb = 2.0, dep.kv_bytes, dep.w_bytes
    d = float(m.hidden_size)
    kv = float(np.ceil(m.num_kv_heads / tp))
    hd = float(m.head_dim)
    ffn = m.intermediate_size * (m.experts_per_token if m.is_moe else 1) / tp
    mm_rate = tc.hw.peak_flops(dep.compute_dtype) * dep.profile.matmul
    out = {}
    has_gemm = tc.curves.gemm_ratio_by_size != ()
    for name, k, n in layer_gemm_shapes(m, tp) if has_gemm else []:
        if m.is_moe and name.startswith("mlp"):
            continue

        def gemm(x, name=name, k=k, n=n):
            return L * np.maximum(tc.gemm(name, x, k, n, wb), 2.0 * x * k * n / mm_rate)

        out[name] = gemm
    vocab = m.vocab_size / tp

    def lm_head(x):
        return np.maximum(tc.gemm("lm_head", x, d, vocab, act), 2.0 * x * d * vocab / mm_rate)

    def norms(x):
        return L * (
            2 * tc.eltwise("rmsnorm", 2 * x * d * act, d)
            + 2 * tc.eltwise("kernel", 3 * x * d * act)
            + 2 * tc.eltwise("kernel", 2.5 * x * ffn * act)
            + 2 * tc.eltwise("kernel", 2 * x * kv * hd * kvb)
        )

    def final_norm(x):
        return tc.eltwise("rmsnorm", 2 * x * d * act, d)

    if has_gemm:
        out["lm_head"] = lm_head
    if "rmsnorm" in tc.curves.eltwise:  # a table without norms: the roofline prices them
        out.update(norms=norms, final_norm=final_norm)
    return out


_CACHE: dict = {}


def _tabulated(table: str, dep, tp: float):
    """Token-only operator times on GRID (plus the table's M values) for one deployment
    (cached per table, GPU, model, TP degree, dtypes and sustained matmul rate)."""
    key = (
        table,
        repr(dep.gpu),
        dep.model,
        tp,
        dep.weight_dtype,
        dep.kv_dtype,
        dep.profile.matmul,
    )
    if key in _CACHE:
        return _CACHE[key]
    if len(_CACHE) > 64:
        _CACHE.clear()
    hw = dep.gpu
    curves = table_curves(table)
    tc = TableCost(curves, hw, hw.name == curves.table.gpu)
    x = np.exp(GRID)
    tab = {}
    for name, fn in _token_kernels(tc, dep, tp).items():
        t = fn(x)
        tab[name] = (t[:-1], np.diff(t))  # value at node i and slope to node i+1
    _CACHE[key] = tab
    return tab


def _nodes(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the grid node at or below log x (clipped to the grid) and the fraction."""
    u = np.clip((np.log(np.maximum(x, 1.0)) - GRID[0]) / STEP, 0.0, len(GRID) - 1 - 1e-9)
    i = u.astype(np.intp)
    return i, u - i


def _lookup(entry, nodes) -> np.ndarray:
    (value, slope), (i, f) = entry, nodes
    return value[i] + f * slope[i]


def _attention(tc: TableCost, dep, shape, tp: float) -> np.ndarray:
    m, L = dep.model, dep.model.num_layers
    b, q = shape.batch, shape.new_tokens
    h, hd = m.num_heads / tp, float(m.head_dim)
    kv = float(np.ceil(m.num_kv_heads / tp))
    c_att = np.minimum(shape.cached, shape.kv_budget)
    if np.max(q) <= DECODE_MAX_TOKENS:
        return L * tc.attn_decode(b, c_att + q, h, kv, hd, dep.kv_bytes)
    attn_rate = tc.hw.peak_flops("bf16") * dep.profile.attention
    f = 4.0 * b * q * (c_att + q / 2.0) * h * hd
    by = 2.0 * b * (2 * q * h + 2 * (c_att + q) * kv) * hd
    t = np.maximum(tc.attn_prefill(f, by, h, kv, hd), f / attn_rate)
    if np.min(q) <= DECODE_MAX_TOKENS:
        dec = tc.attn_decode(b, c_att + q, h, kv, hd, dep.kv_bytes)
        t = np.where(q <= DECODE_MAX_TOKENS, dec, t)
    return L * t


def _pass_scalar_tp(tc: TableCost, dep, shape, ops, tp: float) -> list[np.ndarray | None]:
    """Per-op times (x layers) of a pass with one TP degree; None: not priced by the table."""
    tab = _tabulated(dep.profile.optable, dep, tp)
    tokens = shape.batch * shape.new_tokens
    sampled = shape.batch * shape.logits_per_seq
    lt, ls = _nodes(tokens), _nodes(sampled)
    # notices: the exact kernels at the sweep's extremes
    kernels = _token_kernels(tc, dep, tp)
    span = np.array([tokens.min(), tokens.max()]) if tokens.size else np.ones(1)
    for name, fn in kernels.items():
        fn(np.array([sampled.min(), sampled.max()]) if name in ("lm_head", "final_norm") else span)
    out: list[np.ndarray | None] = []
    for op in ops:
        if op.name == "lm_head" and "lm_head" in tab:
            out.append(_lookup(tab["lm_head"], ls))
        elif op.name in tab:
            out.append(_lookup(tab[op.name], lt))
        elif op.name == "attention" and tc.curves.attn_decode and tc.curves.attn_prefill:
            out.append(_attention(tc, dep, shape, tp))
        elif op.name == "norm_rope_act" and "norms" in tab:
            out.append(_lookup(tab["norms"], lt) + _lookup(tab["final_norm"], ls))
        elif (
            op.kind == "matmul" and tc.curves.gemm
        ):  # MoE router and experts: by size, via the ratio
            L, wb, d = dep.model.num_layers, dep.w_bytes, float(dep.model.hidden_size)
            per_layer_w = float(np.max(op.weight_bytes)) / (L * wb)
            rows = np.maximum(np.asarray(op.rows, float) + 0 * tokens, 1.0)
            out.append(L * tc.gemm(op.name, rows, d, per_layer_w / d, wb))
        else:
            out.append(None)
    return out


def table_pass_times(tc: TableCost, dep, shape, ops) -> list[np.ndarray | None]:
    """Per-op table times for a pass; TP degrees that differ across the sweep are priced
    group by group (a handful of distinct values)."""
    tp = shape.tp
    if tp.size == 0 or tp.min() == tp.max():
        return _pass_scalar_tp(tc, dep, shape, ops, float(tp.flat[0]) if tp.size else 1.0)
    out: list[np.ndarray | None] = [np.zeros_like(tp) for _ in ops]
    for value in np.unique(tp):
        mask = tp == value
        sub = type(shape)(*(np.asarray(a)[mask] for a in vars(shape).values()))
        sub_ops = forward_ops(dep.model, sub, dep.w_bytes, dep.kv_bytes)
        for i, t in enumerate(_pass_scalar_tp(tc, dep, sub, sub_ops, float(value))):
            if t is None:
                out[i] = None
            elif out[i] is not None:
                out[i][mask] = t
    return out
