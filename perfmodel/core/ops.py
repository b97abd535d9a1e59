"""Per-operator FLOPs and bytes of one forward pass, per GPU, as pure vectorized functions.

A forward pass processes `q` new tokens for each of `b` sequences that already hold `c`
tokens in their KV cache (prefill: q = prompt, c = 0; decode: q = 1, c = context;
speculative verification: q = gamma + 1). Arrays broadcast, so a sweep is one call.

Formulas (per layer, tensor-parallel degree t, weights split evenly, LLM-Viewer style
accounting; Yuan et al., arXiv:2402.16363, and DESIGN.md):
- linear d_in x d_out:  FLOPs 2*b*q*d_in*d_out/t; bytes: weights d_in*d_out*w_bytes/t
  + activations in/out.
- attention (causal):   FLOPs 4*b*q*(c_att + q/2)*h*hd/t  (QK^T and PV, 2 FLOPs per MAC);
  bytes: KV read 2*b*(c_att+q)*h_kv'*hd*kv_bytes, KV write 2*b*q*h_kv'*hd*kv_bytes, Q and
  O activations; h_kv' = ceil(h_kv/t) heads per GPU (KV heads are replicated when t > h_kv);
  c_att = min(kv_budget, c) for a draft with a compressed KV cache, and min(window, c_att)
  in a sliding-window (or chunked) layer, which attends to at most `window` keys.
  Layers of different kinds (ModelSpec.layer_groups) are summed with their counts.
- MLA (DeepSeek-V3): latent KV cache, absorbed decode vs decompressed prefill
  (mla_attention_ops).
- MoE: FLOPs of the top-k experts; bytes of the distinct experts the batch touches,
  E*(1-(1-k/E)^(b*q)) in expectation under uniform routing (all of them at large batch);
  shared experts and the dense layers of a MoE stack as dense MLPs.
- all-reduce (ring): 2 per layer of b*q*d*act_bytes; each GPU sends and receives
  2*(t-1)/t of it (Patarasuk & Yuan 2009; Megatron-LM, Shoeybi et al. 2019).
- lm_head: logits only for the tokens that are sampled (last prompt token in prefill).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from perfmodel.core.arrays import zeros_like
from perfmodel.specs.models import ModelSpec

MATMUL, ATTENTION, ELEMENTWISE, COMM = "matmul", "attention", "elementwise", "comm"


class OpCost(NamedTuple):
    """Cost of one operator over the whole forward pass, per GPU (already x num_layers).
    A NamedTuple: immutable and typed like a frozen dataclass, built several times faster
    (a search builds thousands)."""

    name: str
    kind: str  # matmul | attention | elementwise | comm
    flops: np.ndarray
    weight_bytes: np.ndarray
    act_bytes: np.ndarray
    kv_read_bytes: np.ndarray
    kv_write_bytes: np.ndarray
    comm_bytes: np.ndarray  # bytes each GPU sends (ring all-reduce)
    comm_calls: np.ndarray  # number of collective calls (for latency)
    rows: np.ndarray | float = np.inf  # GEMM M dimension (tokens); inf for non-GEMMs

    @property
    def mem_bytes(self) -> np.ndarray:
        return self.weight_bytes + self.act_bytes + self.kv_read_bytes + self.kv_write_bytes


class PassShape(NamedTuple):
    """Shape of one forward pass; every field broadcasts."""

    batch: np.ndarray
    new_tokens: np.ndarray  # q per sequence
    cached: np.ndarray  # c per sequence (tokens already in the KV cache)
    logits_per_seq: np.ndarray  # tokens per sequence that go through lm_head
    tp: np.ndarray
    kv_budget: np.ndarray  # cap on the cached tokens attention reads (inf = full)
    ep: np.ndarray  # expert-parallel degree (1: experts TP-split; see mlp_ops)


_NUMBERS = (int, float, np.integer, np.floating)  # scalars np.float64() converts as asarray


def make_shape(
    batch, new_tokens, cached=0, logits_per_seq=1, tp=1, kv_budget=np.inf, ep=1
) -> PassShape:
    """`batch`: the sequences of one attention group (tp GPUs); with ep > 1 the MoE layers
    see the tokens of all ep/tp attention groups of the expert-parallel group.

    A pass of one shape (every input 0-d) holds numpy float64 scalars rather than 0-d
    arrays: the same IEEE arithmetic (+ - * / of float64, ufuncs run the same loops), about
    ten times cheaper per operation in Python (a search prices hundreds of such passes)."""
    inputs = (batch, new_tokens, cached, logits_per_seq, tp, kv_budget, ep)
    if all(isinstance(x, _NUMBERS) for x in inputs):  # as below, without the 0-d arrays
        return PassShape(*map(np.float64, inputs))
    values = [np.asarray(x, dtype=float) for x in inputs]
    if all(v.ndim == 0 for v in values):
        return PassShape(*(v[()] for v in values))
    return PassShape(*np.broadcast_arrays(*values))


def _zero(shape: PassShape) -> np.ndarray:
    """Zeros of the pass's shape (a float64 scalar zero for a pass of one shape)."""
    return zeros_like(shape.batch)


