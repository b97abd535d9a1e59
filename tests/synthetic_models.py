"""Model fixtures shared by the architecture tests (test_architecture_costs,
test_model_architectures, test_hardware_models): one home for the small synthetic config.json
whose parameters and costs are counted by hand, its DeepSeek-V3 MLA/MoE fields, and the list
of real configs shipped for issue 25's architectures."""

from __future__ import annotations

from perfmodel.specs.model_families import parse_config

# a 4-layer model small enough to count by hand: d = 64, 4 heads of 16 (2 KV heads), FFN 96,
# vocabulary 100; each test adds its family's fields (model_type, experts, windows, ...)
TINY = dict(
    hidden_size=64,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    intermediate_size=96,
    vocab_size=100,
    max_position_embeddings=1024,
    tie_word_embeddings=False,
)

# DeepSeek-V3's MLA and MoE fields at that size: latent 16, query rank 24, heads of 8 + 4
# (RoPE) for q/k and 8 for v; 8 routed experts (2 per token) of 32 plus 1 shared; layer 0 dense
MLA_FIELDS = dict(
    model_type="deepseek_v3",
    kv_lora_rank=16,
    q_lora_rank=24,
    qk_nope_head_dim=8,
    qk_rope_head_dim=4,
    v_head_dim=8,
    n_routed_experts=8,
    n_shared_experts=1,
    num_experts_per_tok=2,
    moe_intermediate_size=32,
    first_k_dense_replace=1,
)

# real configs shipped for issue 25's architectures (perfmodel/model_configs, with sources);
# their parameter counts are checked against the model cards in test_model_architectures
NEW_ARCHITECTURES = (
    "Qwen3-8B",
    "Qwen3-32B",
    "Qwen3-30B-A3B",
    "Qwen3-235B-A22B",
    "DeepSeek-V3",
    "Kimi-K2",
    "gpt-oss-120b",
    "gpt-oss-20b",
    "Llama-4-Scout",
    "Phi-3-mini-4k-instruct",
    "Gemma-2-9B",
)


def tiny_spec(**fields):
    """TINY with `fields` added or replaced, parsed by the one config reader
    (specs.model_families.parse_config) as model 't' from 'cfg.json'."""
    return parse_config({**TINY, **fields}, "t", "cfg.json")
