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
  c_att = min(kv_budget, c) for a draft with a compressed KV cache.
- MoE: FLOPs of the top-k experts; bytes of the distinct experts the batch touches,
  E*(1-(1-k/E)^(b*q)) in expectation (all of them at large batch).
- all-reduce (ring): 2 per layer of b*q*d*act_bytes; each GPU sends and receives
  2*(t-1)/t of it (Patarasuk & Yuan 2009; Megatron-LM, Shoeybi et al. 2019).
- lm_head: logits only for the tokens that are sampled (last prompt token in prefill).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perfmodel.specs.models import ModelSpec

MATMUL, ATTENTION, ELEMENTWISE, COMM = "matmul", "attention", "elementwise", "comm"


@dataclass(frozen=True)
class OpCost:
    """Cost of one operator over the whole forward pass, per GPU (already x num_layers)."""

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


@dataclass(frozen=True)
class PassShape:
    """Shape of one forward pass; every field broadcasts."""

    batch: np.ndarray
    new_tokens: np.ndarray  # q per sequence
    cached: np.ndarray  # c per sequence (tokens already in the KV cache)
    logits_per_seq: np.ndarray  # tokens per sequence that go through lm_head
    tp: np.ndarray
    kv_budget: np.ndarray  # cap on the cached tokens attention reads (inf = full)


def make_shape(batch, new_tokens, cached=0, logits_per_seq=1, tp=1, kv_budget=np.inf) -> PassShape:
    arrays = np.broadcast_arrays(
        *(
            np.asarray(x, dtype=float)
            for x in (batch, new_tokens, cached, logits_per_seq, tp, kv_budget)
        )
    )
    return PassShape(*arrays)


def _zero(shape: PassShape) -> np.ndarray:
    return np.zeros_like(shape.batch)


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


def attention_op(model: ModelSpec, shape: PassShape, kv_bytes: float, act_bytes: float) -> OpCost:
    """Causal self-attention core (after QKV projection, before O projection)."""
    b, q, t = shape.batch, shape.new_tokens, shape.tp
    c_att = np.minimum(shape.cached, shape.kv_budget)
    L, hd = model.num_layers, model.head_dim
    heads = model.num_heads / t
    kv_heads = kv_heads_per_gpu(model, t)
    z = _zero(shape)
    return OpCost(
        name="attention",
        kind=ATTENTION,
        flops=L * 4.0 * b * q * (c_att + q / 2.0) * heads * hd,
        weight_bytes=z,
        act_bytes=L * 2.0 * b * q * heads * hd * act_bytes,
        kv_read_bytes=L * 2.0 * b * (c_att + q) * kv_heads * hd * kv_bytes,
        kv_write_bytes=L * 2.0 * b * q * kv_heads * hd * kv_bytes,
        comm_bytes=z,
        comm_calls=z,
    )


def mlp_ops(model: ModelSpec, shape: PassShape, w_bytes: float, act_bytes: float) -> list[OpCost]:
    d, ffn, L = model.hidden_size, model.intermediate_size, model.num_layers
    if not model.is_moe:
        return [
            _linear("mlp_gate_up", d, 2 * ffn, shape, w_bytes, act_bytes, L),
            _linear("mlp_down", ffn, d, shape, w_bytes, act_bytes, L, row_parallel=True),
        ]
    E, k = model.num_experts, model.experts_per_token
    tokens = shape.batch * shape.new_tokens
    t = shape.tp
    touched = E * (1.0 - (1.0 - k / E) ** tokens)
    z = _zero(shape)
    router = _linear("moe_router", d, E, shape, act_bytes, act_bytes, L)
    experts = OpCost(
        name="moe_experts",
        kind=MATMUL,
        flops=L * 2.0 * tokens * k * 3 * d * ffn / t,
        weight_bytes=L * touched * 3 * d * ffn * w_bytes / t,
        act_bytes=L * tokens * k * (2 * d + 3 * ffn / t) * act_bytes,
        kv_read_bytes=z,
        kv_write_bytes=z,
        comm_bytes=z,
        comm_calls=z,
        rows=tokens * k / touched,
    )
    return [router, experts]


def elementwise_op(model: ModelSpec, shape: PassShape, act_bytes: float) -> OpCost:
    """RMSNorms with residual adds, RoPE, SiLU*up: memory traffic only, per layer.

    2 fused add+RMSNorm (read x and residual, write both: 4d each; not TP-split), RoPE on
    q and k in place (read+write), SiLU-and-mul (read 2*ffn/t, write ffn/t); plus the
    embedding lookup and the final norm (4d per token).
    """
    d, L = model.hidden_size, model.num_layers
    t = shape.tp
    tokens = shape.batch * shape.new_tokens
    ffn = model.intermediate_size * (model.experts_per_token if model.is_moe else 1)
    per_token_layer = (2 * 4 * d + 2 * (model.q_dim + model.kv_dim) / t + 3 * ffn / t) * act_bytes
    z = _zero(shape)
    return OpCost(
        name="norm_rope_act",
        kind=ELEMENTWISE,
        flops=z,
        weight_bytes=z,
        act_bytes=tokens * (L * per_token_layer + 4 * d * act_bytes),
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
    return [
        _linear("qkv_proj", d, model.q_dim + 2 * model.kv_dim, shape, w_bytes, act_bytes, L),
        attention_op(model, shape, kv_bytes, act_bytes),
        _linear("o_proj", model.q_dim, d, shape, w_bytes, act_bytes, L, row_parallel=True),
        *mlp_ops(model, shape, w_bytes, act_bytes),
        elementwise_op(model, shape, act_bytes),
        allreduce_op(model, shape, act_bytes),
        lm_head_op(model, shape, act_bytes),
    ]