def _linear(
    name, d_in, d_out, shape: PassShape, w_bytes, act_bytes, layers, row_parallel=False
) -> OpCost:
    """A TP-split linear layer. Column-parallel (Megatron): full input, 1/t of the output;
    row-parallel (o_proj, down_proj): 1/t of the input, a partial full-width output."""
    tokens = shape.batch * shape.new_tokens
    t = shape.tp
    z = _zero(shape)
    io = (d_in / t + d_out) if row_parallel else (d_in + d_out / t)
    return OpCost(
        name=name,
        kind=MATMUL,
        flops=layers * 2.0 * tokens * d_in * d_out / t,
        weight_bytes=layers * (d_in * d_out * w_bytes / t) + z,
        act_bytes=layers * tokens * io * act_bytes,
        kv_read_bytes=z,
        kv_write_bytes=z,
        comm_bytes=z,
        comm_calls=z,
        rows=tokens,
    )


def kv_heads_per_gpu(model: ModelSpec, tp) -> np.ndarray:
    """KV heads stored on each GPU: h_kv/t, at least 1 (replicated when t > h_kv)."""
    return np.ceil(model.num_kv_heads / np.asarray(tp, dtype=float))


def kv_elems_per_token_layer_per_gpu(model: ModelSpec, tp) -> np.ndarray:
    """KV-cache elements per token and layer on one GPU: 2*ceil(h_kv/t)*head_dim, or the
    whole MLA latent (kv_lora_rank + qk_rope_head_dim), which every TP rank holds (vLLM)."""
    if model.is_mla:
        return np.asarray(float(model.mla_latent_dim)) + 0.0 * np.asarray(tp, dtype=float)
    return 2.0 * kv_heads_per_gpu(model, tp) * model.head_dim


def _keys_attended(cached, q, window) -> np.ndarray:
    """Query-key pairs per sequence of q new causal tokens after `cached` ones, each token
    attending to at most `window` keys (itself included; window 0 = no limit):
    sum_{i=1..q} min(cached + i, window) ~ n0*(c + n0/2) + (q - n0)*window, n0 = tokens
    before the window fills (continuous form; window 0 gives q*(c + q/2))."""
    if not window:
        return q * (cached + q / 2.0)
    n0 = np.clip(window - cached, 0.0, q)
    return n0 * (cached + n0 / 2.0) + (q - n0) * window


MLA_ABSORBED_MAX_TOKENS = 16  # new tokens per sequence up to which MLA runs absorbed


def attention_op(model: ModelSpec, shape: PassShape, kv_bytes: float, act_bytes: float) -> OpCost:
    """Causal self-attention core (after QKV projection, before O projection), summed over
    the layer groups: a sliding (or chunked) layer holds and reads at most `window` cached
    tokens. MLA: see mla_attention_ops."""
    if model.is_mla:
        return mla_attention_ops(model, shape, kv_bytes, act_bytes)[0]
    b, q, t = shape.batch, shape.new_tokens, shape.tp
    c_att = np.minimum(shape.cached, shape.kv_budget)
    hd = model.head_dim
    heads = model.num_heads / t
    kv_heads = kv_heads_per_gpu(model, t)
    flops = kv_read = z = _zero(shape)
    for g in model.layer_groups():
        c = np.minimum(c_att, g.window) if g.window else c_att
        flops = flops + g.count * 4.0 * b * _keys_attended(c, q, g.window) * heads * hd
        kv_read = kv_read + g.count * 2.0 * b * (c + q) * kv_heads * hd * kv_bytes
    L = model.num_layers
    return OpCost(
        name="attention",
        kind=ATTENTION,
        flops=flops,
        weight_bytes=z,
        act_bytes=L * 2.0 * b * q * heads * hd * act_bytes,
        kv_read_bytes=kv_read,
        kv_write_bytes=L * 2.0 * b * q * kv_heads * hd * kv_bytes,
        comm_bytes=z,
        comm_calls=z,
    )


