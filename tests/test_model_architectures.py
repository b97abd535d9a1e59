"""Architectures of 2025/26 from config.json: parameter counts of the shipped real configs
against their model cards, KV bytes by hand, and hand-checked small synthetic configs per
family (Qwen3, Phi-3, Gemma-2/3, Qwen3-MoE, Llama-4, gpt-oss, DeepSeek-V3 MLA)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from perfmodel.errors import PerfModelError
from perfmodel.paths import MODEL_CONFIG_DIR
from perfmodel.specs import yamlio
from perfmodel.specs.model_families import parse_config
from perfmodel.specs.models import load_config_file, load_model
from tests.synthetic_models import MLA_FIELDS, NEW_ARCHITECTURES, TINY, tiny_spec

REGISTRY = yamlio.safe_load((MODEL_CONFIG_DIR / "registry.yaml").read_text())["models"]
NEW = [*NEW_ARCHITECTURES, "Mixtral-8x7B"]


@pytest.mark.parametrize("name", NEW)
def test_total_params_within_3pct_of_model_card(name):
    m = load_model(name)
    assert m.param_count == pytest.approx(m.published_params, rel=0.03)
    assert m.source.startswith("https://")


@pytest.mark.parametrize("name", [n for n in NEW if REGISTRY[n].get("published_active_params_b")])
def test_active_params_within_3pct_of_model_card(name):
    """Active = total less the routed experts a token skips; the gpt-oss card counts only
    weights used in matmuls (no embedding lookup), which the registry says."""
    m = load_model(name)
    active = m.matmul_params if REGISTRY[name].get("active_excludes_embedding") else m.active_params
    assert active == pytest.approx(m.published_active_params, rel=0.03)


def test_deepseek_v3_mtp_apart_from_main_model():
    m = load_model("deepseek-v3")
    assert m.param_count / 1e9 == pytest.approx(671.0, rel=0.003)
    assert m.active_params / 1e9 == pytest.approx(37.0, rel=0.03)
    # the checkpoint's 685B = 671B main + MTP; the card's "14B" is 685 - 671 rounded
    assert (m.param_count + m.mtp_params) / 1e9 == pytest.approx(685.0, rel=0.003)
    assert m.mtp_layers == 1 and m.kv_lora_rank == 512


def test_kv_bytes_per_token_by_hand():
    assert load_model("deepseek-v3").kv_bytes_per_token(2) == (512 + 64) * 2 * 61 == 70272
    assert load_model("kimi-k2").kv_bytes_per_token(1) == (512 + 64) * 61
    # gpt-oss-120b: 36 layers x 2 (K, V) x 8 heads x 64 x 2 B, half of them capped at 128 tokens
    oss = load_model("gpt-oss-120b")
    assert oss.kv_bytes_per_token(2) == 36 * 2 * 8 * 64 * 2
    assert oss.kv_layer_tokens(1000) == 18 * 1000 + 18 * 128
    assert oss.kv_layer_tokens(100) == 36 * 100
    # Gemma-2-9B: 21 global + 21 local (4096) layers
    assert load_model("gemma-2-9b").kv_layer_tokens(10000) == 21 * 10000 + 21 * 4096
    # Llama-4-Scout: 12 global layers, 36 chunked (8192)
    np.testing.assert_array_equal(
        load_model("scout").kv_layer_tokens(np.array([100, 20000])),
        [48 * 100, 12 * 20000 + 36 * 8192],
    )


def test_checkpoint_formats_from_quantization_config():
    assert load_model("deepseek-v3").checkpoint_format == "fp8-block"
    oss = load_model("gpt-oss-120b")
    assert oss.checkpoint_format == "mxfp4" and oss.quantized_experts_only
    assert oss.quantizable_params == 36 * 128 * oss.expert_params
    assert load_model("Qwen3-8B").checkpoint_format == ""


def test_nvfp4_sidecar_is_read(tmp_path):
    cfg = json.loads((MODEL_CONFIG_DIR / "Qwen3-8B" / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "hf_quant_config.json").write_text(
        json.dumps({"quantization": {"quant_algo": "NVFP4", "group_size": 16}})
    )
    assert load_config_file(tmp_path).checkpoint_format == "nvfp4"


# --- small synthetic configs, counted by hand ------------------------------------------------

EMB = 2 * 100 * 64 + 64  # embedding + lm_head + final norm (tests.synthetic_models.TINY)


def test_qwen3_explicit_head_dim_and_qk_norms():
    m = tiny_spec(model_type="qwen3", head_dim=32)  # 32 != 64/4
    q, kv = 4 * 32, 2 * 32
    attn = 64 * (q + 2 * kv) + q * 64 + 2 * 32  # + q_norm, k_norm
    assert m.head_dim == 32 and m.attn_params_per_layer == attn
    assert m.param_count == EMB + 4 * (attn + 3 * 64 * 96 + 2 * 64)
    assert m.kv_bytes_per_token(2) == 4 * 2 * 2 * 32 * 2


def test_phi3_same_math_as_llama_with_sliding_window_on_every_layer():
    phi = tiny_spec(model_type="phi3", sliding_window=16)
    llama = tiny_spec(model_type="llama")
    assert phi.param_count == llama.param_count
    assert phi.kv_layer_tokens(100) == 4 * 16 and llama.kv_layer_tokens(100) == 400


def test_gemma2_alternates_local_and_global_from_layer_0():
    m = tiny_spec(model_type="gemma2", head_dim=16, sliding_window=8, tie_word_embeddings=None)
    assert [(g.count, g.window) for g in m.layer_groups()] == [(2, 8), (2, 0)]
    assert m.kv_layer_tokens(100) == 2 * 8 + 2 * 100
    assert m.tie_word_embeddings  # Gemma ties unless the config says otherwise
    attn = 64 * (64 + 2 * 32) + 64 * 64
    assert m.param_count == 100 * 64 + 64 + 4 * (attn + 3 * 64 * 96 + 4 * 64)


def test_gemma3_pattern_and_layer_types():
    by_pattern = tiny_spec(
        model_type="gemma3_text", num_hidden_layers=6, sliding_window=8, sliding_window_pattern=3
    )
    assert by_pattern.kv_layer_tokens(100) == 4 * 8 + 2 * 100
    listed = tiny_spec(
        model_type="gemma3_text",
        sliding_window=8,
        layer_types=["full_attention", "sliding_attention", "sliding_attention", "full_attention"],
    )
    assert listed.kv_layer_tokens(100) == 2 * 8 + 2 * 100
    assert listed.qk_norm_params == 2 * 16


def test_qwen3_moe_sparse_step_and_dense_layers():
    m = tiny_spec(
        model_type="qwen3_moe",
        num_experts=8,
        num_experts_per_tok=2,
        moe_intermediate_size=32,
        mlp_only_layers=[0],
        head_dim=16,
    )
    expert = 3 * 64 * 32
    moe = 8 * expert + 64 * 8
    assert m.moe_layers == 3 and m.dense_layers == 1
    attn = 64 * (64 + 2 * 32) + 64 * 64 + 2 * 16
    layers = 4 * (attn + 2 * 64) + 3 * moe + 3 * 64 * 96
    assert m.param_count == EMB + layers
    assert m.active_params == m.param_count - 3 * 6 * expert


def test_llama4_interleaved_moe_shared_expert_and_chunked_layers():
    m = tiny_spec(
        model_type="llama4",
        num_local_experts=4,
        num_experts_per_tok=1,
        interleave_moe_layer_step=2,
        intermediate_size_mlp=128,
        attention_chunk_size=16,
        head_dim=16,
    )
    expert = 3 * 64 * 96
    moe = 4 * expert + 64 * 4 + expert  # routed + router + shared expert
    attn = 64 * (64 + 2 * 32) + 64 * 64
    assert m.moe_layers == 2  # layers 1 and 3
    assert m.param_count == EMB + 4 * (attn + 2 * 64) + 2 * moe + 2 * 3 * 64 * 128
    assert m.active_params == m.param_count - 2 * 3 * expert
    assert m.kv_layer_tokens(100) == 3 * 16 + 100  # layer 3 (no RoPE) is global


def test_gpt_oss_biases_sinks_and_layer_types():
    m = tiny_spec(
        model_type="gpt_oss",
        num_local_experts=4,
        num_experts_per_tok=2,
        head_dim=16,
        sliding_window=8,
        layer_types=["sliding_attention", "full_attention"] * 2,
    )
    expert = 3 * 64 * 96 + 2 * 96 + 64
    attn = 64 * (64 + 2 * 32) + 64 * 64 + (64 + 2 * 32) + 64 + 4  # biases, o bias, sinks
    moe = 4 * expert + 64 * 4 + 4
    assert m.param_count == EMB + 4 * (attn + moe + 2 * 64)
    assert m.active_params == m.param_count - 4 * 2 * expert
    assert m.kv_layer_tokens(100) == 2 * 8 + 2 * 100


MLA = dict(**MLA_FIELDS, num_nextn_predict_layers=1, topk_method="noaux_tc")


def test_deepseek_mla_moe_by_hand():
    m = tiny_spec(**MLA)
    h = 4
    q = 64 * 24 + 24 + 24 * h * (8 + 4)
    kv = 64 * (16 + 4) + 16 + 16 * h * (8 + 8)
    attn = q + kv + h * 8 * 64
    assert m.is_mla and m.attn_params_per_layer == attn
    expert = 3 * 64 * 32
    moe = 8 * expert + (64 * 8 + 8) + expert  # routed, router + bias, shared
    assert m.param_count == EMB + 4 * (attn + 2 * 64) + 3 * moe + 3 * 64 * 96
    assert m.active_params == m.param_count - 3 * 6 * expert
    assert m.kv_bytes_per_token(2) == 4 * (16 + 4) * 2
    assert m.mtp_params == attn + moe + 2 * 64 + 2 * 64 * 64 + 3 * 64 + 2 * 100 * 64


def test_unknown_model_type_with_known_fields_priced_as_that_family():
    m = tiny_spec(**{**MLA, "model_type": "deepseek_v9"})
    assert m.family == "deepseek_v3" and "priced as deepseek_v3" in m.notices[0]
    assert m.param_count == tiny_spec(**MLA).param_count
    dense = tiny_spec(model_type="rwkv")
    assert dense.family == "llama" and "rwkv" in dense.notices[0]


def test_unknown_model_type_lacking_fields_names_them():
    data = {k: v for k, v in TINY.items() if k != "intermediate_size"}
    with pytest.raises(PerfModelError, match="model_type.*'rwkv'.*'intermediate_size'"):
        parse_config({**data, "model_type": "rwkv"}, "t", "cfg.json")
    with pytest.raises(PerfModelError, match="v_head_dim"):
        parse_config({**TINY, **MLA, "model_type": "x", "v_head_dim": None}, "t", "cfg.json")


def test_unmodeled_layer_type_is_refused():
    with pytest.raises(PerfModelError, match="linear_attention"):
        tiny_spec(model_type="qwen3", layer_types=["linear_attention"] * 4)


def test_list_models_shows_total_active_and_attention_kind():
    from tests.conftest import run_cli

    rows = {m["name"]: m for m in run_cli("list", "models", "--json", check_json=True)["models"]}
    ds = rows["DeepSeek-V3"]
    assert (ds["params_b"], ds["active_params_b"], ds["attention"]) == (671.03, 37.55, "MLA")
    assert ds["kv_bytes_per_token_bf16"] == 70272 and ds["checkpoint"] == "fp8-block"
    oss = rows["gpt-oss-120b"]
    assert oss["attention"] == "GQA + sliding 128 (18/36)" and oss["moe"] == "4 of 128"
    assert rows["Llama-3.1-8B"]["attention"] == "GQA" and rows["Llama-3.1-8B"]["moe"] == "-"


def test_weight_formats_bytes_with_scales_and_compute_dtype_per_gpu():
    from perfmodel.core.deployment import make_deployment
    from perfmodel.specs.dtypes import compute_dtype, weight_bytes

    assert weight_bytes("mxfp4") == 0.5 + 1 / 32  # E8M0 scale per 32 weights
    assert weight_bytes("nvfp4") == 0.5 + 1 / 16  # E4M3 scale per 16 weights
    assert weight_bytes("fp8-block") == 1 + 4 / 128**2  # fp32 scale per 128x128 block
    assert compute_dtype("nvfp4", ("bf16", "fp8", "fp4")) == "fp4"
    assert compute_dtype("mxfp4", ("bf16", "fp8")) == "bf16"  # dequantized (W4A16)
    assert make_deployment("gpt-oss-120b", "b200", weight_dtype="mxfp4").compute_dtype == "fp4"
    assert make_deployment("gpt-oss-120b", "h100", weight_dtype="mxfp4").compute_dtype == "bf16"
    assert (
        make_deployment("deepseek-v3", "h200", 8, weight_dtype="fp8-block").compute_dtype == "fp8"
    )


def test_planners_serve_a_quantized_checkpoint_in_its_format():
    from perfmodel.specs.dtypes import PRECISIONS, precisions_for

    assert precisions_for("", PRECISIONS) == PRECISIONS
    assert precisions_for("mxfp4", PRECISIONS) == (("mxfp4", "bf16"), ("mxfp4", "fp8"))
    assert precisions_for("fp8-block", PRECISIONS) == (
        ("fp8-block", "bf16"),
        ("fp8-block", "fp8"),
        ("int4", "fp8"),
    )
