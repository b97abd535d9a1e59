"""One forward pass priced by an operator table, fast enough for sweeps.

Per layer, the kernels of a Llama block in a PyTorch-style stack: 2 RMSNorm, QKV GEMM, 2 KV
writes, attention, O GEMM, residual add, gate_up GEMM, SiLU*mul (2 kernels), down GEMM,
residual add; per pass, the final norm and the LM head over the sampled tokens (RoPE is not
priced: the reference benchmark leaves it out).

Every kernel but attention depends on one variable only, the token count M (or the sampled
tokens for the LM head and final norm), so for a deployment its time is tabulated once on a
dense uniform log-M grid (4096 nodes over 1..1e8 tokens, 0.45% apart in M: linear
interpolation between nodes stays within 1e-4 of the kernel curves) and a sweep costs, per
operator, two gathers and a multiply-add (the node index is computed once per pass).
Attention depends on (batch, context) and is evaluated directly. Clamp notices come from
evaluating the exact kernels at the sweep's smallest and largest M.

A compute-bound kernel never runs faster than the profile's sustained tensor rate:
t = max(t_table, FLOPs / (peak * efficiency)): microbenchmarks of a few ms run at boost
clock, a long compute-bound pass at the power-limited clock.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from perfmodel.core.arrays import sorted_unique
from perfmodel.core.identity_memo import by_identity
from perfmodel.core.ops import forward_ops
from perfmodel.core.optable.interpolate import max_of, min_of
from perfmodel.core.optable.kernels import KernelPricing, Priced, notices_of
from perfmodel.core.optable.transfer import GemmWork, gemm_work
from perfmodel.specs.models import ModelSpec

DECODE_MAX_TOKENS = 16  # query tokens per sequence up to which attention is decode-like
GRID = np.linspace(0.0, np.log(1e8), 4096)
STEP = GRID[1] - GRID[0]
GRID_TOKENS = np.exp(GRID)  # the grid spans far beyond any table: its clamps are not the sweep's
GRID_LOG_TOKENS = np.log(np.maximum(GRID_TOKENS, 1.0))  # what a GEMM's table read takes
GRID_TWICE = 2.0 * GRID_TOKENS  # and its FLOPs start from (gemm_work)


class TablePass:
    """Per-op times of one pass (x layers; None: the table does not price the op, the
    roofline does) and the table's notices: which table, and every clamp. The notices are
    worked out when first read (`explain`, then kept): a search prices hundreds of passes
    for their times alone, and the clamp notices of the token kernels cost as much again."""

    __slots__ = ("times", "explain", "_notices")

    def __init__(self, times: list[np.ndarray | None], explain: Callable[[], tuple[str, ...]]):
        self.times = times
        self.explain = explain
        self._notices: tuple[str, ...] | None = None

    @property
    def notices(self) -> tuple[str, ...]:
        if self._notices is None:
            self._notices = self.explain()
        return self._notices


def layer_gemm_shapes(model: ModelSpec, tp: float) -> list[tuple[str, float, float]]:
    """(name, K, N) per GPU of the four projections of a dense layer (Megatron TP split)."""
    d, ffn = model.hidden_size, model.intermediate_size
    return [
        ("qkv_proj", d, (model.q_dim + 2 * model.kv_dim) / tp),
        ("o_proj", model.q_dim / tp, d),
        ("mlp_gate_up", d, 2 * ffn / tp),
        ("mlp_down", ffn / tp, d),
    ]


def _layer_kernels(kp: KernelPricing, dep, tp: float) -> dict:
    """Functions of the token count (array x; `start`: its first node when x is a slice of
    GRID_TOKENS) -> (Priced time, per_layer) of each token-only operator: per_layer True
    when the time is one layer's (x num_layers in _token_kernels), so that a tabulation
    serves every pipeline stage of the model. 'norm_rope_act' is split in its per-layer
    part (tokens) and the final norm. A GEMM's work (gemm_work) is worked out once and
    serves its table read, its rooflines and its compute floor (2 x K N / rate)."""
    m = dep.model
    act, kvb, wb = 2.0, dep.kv_bytes, dep.w_bytes
    d = float(m.hidden_size)
    kv = float(np.ceil(m.num_kv_heads / tp))
    hd = float(m.head_dim)
    ffn = m.intermediate_size * (m.experts_per_token if m.is_moe else 1) / tp
    mm_rate = kp.hw.peak_flops(dep.compute_dtype) * dep.profile.matmul
    out = {}
    has_gemm = kp.curves.gemm_ratio_by_size != ()
    for name, k, n in layer_gemm_shapes(m, tp) if has_gemm else []:
        if m.is_moe and name.startswith("mlp"):
            continue

        def gemm(x, start=None, name=name, k=k, n=n):
            work = _work(x, start, k, n, wb)
            p = kp.gemm(name, x, k, n, wb, dep.compute_dtype, work)
            return Priced(np.maximum(p.time_s, work.flop / mm_rate), p.notices)

        out[name] = (gemm, True)
    vocab = m.vocab_size / tp

    def lm_head(x, start=None):
        work = _work(x, start, d, vocab, act)
        p = kp.gemm("lm_head", x, d, vocab, act, None, work)
        return Priced(np.maximum(p.time_s, work.flop / mm_rate), p.notices)

    def norms(x, start=None):
        parts = (
            kp.eltwise("rmsnorm", 2 * x * d * act, d),
            kp.eltwise("kernel", 3 * x * d * act),
            kp.eltwise("kernel", 2.5 * x * ffn * act),
            kp.eltwise("kernel", 2 * x * kv * hd * kvb),
        )
        return Priced(sum(2 * p.time_s for p in parts), notices_of(*parts))

    def final_norm(x, start=None):
        return kp.eltwise("rmsnorm", 2 * x * d * act, d)

    if has_gemm:
        out["lm_head"] = (lm_head, False)
    if "rmsnorm" in kp.curves.eltwise:  # a table without norms: the roofline prices them
        out.update(norms=(norms, True), final_norm=(final_norm, False))
    return out


def _work(x, start: int | None, k: float, n: float, w_bytes: float) -> GemmWork:
    """gemm_work(x, k, n, w_bytes); on a slice of GRID_TOKENS from node `start`, with the
    grid's log tokens and 2 x tokens worked out once for every kernel (the same values)."""
    if start is None:
        return gemm_work(x, k, n, w_bytes)
    stop = start + len(x)
    return gemm_work(x, k, n, w_bytes, 2.0, GRID_LOG_TOKENS[start:stop], GRID_TWICE[start:stop])