def mla_attention_ops(
    model: ModelSpec, shape: PassShape, kv_bytes: float, act_bytes: float, w_bytes: float = 2.0
) -> tuple[OpCost, OpCost]:
    """Multi-head latent attention (DeepSeek-V2/V3), per GPU (h/t heads, the latent cache of
    D = kv_lora_rank + r (r = qk_rope_head_dim) elements per token held whole on every rank).

    Decode and verification (q <= MLA_ABSORBED_MAX_TOKENS), absorbed form: W_UK folds into
    the query and W_UV into the output (2*h/t*kv_lora*(nope + v) FLOPs per token through the
    kv_b weights, op 'mla_kv_up'); per query-key pair QK^T over D and PV over kv_lora:
    2*(D + kv_lora) FLOPs per head; KV read (c + q) * D * kv_bytes per layer.
    Prefill, decompressed form: kv_b expands the latent of the c + q tokens into per-head
    keys and values (2*b*(c+q)*kv_lora*h/t*(nope + v) FLOPs), then standard attention with
    head dims nope + r (QK^T) and v (PV): 2*(nope + r + v) FLOPs per pair and head.
    Both read the kv_b weights kv_lora*h/t*(nope + v) once per layer (DeepSeek-V2 sec. 2.1.2,
    arXiv:2405.04434; vLLM's MLA backend switches between them the same way)."""
    b, q, t = shape.batch, shape.new_tokens, shape.tp
    c = np.minimum(shape.cached, shape.kv_budget)
    L, heads = model.num_layers, model.num_heads / t
    lora, rope = model.kv_lora_rank, model.qk_rope_head_dim
    nope, v = model.qk_nope_head_dim, model.v_head_dim
    latent = lora + rope
    pairs = b * _keys_attended(c, q, 0)
    absorbed = q <= MLA_ABSORBED_MAX_TOKENS
    per_pair = np.where(absorbed, 2.0 * (latent + lora), 2.0 * (nope + rope + v))
    up_tokens = np.where(absorbed, b * q, b * (c + q))
    z = _zero(shape)
    attention = OpCost(
        name="attention",
        kind=ATTENTION,
        flops=L * pairs * heads * per_pair,
        weight_bytes=z,
        act_bytes=L * b * q * heads * np.where(absorbed, 2.0 * lora, nope + rope + v) * act_bytes,
        kv_read_bytes=L * b * (c + q) * latent * kv_bytes,
        kv_write_bytes=L * b * q * latent * kv_bytes,
        comm_bytes=z,
        comm_calls=z,
    )
    up = OpCost(
        name="mla_kv_up",
        kind=MATMUL,
        flops=L * 2.0 * up_tokens * lora * heads * (nope + v),
        weight_bytes=L * lora * heads * (nope + v) * w_bytes + z,
        act_bytes=L * up_tokens * (lora + heads * (nope + v)) * act_bytes,
        kv_read_bytes=z,
        kv_write_bytes=z,
        comm_bytes=z,
        comm_calls=z,
        rows=up_tokens,
    )
    return attention, up


def qkv_op(model: ModelSpec, shape: PassShape, w_bytes: float, act_bytes: float) -> OpCost:
    """Q, K, V projections. MLA: q_a (d x q_lora) and kv_a (d x (kv_lora + rope)) are
    replicated on every TP rank (vLLM ReplicatedLinear), q_b (q_lora x h*(nope+rope)) is
    column-parallel; without q_lora, Wq (d x h*(nope+rope)) is column-parallel."""
    d, L = model.hidden_size, model.num_layers
    if not model.is_mla:
        return _linear("qkv_proj", d, model.q_dim + 2 * model.kv_dim, shape, w_bytes, act_bytes, L)
    tokens, t = shape.batch * shape.new_tokens, shape.tp
    replicated = d * (model.q_lora_rank + model.mla_latent_dim)
    split = (model.q_lora_rank or d) * model.q_dim
    params = replicated + split / t
    z = _zero(shape)
    return OpCost(
        name="qkv_proj",
        kind=MATMUL,
        flops=L * 2.0 * tokens * params,
        weight_bytes=L * params * w_bytes + z,
        act_bytes=L
        * tokens
        * (d + model.q_lora_rank + model.mla_latent_dim + model.q_dim / t)
        * act_bytes,
        kv_read_bytes=z,
        kv_write_bytes=z,
        comm_bytes=z,
        comm_calls=z,
        rows=tokens,
    )


def experts_touched(num_experts: int, top_k: int, tokens) -> np.ndarray:
    """Expected distinct experts a step touches when `tokens` tokens each pick top_k of E
    experts, routing uniform and independent (the default assumption; real routers are
    skewed, which touches fewer): E * (1 - (1 - k/E)^tokens). From k (one token) toward E."""
    return num_experts * (1.0 - (1.0 - top_k / num_experts) ** np.asarray(tokens, float))


