"""GPU memory per device: weights, KV cache, activation peak; fits / max batch / OOM.

- weights/t: matmul weights at the weight dtype; embedding and lm_head stay BF16 (as in
  FP8 checkpoints such as Llama-3.1-405B-Instruct-FP8); norms negligible. A checkpoint that
  quantizes its routed experts only (gpt-oss MXFP4) keeps everything else in BF16.
- KV cache: 2 * ceil(h_kv/t) * hd * kv_bytes per token and layer per GPU (MLA: the whole
  latent, kv_lora_rank + qk_rope_head_dim, on every GPU), times b * the tokens each layer
  holds: prompt+output, at most `window` in a sliding-window layer.
- activations: peak of one prefill step, the scheduler taking at most
  max(prompt_len, PREFILL_STEP_TOKENS) tokens per step (vLLM's max_num_batched_tokens): hidden state and residual (2*d per token),
  the MLP intermediate (gate/up output 2*ffn/t plus the activated ffn/t per token) and the
  fp32 logits of the sampled tokens.
- expert parallelism (ep > 1): the routed experts are spread over the ep GPUs (1/ep of them
  per GPU), everything else over the tp GPUs of an attention group; each of the ep/tp
  attention groups holds the KV cache and activations of its 1/(ep/tp) of the sequences.
- pipeline parallelism (pp > 1): each stage holds its layers' weights and KV cache (plus the
  embedding on the first stage, lm_head and the sampled logits on the last; pipeline.py);
  the GPU of the stage with the largest total at the given batch is reported, and max_batch
  is the smallest over the stages. pp = 1 is one stage holding everything (formulas above).
- extra bytes (a speculator or draft model beside the target: extra_bytes, and per sequence
  extra_bytes_per_seq) sit on the first stage's GPUs only, where planners.speculation
  places the helper; with pp = 1 on every GPU.
- usable memory = HBM capacity * profile.memory_utilization (vLLM's gpu_memory_utilization,
  0.9 by default) minus nothing else: CUDA context and graphs live in the remaining 10%.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from perfmodel.core import pipeline
from perfmodel.core.deployment import Deployment
from perfmodel.core.identity_memo import by_identity
from perfmodel.core.ops import kv_elems_per_token_layer_per_gpu
from perfmodel.specs.dtypes import ACT_BYTES

GB = 1e9
PREFILL_STEP_TOKENS = 32768


def prefill_step_tokens(batch, prompt_len) -> np.ndarray:
    b, p = np.asarray(batch, float), np.asarray(prompt_len, float)
    return np.minimum(b * p, np.maximum(p, PREFILL_STEP_TOKENS))


def weight_bytes_per_gpu(dep: Deployment) -> float:
    """Weights on one GPU (pp > 1: on a GPU of the stage holding the most)."""
    if dep.pp > 1:
        return max(_stage_weights(dep))
    m = dep.model
    quantized = m.quantizable_params
    dense = (quantized * dep.w_bytes + (m.param_count - quantized) * ACT_BYTES) / dep.tp
    return dense + _expert_parallel_correction(dep, m.num_layers)


def _expert_parallel_correction(dep: Deployment, layers: float) -> float:
    """Routed experts of `layers` layers spread over ep GPUs instead of tp (0 without EP)."""
    if dep.ep == 1:
        return 0.0
    m = dep.model
    routed = m.moe_layers * m.num_experts * m.expert_params * layers / m.num_layers
    return routed * dep.w_bytes * (1.0 / dep.ep - 1.0 / dep.tp)


def stage_weight_bytes(dep: Deployment, stage: pipeline.Stage) -> float:
    """Weights on one GPU of a pipeline stage: its layers (+ final norm on the last stage) at
    the weight dtype; embedding (first) and lm_head (last; a copy of the embedding when tied)
    in BF16."""
    m = dep.model
    final_norm = 0 if m.quantized_experts_only else m.hidden_size
    layer_quantized = (m.quantizable_params - final_norm) / m.num_layers
    quantized = stage.layers * layer_quantized + (final_norm if stage.last else 0)
    bf16_params = stage.layers * (m.layer_params - layer_quantized)
    bf16_params += (m.embedding_params if stage.first else 0) + (
        m.lm_head_params if stage.last else 0
    )
    dense = (quantized * dep.w_bytes + bf16_params * ACT_BYTES) / dep.tp
    return dense + _expert_parallel_correction(dep, stage.layers)


@by_identity
def _stage_weights(dep: Deployment) -> tuple[float, ...]:
    """stage_weight_bytes of each distinct pipeline stage (pipeline.distinct_stages order),
    once per deployment object: a search checks the weights alone, then the whole total."""
    return tuple(
        stage_weight_bytes(dep, s) for s in pipeline.distinct_stages(dep.model.num_layers, dep.pp)
    )


def _stage_layers(dep: Deployment, layers: int | None) -> int:
    m = dep.model
    if layers is None:
        layers = max(pipeline.stage_layers(m.num_layers, dep.pp)) if dep.pp > 1 else m.num_layers
    return layers


def kv_bytes_per_token_per_gpu(dep: Deployment, layers: int | None = None) -> float:
    """KV cache per token on one GPU while every layer holds it (no window full yet):
    `layers` layers (default: the largest stage's)."""
    per_layer = float(kv_elems_per_token_layer_per_gpu(dep.model, dep.tp)) * dep.kv_bytes
    return _stage_layers(dep, layers) * per_layer


def kv_bytes_per_seq_per_gpu(dep: Deployment, tokens, layers: int | None = None) -> np.ndarray:
    """KV cache of one sequence of `tokens` tokens on one GPU: per token and layer bytes
    times the tokens each layer holds (at most `window` in a sliding layer), for `layers`
    layers (default: the largest stage's) in the stack's proportions."""
    m = dep.model
    per_layer = float(kv_elems_per_token_layer_per_gpu(m, dep.tp)) * dep.kv_bytes
    return per_layer * m.kv_layer_tokens(tokens) * (_stage_layers(dep, layers) / m.num_layers)


def kv_cache_bytes_per_gpu(dep: Deployment, batch, tokens) -> np.ndarray:
    return kv_bytes_per_seq_per_gpu(dep, tokens) * np.asarray(batch, float)


def activation_bytes_per_token(dep: Deployment) -> float:
    """Hidden state + residual (2d) and the MLP intermediate (3*ffn/t) per prefill token;
    ffn: the widest active MLP of a layer (dense, or top-k experts + shared expert)."""
    m = dep.model
    moe_ffn = m.experts_per_token * m.expert_ffn + m.shared_intermediate_size if m.is_moe else 0
    ffn = max(moe_ffn, m.dense_ffn if m.dense_layers else 0)
    return (2 * m.hidden_size + 3 * ffn / dep.tp) * ACT_BYTES


def logits_bytes_per_seq(dep: Deployment) -> float:
    """fp32 logits of one sampled token."""
    return dep.model.vocab_size * 4.0


def activation_bytes_per_gpu(dep: Deployment, batch, prompt_len) -> np.ndarray:
    tokens = prefill_step_tokens(batch, prompt_len)
    return tokens * activation_bytes_per_token(dep) + np.asarray(
        batch, float
    ) * logits_bytes_per_seq(dep)


class MemoryReport(NamedTuple):
    """Bytes per GPU in GB (arrays of the inputs' shape), the usable capacity, and whether
    the total fits (missing_gb > 0 when it does not). A NamedTuple: built and read, never
    compared (its arrays could not be)."""

    weights_gb: np.ndarray
    kv_cache_gb: np.ndarray
    activation_gb: np.ndarray
    total_gb: np.ndarray
    capacity_gb: float
    fits: np.ndarray
    missing_gb: np.ndarray  # > 0 when it does not fit

    def as_dict(self, index=None) -> dict:
        def pick(x):
            x = np.asarray(x)
            return (
                float(x.flat[index] if index is not None else x.flat[0]) if x.size else float("nan")
            )

        return {
            "weights_gb": pick(self.weights_gb),
            "kv_cache_gb": pick(self.kv_cache_gb),
            "activation_gb": pick(self.activation_gb),
            "total_gb": pick(self.total_gb),
            "capacity_gb": float(self.capacity_gb),
            "fits": bool(pick(self.fits)),
            "missing_gb": max(0.0, pick(self.missing_gb)),
        }


def usable_bytes(dep: Deployment) -> float:
    return dep.gpu.hbm_bytes * dep.profile.memory_utilization


def memory_report(dep: Deployment, batch, prompt_len, output_len, extra_bytes=0.0) -> MemoryReport:
    """Memory per GPU for b sequences of prompt+output tokens (plus extra, e.g. a draft).

    With pp > 1, the GPU of the stage with the largest total (per element of the arrays),
    the extra bytes counted on the first stage only (module docstring); weights_gb then
    includes the helper's bytes when the first stage is the largest.
    """
    b, p, o, extra = _broadcast(batch, prompt_len, output_len, extra_bytes)
    b = b / dep.attn_dp  # the sequences of one attention group (expert parallelism)
    if dep.pp > 1:
        weights, kv, act = _largest_stage(_stage_parts(dep, b, p, o, extra))
        weights = weights + np.zeros_like(b)
        total = weights + kv + act
    else:
        weights = weight_bytes_per_gpu(dep) + np.zeros_like(b)
        kv = kv_cache_bytes_per_gpu(dep, b, p + o)
        act = activation_bytes_per_gpu(dep, b, p)
        total = weights + kv + act + extra
    capacity = usable_bytes(dep)
    return MemoryReport(
        weights_gb=weights / GB,
        kv_cache_gb=kv / GB,
        activation_gb=act / GB,
        total_gb=total / GB,
        capacity_gb=capacity / GB,
        fits=total <= capacity,
        missing_gb=(total - capacity) / GB,
    )


def fits_in_memory(dep: Deployment, batch, prompt_len, output_len, extra_bytes=0.0):
    """memory_report(...).fits without the rest of the report (a search tries many
    deployments): the same totals in the same order; with pp > 1 every stage's total is
    compared, which fits exactly when the largest stage's does."""
    total = total_bytes_per_gpu(dep, batch, prompt_len, output_len, extra_bytes)
    return total <= usable_bytes(dep)


def total_bytes_per_gpu(dep: Deployment, batch, prompt_len, output_len, extra_bytes=0.0):
    """memory_report(...).total_gb in bytes, alone: the largest stage's with pp > 1."""
    b, p, o, extra = _broadcast(batch, prompt_len, output_len, extra_bytes)
    b = b / dep.attn_dp
    if dep.pp > 1:
        totals = [w + kv + act for w, kv, act in _stage_parts(dep, b, p, o, extra)]
        return np.maximum.reduce(totals) if len(totals) > 1 else totals[0]
    kv = kv_cache_bytes_per_gpu(dep, b, p + o)
    return weight_bytes_per_gpu(dep) + kv + activation_bytes_per_gpu(dep, b, p) + extra


def first_fitting(dep: Deployment, batches, prompt_len, output_len) -> int | None:
    """The index of the first of `batches` (sequences per replica, non-increasing) that
    fits_in_memory admits; None when none does. The total never shrinks as the batch
    grows (every term is a non-decreasing function of it, rounding included), so a binary
    search finds it, each probe one total on float64 scalars (_scalar_total: the
    operations of total_bytes_per_gpu in the same order, the same bits): a search tries
    hundreds of layouts, each over a few replica counts."""
    total, usable = _scalar_total(dep, prompt_len, output_len), usable_bytes(dep)
    lo, hi = 0, len(batches)
    while lo < hi:
        mid = (lo + hi) // 2
        if total(batches[mid]) <= usable:
            hi = mid
        else:
            lo = mid + 1
    return lo if lo < len(batches) else None


@by_identity(owners=1)
def _layer_tokens(model, tokens: float):
    """model.kv_layer_tokens of one token count (as a float64), kept per model object and
    count: every layout of a search asks for the same one."""
    return model.kv_layer_tokens(np.float64(tokens))


def _scalar_total(dep: Deployment, prompt_len, output_len):
    """b -> total_bytes_per_gpu(dep, b, prompt_len, output_len) for one sequence count b
    (no extra bytes), what depends on the deployment and lengths alone worked out once;
    Python's min/max for np.minimum/np.maximum: between these positive byte and token
    counts they choose the same number (ties are equal values, no zero's sign)."""
    p, o = np.asarray(prompt_len, float), np.asarray(output_len, float)
    pf, attn_dp = float(p), dep.attn_dp
    step = max(pf, PREFILL_STEP_TOKENS)  # prefill_step_tokens: min(b p, max(p, step))
    per_token, logits = activation_bytes_per_token(dep), logits_bytes_per_seq(dep)
    m = dep.model
    if dep.pp == 1:
        weights, per_seq = weight_bytes_per_gpu(dep), kv_bytes_per_seq_per_gpu(dep, p + o)

        def one(b):
            b = b / attn_dp
            act = min(b * pf, step) * per_token + b * logits
            return weights + per_seq * b + act + 0.0

        return one
    kv_all = float(kv_elems_per_token_layer_per_gpu(m, dep.tp)) * dep.kv_bytes
    kv_all = kv_all * _layer_tokens(m, float(p + o))
    stages = [
        (w + 0.0, kv_all * (s.layers / m.num_layers), logits if s.last else None)
        for s, w in zip(
            pipeline.distinct_stages(m.num_layers, dep.pp), _stage_weights(dep), strict=True
        )
    ]

    def largest(b):
        b = b / attn_dp
        act_all = min(b * pf, step) * per_token
        return max(
            w + kv * b + (act_all + (b * last if last is not None else 0.0))
            for w, kv, last in stages
        )

    return largest


def _broadcast(batch, prompt_len, output_len, extra_bytes) -> tuple[np.ndarray, ...]:
    """The four inputs as float arrays of one shape; scalar lengths and extra bytes stay
    0-d (every result has the batch in it, so it takes the batch's shape either way, with
    the same values: a search's call over many batches skips the broadcast)."""
    arrays = tuple(np.asarray(x, float) for x in (batch, prompt_len, output_len, extra_bytes))
    if arrays[1].ndim or arrays[2].ndim or arrays[3].ndim:
        return tuple(np.broadcast_arrays(*arrays))
    return arrays


def _stage_parts(dep: Deployment, b, p, o, first_extra=0.0) -> list[tuple]:
    """(weights, KV, activations) per GPU of each distinct pipeline stage, for b sequences
    per attention group; first_extra (a helper model's bytes) is counted with the first
    stage's weights. Weights stay scalars where no array enters them (the callers
    broadcast); KV and activations have the batch's shape."""
    m = dep.model
    act_all = prefill_step_tokens(b, p) * activation_bytes_per_token(dep)
    kv_all = float(kv_elems_per_token_layer_per_gpu(m, dep.tp)) * dep.kv_bytes
    kv_all = kv_all * m.kv_layer_tokens(p + o)  # the whole stack's, as kv_bytes_per_seq_per_gpu
    parts = []
    stages = pipeline.distinct_stages(m.num_layers, dep.pp)
    for s, weights in zip(stages, _stage_weights(dep), strict=True):
        w = weights + (first_extra if s.first else 0.0)
        kv = kv_all * (s.layers / m.num_layers) * b
        act = act_all + (b * logits_bytes_per_seq(dep) if s.last else 0.0)
        parts.append((w, kv, act))
    return parts


def _largest_stage(parts: list[tuple]) -> tuple:
    """The (weights, KV, activations) of the stage whose sum is largest, elementwise (the
    first such stage on a tie)."""
    if len(parts) == 1:
        return parts[0]
    best = np.argmax([w + kv + act for w, kv, act in parts], axis=0)
    return tuple(np.choose(best, [part[i] for part in parts])[()] for i in range(3))


def max_batch(
    dep: Deployment, prompt_len, output_len, extra_bytes_per_seq=0.0, extra_bytes=0.0
) -> np.ndarray:
    """Largest batch per replica whose weights + KV + activations fit (0 when even the
    weights do not); with pp > 1 the smallest over the stages, the extra bytes on the first
    stage only; with ep > 1, ep/tp attention groups' worth."""
    p, o = np.broadcast_arrays(np.asarray(prompt_len, float), np.asarray(output_len, float))
    if dep.pp > 1:
        activations = np.maximum(p, PREFILL_STEP_TOKENS) * activation_bytes_per_token(dep)
        out = []
        for s in pipeline.distinct_stages(dep.model.num_layers, dep.pp):
            free = usable_bytes(dep) - stage_weight_bytes(dep, s) - (extra_bytes if s.first else 0)
            per_seq = (
                kv_bytes_per_seq_per_gpu(dep, p + o, s.layers)
                + (logits_bytes_per_seq(dep) if s.last else 0.0)
                + (extra_bytes_per_seq if s.first else 0.0)
            )
            out.append(np.maximum(np.floor((free - activations) / per_seq), 0.0))
        return np.minimum.reduce(out) * dep.attn_dp
    free = usable_bytes(dep) - weight_bytes_per_gpu(dep) - extra_bytes
    # a large batch fills the prefill step: max(prompt, PREFILL_STEP_TOKENS) tokens
    activations = np.maximum(p, PREFILL_STEP_TOKENS) * activation_bytes_per_token(dep)
    per_seq = kv_bytes_per_seq_per_gpu(dep, p + o) + logits_bytes_per_seq(dep) + extra_bytes_per_seq
    # per attention group; a replica holds ep/tp of them under expert parallelism
    return np.maximum(np.floor((free - activations) / per_seq), 0.0) * dep.attn_dp