def _token_kernels(kp: KernelPricing, dep, tp: float) -> dict:
    """Functions of the token count (array) -> Priced time of each token-only operator, x
    layers where the operator runs in every layer."""
    L = dep.model.num_layers

    def whole(fn, per_layer):
        if not per_layer:
            return fn

        def times_layers(x):
            p = fn(x)
            return Priced(L * p.time_s, p.notices)

        return times_layers

    return {name: whole(*entry) for name, entry in _layer_kernels(kp, dep, tp).items()}


_CACHE: dict = {}
FIRST_NODES = 1024  # nodes a tabulation evaluates at first (decode reaches ~900, prefill more)


class RunningMax:
    """The running maximum of a token-only kernel's times on GRID, evaluated only as far
    as lookups reach (prefixes: the maximum up to node j reads nodes 0..j alone), a chunk
    at a time: the kernel curves are elementwise, and the running maximum of a chunk
    continued from the previous node's is the running maximum of the whole, bit for bit
    (a maximum selects, it never rounds)."""

    __slots__ = ("_fn", "_values", "_done")

    def __init__(self, fn: Callable, values: np.ndarray | None = None):
        self._fn = fn
        self._values = np.empty(len(GRID)) if values is None else values  # len(GRID), filled
        self._done = 0

    def upto(self, nodes: int) -> np.ndarray:
        """The running maximum; its first `nodes` entries are final."""
        if nodes > self._done:
            start = self._done
            stop = min(len(GRID), max(nodes, 2 * start, FIRST_NODES))
            chunk = self._values[start:stop]
            np.maximum.accumulate(self._fn(GRID_TOKENS[start:stop], start).time_s, out=chunk)
            if start:
                np.maximum(chunk, self._values[start - 1], out=chunk)
            self._done = stop
        return self._values


@by_identity(owners=2)
def _tabulated(kp: KernelPricing, dep, tp: float) -> dict:
    """Token-only operator times on GRID: name -> (per-layer running maximum, layers or
    None), memoized per table, GPU, model without its layer count, TP degree, dtypes and
    sustained matmul rate, so that the stages of every pipeline depth share one evaluation
    of the kernel curves, and evaluated only as far as lookups reach (RunningMax). More
    tokens never take less time: a measured dip between neighbouring M (another kernel
    picked at M = 80 than at 64, noise) is not passed on to a larger batch. x layers
    commutes with the running maximum exactly (rounding L*t is monotone in t), so _lookup
    scales the two nodes it reads, bit for bit the table of L * t. Kept per pricing and
    deployment object and TP degree (by_identity)."""
    key = (*_tabulation_key(kp, dep), tp)
    kernels = _CACHE.get(key)
    if kernels is None:
        if len(_CACHE) > 64:
            _CACHE.clear()
        layer = _layer_kernels(kp.quiet(), dep, tp)
        block = np.empty((len(layer), len(GRID)))  # one allocation, a row per kernel
        kernels = _CACHE[key] = {
            name: (RunningMax(fn, row), per_layer)
            for (name, (fn, per_layer)), row in zip(layer.items(), block, strict=True)
        }
    L = dep.model.num_layers
    return {name: (t, L if per_layer else None) for name, (t, per_layer) in kernels.items()}