def _sum_ops(name: str, ops: list[OpCost]) -> OpCost:
    """One operator summing the costs of several (e.g. the dense MLPs of the dense layers
    and the shared experts of the MoE layers); rows: the largest GEMM M among them."""
    o = ops[0]
    if len(ops) == 1 and _same_shape(o.rows, o.flops):  # the sum (0 + x) and max of one
        return OpCost(
            name,
            o.kind,
            0 + o.flops,
            0 + o.weight_bytes,
            0 + o.act_bytes,
            0 + o.kv_read_bytes,
            0 + o.kv_write_bytes,
            0 + o.comm_bytes,
            0 + o.comm_calls,
            o.rows,
        )
    shape = np.shape(o.flops)
    total = {f: sum(getattr(o, f) for o in ops) for f in _SUMMED}
    rows = np.maximum.reduce([np.broadcast_to(o.rows, shape) for o in ops])
    return OpCost(name=name, kind=ops[0].kind, rows=rows, **total)


def _same_shape(a, b) -> bool:
    if not isinstance(a, np.ndarray) and not isinstance(b, np.ndarray):
        return True  # two scalars (shape ())
    return np.shape(a) == np.shape(b)


_SUMMED = (
    "flops",
    "weight_bytes",
    "act_bytes",
    "kv_read_bytes",
    "kv_write_bytes",
    "comm_bytes",
    "comm_calls",
)


def mlp_ops(model: ModelSpec, shape: PassShape, w_bytes: float, act_bytes: float) -> list[OpCost]:
    """Gated MLPs: dense layers (dense_ffn) and, in MoE layers, the router, the routed
    experts (FLOPs of the top-k, bytes of the experts touched, experts_touched) and the
    shared expert (a dense MLP, counted with the dense ones in mlp_gate_up / mlp_down).
    Expert parallelism (ep > 1, a multiple of tp; vLLM's DP attention + EP): attention runs
    in ep/tp groups of tp GPUs, each on its own sequences; the routed experts are spread
    whole over the ep GPUs (E/ep each), which see the tokens of every group: per GPU
    FLOPs 2*T*k*3*d*f/ep, weight bytes touched*P_expert/ep; dispatch and combine are two
    all-to-alls per MoE layer, each GPU sending its T/ep tokens' k hidden states, the share
    (ep-1)/ep to other GPUs (moe_all_to_all, over the GPU link; no all-reduce is removed).
    Without EP the experts are TP-split over the tp GPUs of the attention group.
    Weights of the routed experts at w_bytes; the rest at w_bytes too unless the checkpoint
    quantizes the experts only (gpt-oss: everything else in BF16)."""
    d = model.hidden_size
    dense_w = act_bytes if model.quantized_experts_only and model.is_moe else w_bytes
    n_dense, n_moe = model.dense_layers, model.moe_layers
    up, down = [], []
    for layers, ffn in ((n_dense, model.dense_ffn), (n_moe, model.shared_intermediate_size)):
        if layers and ffn:
            up.append(_linear("mlp_gate_up", d, 2 * ffn, shape, dense_w, act_bytes, layers))
            down.append(_linear("mlp_down", ffn, d, shape, dense_w, act_bytes, layers, True))
    out = [_sum_ops("mlp_gate_up", up), _sum_ops("mlp_down", down)] if up else []
    if not model.is_moe:
        return out
    E, k, f = model.num_experts, model.experts_per_token, model.expert_ffn
    t, ep = shape.tp, shape.ep
    expert_par = ep > 1
    # tokens of the expert group: ep/tp attention groups under EP, one TP group without
    tokens = shape.batch * shape.new_tokens * np.where(expert_par, ep / t, 1.0)
    gpus = np.where(expert_par, ep, t)  # GPUs the experts are spread over
    touched = experts_touched(E, k, tokens)
    z = _zero(shape)
    router = _linear("moe_router", d, E, shape, act_bytes, act_bytes, n_moe)
    io = np.where(expert_par, (2 * d + 3 * f) / ep, 2 * d + 3 * f / t)
    experts = OpCost(
        name="moe_experts",
        kind=MATMUL,
        flops=n_moe * 2.0 * tokens * k * 3 * d * f / gpus,
        weight_bytes=n_moe * touched * model.expert_params * w_bytes / gpus,
        act_bytes=n_moe * tokens * k * io * act_bytes,
        kv_read_bytes=z,
        kv_write_bytes=z,
        comm_bytes=z,
        comm_calls=z,
        rows=tokens * k / touched,
    )
    a2a = np.where(expert_par, 2.0 * n_moe, 0.0)  # dispatch + combine per MoE layer
    all_to_all = OpCost(
        name="moe_all_to_all",
        kind=COMM,
        flops=z,
        weight_bytes=z,
        act_bytes=z,
        kv_read_bytes=z,
        kv_write_bytes=z,
        comm_bytes=a2a * tokens / ep * k * d * act_bytes * (ep - 1) / ep,
        comm_calls=a2a + z,
    )
    return [*out, router, experts, *([all_to_all] if np.any(expert_par) else [])]


