"""GPU memory per device: weights, KV cache, activation peak; fits / max batch / OOM.

- weights/t: matmul weights at the weight dtype; embedding and lm_head stay BF16 (as in
  FP8 checkpoints such as Llama-3.1-405B-Instruct-FP8); norms negligible.
- KV cache: 2 * L * ceil(h_kv/t) * hd * kv_bytes per token per GPU, times b*(prompt+output).
- activations: peak of one prefill step, the scheduler taking at most
  max(prompt_len, PREFILL_STEP_TOKENS) tokens per step (vLLM's max_num_batched_tokens): hidden state and residual (2*d per token),
  the MLP intermediate (gate/up output 2*ffn/t plus the activated ffn/t per token) and the
  fp32 logits of the sampled tokens.
- usable memory = HBM capacity * profile.memory_utilization (vLLM's gpu_memory_utilization,
  0.9 by default) minus nothing else: CUDA context and graphs live in the remaining 10%.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perfmodel.core.deployment import Deployment
from perfmodel.core.ops import kv_heads_per_gpu
from perfmodel.specs.dtypes import ACT_BYTES

GB = 1e9
PREFILL_STEP_TOKENS = 32768


def prefill_step_tokens(batch, prompt_len) -> np.ndarray:
    b, p = np.asarray(batch, float), np.asarray(prompt_len, float)
    return np.minimum(b * p, np.maximum(p, PREFILL_STEP_TOKENS))


def weight_bytes_per_gpu(dep: Deployment) -> float:
    m = dep.model
    bf16_params = m.embedding_params + (0 if m.tie_word_embeddings else m.lm_head_params)
    quantized = m.param_count - bf16_params
    return (quantized * dep.w_bytes + bf16_params * ACT_BYTES) / dep.tp


def kv_bytes_per_token_per_gpu(dep: Deployment) -> float:
    m = dep.model
    return 2.0 * m.num_layers * float(kv_heads_per_gpu(m, dep.tp)) * m.head_dim * dep.kv_bytes


def kv_cache_bytes_per_gpu(dep: Deployment, batch, tokens) -> np.ndarray:
    return kv_bytes_per_token_per_gpu(dep) * np.asarray(batch, float) * np.asarray(tokens, float)


def activation_bytes_per_token(dep: Deployment) -> float:
    """Hidden state + residual (2d) and the MLP intermediate (3*ffn/t) per prefill token."""
    m = dep.model
    ffn = m.intermediate_size * (m.experts_per_token if m.is_moe else 1)
    return (2 * m.hidden_size + 3 * ffn / dep.tp) * ACT_BYTES


def logits_bytes_per_seq(dep: Deployment) -> float:
    """fp32 logits of one sampled token."""
    return dep.model.vocab_size * 4.0


def activation_bytes_per_gpu(dep: Deployment, batch, prompt_len) -> np.ndarray:
    tokens = prefill_step_tokens(batch, prompt_len)
    return tokens * activation_bytes_per_token(dep) + np.asarray(
        batch, float
    ) * logits_bytes_per_seq(dep)


@dataclass(frozen=True)
class MemoryReport:
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
    """Memory per GPU for b sequences of prompt+output tokens (plus extra, e.g. a draft)."""
    b, p, o = np.broadcast_arrays(*(np.asarray(x, float) for x in (batch, prompt_len, output_len)))
    weights = weight_bytes_per_gpu(dep) + np.zeros_like(b)
    kv = kv_cache_bytes_per_gpu(dep, b, p + o)
    act = activation_bytes_per_gpu(dep, b, p)
    total = weights + kv + act + np.asarray(extra_bytes, float)
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


def max_batch(
    dep: Deployment, prompt_len, output_len, extra_bytes_per_seq=0.0, extra_bytes=0.0
) -> np.ndarray:
    """Largest batch whose weights + KV + activations fit (0 when even the weights do not)."""
    p, o = np.broadcast_arrays(np.asarray(prompt_len, float), np.asarray(output_len, float))
    free = usable_bytes(dep) - weight_bytes_per_gpu(dep) - extra_bytes
    # a large batch fills the prefill step: max(prompt, PREFILL_STEP_TOKENS) tokens
    activations = np.maximum(p, PREFILL_STEP_TOKENS) * activation_bytes_per_token(dep)
    per_seq = (
        kv_bytes_per_token_per_gpu(dep) * (p + o) + logits_bytes_per_seq(dep) + extra_bytes_per_seq
    )
    return np.maximum(np.floor((free - activations) / per_seq), 0.0)
