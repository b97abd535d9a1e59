"""The model spec: shape of a decoder-only transformer and its parameter and KV arithmetic.

Parameter counts follow the Hugging Face modules exactly (weights and biases of every
projection, norms, router, sinks); model_families.py fills the spec from config.json.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import NamedTuple

import numpy as np

FULL = "full_attention"
SLIDING = "sliding_attention"
CHUNKED = "chunked_attention"  # Llama-4 local layers: attention inside chunks of a fixed size


class LayerGroup(NamedTuple):
    """Layers that cost the same: `count` of them (a float once a pipeline stage takes its
    share), attention over at most `window` cached tokens (0 = all of them), MoE MLP or not.
    Derived from the spec's layer_pattern; immutable, compared by value (a NamedTuple costs a
    fifth of a frozen dataclass to define)."""

    count: float
    window: int
    moe: bool


@dataclass(frozen=True)
class ModelSpec:
    """Shape of a decoder-only transformer, as the cost model needs it.

    Heterogeneous stacks (sliding/full attention, dense/MoE MLPs) keep their per-layer kinds
    as `layer_pattern`: (window, moe, count) in order of first appearance; cost functions sum
    over `layer_groups()`. A model cut to fewer layers (`with_layers(n)`, one
    pipeline stage) keeps the composition of the whole stack in proportion, an approximation
    for stacks whose kinds are not evenly spread (DeepSeek-V3's 3 dense layers go first).
    MLA (kv_lora_rank > 0): queries through a q_lora_rank bottleneck, a latent KV cache of
    kv_lora_rank + qk_rope_head_dim elements per token and layer (DeepSeek-V2, arXiv:2405.04434).
    Derived quantities (the cached properties below) are computed once per spec: they live in
    the instance __dict__, not in the fields, so they are not compared or hashed, and
    `replace` builds a new spec that computes its own; a frozen spec's fields never change.
    """

    name: str
    model_type: str
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int
    tie_word_embeddings: bool = False
    attention_bias: bool = False  # q, k, v biases
    num_experts: int = 1  # 1 = dense MLP
    experts_per_token: int = 1
    published_params: float | None = None  # from the model card, for checks
    published_active_params: float | None = None
    source: str = ""  # where the architecture or its published size comes from
    config_path: str = ""  # the config.json it was read from
    family: str = ""  # the family it is priced as (model_families.py); "" = model_type
    # --- per-layer kinds --------------------------------------------------------------
    layer_pattern: tuple[tuple[int, bool, int], ...] = ()  # (window, moe, count); () = uniform
    # --- attention details ------------------------------------------------------------
    o_bias: bool = False  # o_proj bias (Llama/gpt-oss with attention_bias; not Qwen2)
    qk_norm_params: int = 0  # per layer: RMSNorm weights on q and k (Qwen3: 2*head_dim)
    attention_sinks: bool = False  # gpt-oss: one learned sink logit per head and layer
    norms_per_layer: int = 2  # RMSNorms of width d per layer (Gemma-2/3: 4)
    kv_lora_rank: int = 0  # > 0: multi-head latent attention (MLA)
    q_lora_rank: int = 0  # 0: full-rank q projection
    qk_nope_head_dim: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    # --- MoE details ------------------------------------------------------------------
    moe_intermediate_size: int = 0  # routed expert width; 0 = intermediate_size
    shared_intermediate_size: int = 0  # width of the always-on shared expert(s) per MoE layer
    dense_intermediate_size: int = 0  # dense layers of a MoE stack; 0 = intermediate_size
    expert_bias: bool = False  # gpt-oss: biases on every expert's projections
    router_bias: bool = False  # gpt-oss router bias; DeepSeek's e_score_correction_bias
    mtp_layers: int = 0  # DeepSeek-V3 multi-token-prediction modules (not in the main model)
    # --- checkpoint format ------------------------------------------------------------
    checkpoint_format: str = ""  # from quantization_config: fp8 (block-scaled), mxfp4, nvfp4
    quantized_experts_only: bool = False  # quantization covers routed experts only (gpt-oss)
    notices: tuple[str, ...] = ()  # how the config was read (an unknown model_type priced as)

    def with_layers(self, num_layers: int) -> ModelSpec:
        """This model cut to `num_layers` layers (one pipeline stage; class doc): equal to
        replace(self, num_layers=num_layers), and the same spec on every call, so a cost
        path that cuts the model per stage and per pass computes its derived quantities
        once per layer count."""
        cut = self._cuts.get(num_layers)
        if cut is None:
            cut = self._cuts[num_layers] = replace(self, num_layers=num_layers)
        return cut

    @cached_property
    def _cuts(self) -> dict[int, ModelSpec]:
        return {}

    # --- layer kinds ------------------------------------------------------------------
    @cached_property
    def is_moe(self) -> bool:
        return self.num_experts > 1

    @cached_property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0

    def layer_groups(self) -> tuple[LayerGroup, ...]:
        """(count, window, moe) per kind of layer, scaled to num_layers (see class doc)."""
        return self._layer_groups

    @cached_property
    def _layer_groups(self) -> tuple[LayerGroup, ...]:
        if not self.layer_pattern:
            return (LayerGroup(float(self.num_layers), 0, self.is_moe),)
        total = sum(c for _, _, c in self.layer_pattern)
        scale = self.num_layers / total
        return tuple(LayerGroup(c * scale, w, m) for w, m, c in self.layer_pattern)

    @cached_property
    def llama_block(self) -> bool:
        """A uniform stack of Llama-style blocks (GQA with full attention in every layer, a
        dense or routed-only MoE MLP): the kernels a measured operator table prices."""
        return not (
            self.is_mla
            or self.layer_pattern
            or self.shared_intermediate_size
            or self.expert_bias
            or self.attention_sinks
        )

    @cached_property
    def moe_layers(self) -> float:
        return sum(g.count for g in self.layer_groups() if g.moe)

    @cached_property
    def dense_layers(self) -> float:
        return self.num_layers - self.moe_layers

    @cached_property
    def attention_kind(self) -> str:
        """'MLA', 'GQA', 'MHA' or 'MQA', with '+ sliding N' or '+ chunked N' when some
        layers attend to a window."""
        if self.is_mla:
            kind = "MLA"
        elif self.num_kv_heads == self.num_heads:
            kind = "MHA"
        else:
            kind = "MQA" if self.num_kv_heads == 1 else "GQA"
        windows = sorted({g.window for g in self.layer_groups() if g.window})
        if windows:
            local = sum(g.count for g in self.layer_groups() if g.window)
            word = "chunked" if self.model_type.startswith("llama4") else "sliding"
            kind += f" + {word} {'/'.join(map(str, windows))} ({local:g}/{self.num_layers})"
        return kind

    # --- widths -----------------------------------------------------------------------
    @cached_property
    def q_dim(self) -> int:
        if self.is_mla:
            return self.num_heads * (self.qk_nope_head_dim + self.qk_rope_head_dim)
        return self.num_heads * self.head_dim

    @cached_property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim

    @cached_property
    def o_dim(self) -> int:
        """Width of the attention output that o_proj reads."""
        return self.num_heads * (self.v_head_dim if self.is_mla else self.head_dim)

    @cached_property
    def expert_ffn(self) -> int:
        return self.moe_intermediate_size or self.intermediate_size

    @cached_property
    def dense_ffn(self) -> int:
        return self.dense_intermediate_size or self.intermediate_size

    @cached_property
    def mla_latent_dim(self) -> int:
        """Latent KV elements per token and layer: kv_lora_rank + qk_rope_head_dim."""
        return self.kv_lora_rank + self.qk_rope_head_dim

    # --- parameters -------------------------------------------------------------------
    @cached_property
    def attn_params_per_layer(self) -> int:
        """GQA: Wq, Wk, Wv, Wo (+ biases, q/k norms, sinks). MLA: q_a (d x q_lora) + its norm
        + q_b (q_lora x h*(nope+rope)), or Wq (d x h*(nope+rope)) without q_lora; kv_a
        (d x (kv_lora+rope)) + its norm, kv_b (kv_lora x h*(nope+v)), Wo (h*v x d)."""
        d, h = self.hidden_size, self.num_heads
        if self.is_mla:
            q = (
                d * self.q_lora_rank + self.q_lora_rank + self.q_lora_rank * self.q_dim
                if self.q_lora_rank
                else d * self.q_dim
            )
            kv = d * self.mla_latent_dim + self.kv_lora_rank
            kv += self.kv_lora_rank * h * (self.qk_nope_head_dim + self.v_head_dim)
            return q + kv + self.o_dim * d
        params = d * (self.q_dim + 2 * self.kv_dim) + self.q_dim * d
        if self.attention_bias:
            params += self.q_dim + 2 * self.kv_dim
        if self.o_bias:
            params += d
        return params + self.qk_norm_params + (h if self.attention_sinks else 0)

    @cached_property
    def expert_params(self) -> int:
        """One routed expert, a gated MLP (gate, up, down): 3 * d * ffn (+ 2*ffn + d biases)."""
        d, f = self.hidden_size, self.expert_ffn
        return 3 * d * f + ((2 * f + d) if self.expert_bias else 0)

    @cached_property
    def router_params(self) -> int:
        return self.hidden_size * self.num_experts + (self.num_experts if self.router_bias else 0)

    @cached_property
    def shared_params(self) -> int:
        return 3 * self.hidden_size * self.shared_intermediate_size

    @cached_property
    def dense_mlp_params(self) -> int:
        return 3 * self.hidden_size * self.dense_ffn

    @cached_property
    def moe_mlp_params(self) -> int:
        return self.num_experts * self.expert_params + self.router_params + self.shared_params

    @cached_property
    def mlp_params_per_layer(self) -> float:
        """Mean MLP parameters per layer over the stack."""
        moe = self.moe_layers
        total = moe * self.moe_mlp_params + (self.num_layers - moe) * self.dense_mlp_params
        return total / self.num_layers

    @cached_property
    def layer_params(self) -> float:
        """Mean parameters per layer (exact for uniform stacks)."""
        norms = self.norms_per_layer * self.hidden_size
        return self.attn_params_per_layer + self.mlp_params_per_layer + norms

    @cached_property
    def layers_params(self) -> float:
        return self.num_layers * self.layer_params

    @cached_property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @cached_property
    def lm_head_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @cached_property
    def param_count(self) -> int:
        """Total parameters of the main model: embeddings + layers + final norm + lm_head
        (unless tied); multi-token-prediction modules apart (mtp_params)."""
        head = 0 if self.tie_word_embeddings else self.lm_head_params
        return round(self.embedding_params + self.layers_params + self.hidden_size + head)

    @cached_property
    def inactive_params(self) -> float:
        """Routed experts a token does not use: (E - k) per MoE layer."""
        if not self.is_moe:
            return 0.0
        return self.moe_layers * (self.num_experts - self.experts_per_token) * self.expert_params

    @cached_property
    def active_params(self) -> int:
        """Parameters touched per token (MoE: only experts_per_token routed experts, the
        shared expert and the router), embedding and lm_head included."""
        return round(self.param_count - self.inactive_params)

    @cached_property
    def quantizable_params(self) -> float:
        """Weights a weight dtype applies to: the routed experts only for checkpoints that
        quantize nothing else (gpt-oss), else everything but embedding and lm_head."""
        if self.quantized_experts_only and self.is_moe:
            return self.moe_layers * self.num_experts * self.expert_params
        head = 0 if self.tie_word_embeddings else self.lm_head_params
        return self.param_count - self.embedding_params - head

    @cached_property
    def mtp_params(self) -> int:
        """DeepSeek-V3 multi-token-prediction modules, as stored in the checkpoint: one MoE
        decoder layer, eh_proj (2d x d), enorm, hnorm and the shared-head norm, plus its own
        copies of the embedding and lm_head (the 14B of DeepSeek-V3's model card)."""
        if not self.mtp_layers:
            return 0
        d = self.hidden_size
        layer = self.attn_params_per_layer + self.moe_mlp_params + self.norms_per_layer * d
        block = layer + 2 * d * d + 3 * d + self.embedding_params + self.lm_head_params
        return self.mtp_layers * block

    @cached_property
    def matmul_params(self) -> int:
        """Weights that take part in matmuls per token (excludes the embedding lookup)."""
        return (
            self.active_params
            - self.embedding_params
            + (self.lm_head_params if self.tie_word_embeddings else 0)
        )

    # --- KV cache ---------------------------------------------------------------------
    @cached_property
    def kv_elems_per_token_layer(self) -> int:
        """KV elements per token and layer: 2 * h_kv * head_dim (K and V), or the MLA latent
        kv_lora_rank + qk_rope_head_dim (one vector shared by all heads)."""
        return self.mla_latent_dim if self.is_mla else 2 * self.num_kv_heads * self.head_dim

    def kv_bytes_per_token(self, kv_bytes: float = 2.0) -> float:
        """KV cache per token over all layers when every layer holds it (a window not yet
        full): L * kv_elems_per_token_layer * bytes."""
        return float(self.num_layers * self.kv_elems_per_token_layer * kv_bytes)

    def kv_layer_tokens(self, tokens) -> np.ndarray:
        """Token-layers of KV held for sequences of `tokens` tokens: sum over layer groups of
        count * min(tokens, window) (window 0 = all tokens). Broadcasts over arrays."""
        t = np.asarray(tokens, dtype=float)
        out = np.zeros_like(t)
        for g in self.layer_groups():
            out = out + g.count * (np.minimum(t, g.window) if g.window else t)
        return out