def elementwise_op(model: ModelSpec, shape: PassShape, act_bytes: float) -> OpCost:
    """RMSNorms with residual adds, RoPE, SiLU*up: memory traffic only, per layer.

    norms_per_layer fused add+RMSNorms (read x and residual, write both: 4d each; not
    TP-split; 2 in a Llama block, 4 in Gemma's), RoPE on q and k in place (read+write), SiLU-and-mul (read 2*ffn/t, write
    ffn/t, ffn = the active MLP width of the layer: dense, or top-k experts + shared); plus
    the embedding lookup and the final norm (4d per token).
    """
    d, L = model.hidden_size, model.num_layers
    t = shape.tp
    tokens = shape.batch * shape.new_tokens
    moe_ffn = model.experts_per_token * model.expert_ffn + model.shared_intermediate_size
    ffn = model.dense_layers * model.dense_ffn + model.moe_layers * moe_ffn
    kv = model.mla_latent_dim if model.is_mla else model.kv_dim
    norms = model.norms_per_layer * 4 * d
    per_token_layer = (norms + 2 * (model.q_dim + kv) / t) * act_bytes
    z = _zero(shape)
    return OpCost(
        name="norm_rope_act",
        kind=ELEMENTWISE,
        flops=z,
        weight_bytes=z,
        act_bytes=tokens * (L * per_token_layer + 3 * ffn / t * act_bytes + 4 * d * act_bytes),
        kv_read_bytes=z,
        kv_write_bytes=z,
        comm_bytes=z,
        comm_calls=z,
    )


def allreduce_op(model: ModelSpec, shape: PassShape, act_bytes: float) -> OpCost:
    """Two ring all-reduces per layer (after attention and after the MLP) when t > 1."""
    t = shape.tp
    tokens = shape.batch * shape.new_tokens
    L, d = model.num_layers, model.hidden_size
    active = (t > 1).astype(float)
    z = _zero(shape)
    return OpCost(
        name="allreduce",
        kind=COMM,
        flops=z,
        weight_bytes=z,
        act_bytes=z,
        kv_read_bytes=z,
        kv_write_bytes=z,
        comm_bytes=active * 2 * L * 2.0 * (t - 1) / t * tokens * d * act_bytes,
        comm_calls=active * 2 * L + z,
    )


def lm_head_op(model: ModelSpec, shape: PassShape, act_bytes: float) -> OpCost:
    """Logits for the sampled tokens; the head stays in BF16 even in FP8 checkpoints."""
    d, V = model.hidden_size, model.vocab_size
    logit_tokens = shape.batch * shape.logits_per_seq
    t = shape.tp
    z = _zero(shape)
    return OpCost(
        name="lm_head",
        kind=MATMUL,
        flops=2.0 * logit_tokens * d * V / t,
        weight_bytes=d * V * act_bytes / t + z,
        act_bytes=logit_tokens * (d + V / t) * act_bytes,
        kv_read_bytes=z,
        kv_write_bytes=z,
        comm_bytes=z,
        comm_calls=z,
        rows=logit_tokens,
    )


def forward_ops(
    model: ModelSpec, shape: PassShape, w_bytes: float, kv_bytes: float, act_bytes: float = 2.0
) -> list[OpCost]:
    """All operators of one forward pass, in execution order, each summed over layers."""
    L = model.num_layers
    d = model.hidden_size
    attn_w = act_bytes if model.quantized_experts_only and model.is_moe else w_bytes
    if model.is_mla:
        attention = list(mla_attention_ops(model, shape, kv_bytes, act_bytes, attn_w))
    else:
        attention = [attention_op(model, shape, kv_bytes, act_bytes)]
    return [
        qkv_op(model, shape, attn_w, act_bytes),
        *attention,
        _linear("o_proj", model.o_dim, d, shape, attn_w, act_bytes, L, row_parallel=True),
        *mlp_ops(model, shape, w_bytes, act_bytes),
        elementwise_op(model, shape, act_bytes),
        allreduce_op(model, shape, act_bytes),
        lm_head_op(model, shape, act_bytes),
    ]