@by_identity
def _tabulation_key(kp: KernelPricing, dep) -> tuple:
    """What a tabulation depends on besides the TP degree (_tabulated)."""
    return (
        kp.curves.table.path,
        _spelled(dep.gpu),
        dep.model.with_layers(1),
        dep.weight_dtype,
        dep.kv_dtype,
        dep.profile.matmul,
    )


@by_identity
def _spelled(gpu) -> str:
    """repr of a GPU spec (every field: a key by value), once per spec object."""
    return repr(gpu)


_TOP = len(GRID) - 1 - 1e-9  # the last node's index, less a hair: node i + 1 exists
_GRID0 = GRID[0]


def _nodes(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the grid node at or below log x (clipped to the grid) and the fraction."""
    if not isinstance(x, np.ndarray):  # one float64 (a pass of one shape): the same
        # choices (max_of, min_of), the same log, truncation and subtraction
        u = min_of(max_of((np.log(max_of(x, 1.0)) - _GRID0) / STEP, 0.0), _TOP)
        i = int(u)
        return i, u - i
    # np.clip(v, 0.0, top) as a maximum then a minimum: the same selection, fewer calls
    u = np.minimum(np.maximum((np.log(np.maximum(x, 1.0)) - GRID[0]) / STEP, 0.0), _TOP)
    i = u.astype(np.intp)
    return i, u - i


def _lookup(entry, nodes) -> np.ndarray:
    """Linear interpolation between node i (value) and node i+1 (value + slope)."""
    (running, layers), (i, f) = entry, nodes
    t = running.upto((int(np.max(i, initial=0)) if isinstance(i, np.ndarray) else int(i)) + 2)
    lo, hi = t[i], t[i + 1]
    if layers is not None:
        lo, hi = layers * lo, layers * hi
    return lo + f * (hi - lo)


def _attention(kp: KernelPricing, dep, shape, tp: float) -> Priced:
    m, L = dep.model, dep.model.num_layers
    b, q = shape.batch, shape.new_tokens
    h, hd = m.num_heads / tp, float(m.head_dim)
    kv = float(np.ceil(m.num_kv_heads / tp))
    c_att = np.minimum(shape.cached, shape.kv_budget)
    one = np.ndim(q) == 0  # a pass of one shape: q is its own max and min
    if (q if one else np.max(q)) <= DECODE_MAX_TOKENS:
        p = kp.attn_decode(b, c_att + q, h, kv, hd, dep.kv_bytes)
        return Priced(L * p.time_s, p.notices)
    attn_rate = kp.hw.peak_flops("bf16") * dep.profile.attention
    f = 4.0 * b * q * (c_att + q / 2.0) * h * hd
    by = 2.0 * b * (2 * q * h + 2 * (c_att + q) * kv) * hd
    pre = kp.attn_prefill(f, by, h, kv, hd)
    t = np.maximum(pre.time_s, f / attn_rate)
    if (q if one else np.min(q)) <= DECODE_MAX_TOKENS:
        dec = kp.attn_decode(b, c_att + q, h, kv, hd, dep.kv_bytes)
        t = np.where(q <= DECODE_MAX_TOKENS, dec.time_s, t)
        return Priced(L * t, notices_of(pre, dec))
    return Priced(L * t, pre.notices)


def _pass_scalar_tp(kp: KernelPricing, dep, shape, ops, tp: float) -> TablePass:
    """Per-op times (x layers) of a pass with one TP degree; None: not priced by the table.
    The kernels priced directly run quiet (KernelPricing.quiet: the same times); their
    clamp notices are worked out again, with the notices, only when read (explain)."""
    tab = _tabulated(kp, dep, tp)
    quiet = kp.quiet()
    tokens = shape.batch * shape.new_tokens
    sampled = shape.batch * shape.logits_per_seq
    lt, ls = _nodes(tokens), _nodes(sampled)
    loud: list[Callable[[], Priced]] = []  # kernels priced directly, priced with notices

    def explain() -> tuple[str, ...]:  # and the token kernels' at the sweep's extremes
        span = np.array([tokens.min(), tokens.max()]) if tokens.size else np.ones(1)
        ends = np.array([sampled.min(), sampled.max()])
        at_ends = [
            fn(ends if name in ("lm_head", "final_norm") else span)
            for name, fn in _token_kernels(kp, dep, tp).items()
        ]
        return notices_of(*at_ends, *(price() for price in loud))

    out: list[np.ndarray | None] = []
    for op in ops:
        if op.name == "lm_head" and "lm_head" in tab:
            out.append(_lookup(tab["lm_head"], ls))
        elif op.name in tab:
            out.append(_lookup(tab[op.name], lt))
        elif op.name == "attention" and _prices_attention(kp.curves):
            out.append(_attention(quiet, dep, shape, tp).time_s)
            loud.append(lambda: _attention(kp, dep, shape, tp))
        elif op.name == "norm_rope_act" and "norms" in tab:
            out.append(_norms(tab, lt, ls))
        elif op.kind == "matmul" and kp.curves.gemm:  # MoE router and experts: by size, ratio
            out.append(_gemm_by_weight(kp, dep, op, tokens, loud))
        else:
            out.append(None)
    return TablePass(out, explain)


def _gemm_by_weight(kp: KernelPricing, dep, op, tokens, loud: list) -> np.ndarray:
    """L x the table's GEMM time of an op priced by its size (a MoE router or its experts):
    per layer M = its rows, K = d, N = its weight bytes per layer / (d x bytes per weight).
    Each point at its own weight: the experts a batch touches grow with it, so one call's
    points differ (priced at the call's largest weight, batch 1 of a sweep up to batch 64
    read as many experts as batch 64 and came out ~1.7x slower than asked alone). One GEMM
    call per distinct weight, over its points (the table prices each M on its own); their
    clamp notices are priced the same way when read (loud)."""
    L, wb, d = dep.model.num_layers, dep.w_bytes, float(dep.model.hidden_size)
    rows = np.maximum(np.asarray(op.rows, float) + 0 * tokens, 1.0)
    weights = np.asarray(op.weight_bytes, float)
    quiet = kp.quiet()
    if weights.ndim == 0 or (weights.size and weights.min() == weights.max()):
        args = (op.name, rows, d, float(np.max(weights)) / (L * wb) / d, wb, dep.compute_dtype)
        loud.append(lambda: kp.gemm(*args))
        return L * quiet.gemm(*args).time_s
    weights = np.broadcast_to(weights, np.shape(rows))
    out = np.empty(np.shape(rows))
    for w in sorted_unique(weights):
        mask = weights == w
        args = (op.name, rows[mask], d, float(w) / (L * wb) / d, wb, dep.compute_dtype)
        out[mask] = L * quiet.gemm(*args).time_s
        loud.append(lambda args=args: kp.gemm(*args))
    return out


def _norms(tab: dict, lt, ls) -> np.ndarray:
    """norm_rope_act by the table: every layer's norms at the pass's tokens (lt), the final
    norm at its sampled tokens (ls)."""
    return _lookup(tab["norms"], lt) + _lookup(tab["final_norm"], ls)


def unsampled_norms(kp: KernelPricing, dep, shape) -> np.ndarray | None:
    """The table's norm_rope_act time of a pass that samples no token (logits_per_seq 0: a
    pipeline stage before the last), as _pass_scalar_tp prices it; None: the table does not
    price the norms. With lm_head, the only op of a pass that reads the sampled tokens."""
    tab = _tabulated(kp, dep, float(np.ravel(shape.tp)[0]))
    if "norms" not in tab:
        return None
    sampled = shape.batch * shape.logits_per_seq
    return _norms(tab, _nodes(shape.batch * shape.new_tokens), _nodes(sampled))


@by_identity
def _prices_attention(curves) -> bool:
    """Whether a table measures both attention kernels (decode and prefill)."""
    return bool(curves.attn_decode and curves.attn_prefill)


def price_pass(kp: KernelPricing, dep, shape, ops) -> TablePass:
    """Per-op table times and notices of a pass (the table's label first); TP degrees that
    differ across the sweep are priced group by group (a handful of distinct values)."""
    tp = shape.tp
    if not isinstance(tp, np.ndarray):  # a pass of one shape (ops.make_shape): one degree
        one = _pass_scalar_tp(kp, dep, shape, ops, float(tp))
        return TablePass(one.times, lambda: (kp.label, *one.notices))
    if tp.size == 0 or tp.min() == tp.max():
        one = _pass_scalar_tp(kp, dep, shape, ops, float(tp.flat[0]) if tp.size else 1.0)
        return TablePass(one.times, lambda: (kp.label, *one.notices))
    out: list[np.ndarray | None] = [np.zeros_like(tp) for _ in ops]
    groups: list[TablePass] = []
    for value in sorted_unique(tp):
        mask = tp == value
        sub = type(shape)(*(np.asarray(a)[mask] for a in shape))
        sub_ops = forward_ops(dep.model, sub, dep.w_bytes, dep.kv_bytes)
        group = _pass_scalar_tp(kp, dep, sub, sub_ops, float(value))
        groups.append(group)
        for i, t in enumerate(group.times):
            if t is None:
                out[i] = None
            elif out[i] is not None:
                out[i][mask] = t
    return TablePass(
        out, lambda: tuple(dict.fromkeys([kp.label, *(n for g in groups for n in g.notices)]))
    )
