"""Per-layer pricing of the new architectures, by hand on small synthetic configs: sliding
windows, MLA (absorbed decode, decompressed prefill), MoE experts touched at batch B, shared
experts and dense layers, experts-only quantization; and the real configs end to end."""

from __future__ import annotations

import numpy as np
import pytest

from perfmodel.core.deployment import make_deployment
from perfmodel.core.memory import kv_cache_bytes_per_gpu, weight_bytes_per_gpu
from perfmodel.core.ops import experts_touched, forward_ops, make_shape
from perfmodel.specs.dtypes import weight_bytes
from perfmodel.specs.models import load_model
from tests.synthetic_models import MLA_FIELDS, tiny_spec


def _spec(**fields):
    # the shared tiny config with an explicit head_dim and a 4k window, as these costs assume
    return tiny_spec(head_dim=16, max_position_embeddings=4096, **fields)


def _op(ops, name):
    return next(o for o in ops if o.name == name)


SLIDING = _spec(
    model_type="gpt_oss",
    num_local_experts=4,
    num_experts_per_tok=2,
    sliding_window=8,
    layer_types=["sliding_attention", "full_attention"] * 2,
)


def test_sliding_layers_read_and_attend_at_most_the_window():
    # decode: b=3, one new token over c=100 cached; 2 full layers, 2 sliding (window 8)
    attn = _op(forward_ops(SLIDING, make_shape(3, 1, 100), 2.0, 2.0), "attention")
    # per layer KV read 2*b*(c'+1)*h_kv*hd*2 B with c' = 100 (full) or 8 (sliding)
    assert float(attn.kv_read_bytes) == 2 * (2 * 3 * 101 * 2 * 16 * 2) + 2 * (
        2 * 3 * 9 * 2 * 16 * 2
    )
    # FLOPs 4*b*keys*h*hd: full keys 100.5; sliding keys = 8 (the window is full)
    assert float(attn.flops) == 2 * 4 * 3 * 100.5 * 4 * 16 + 2 * 4 * 3 * 8 * 4 * 16
    # prefill of q=20 from scratch: sliding keys = n0*(n0/2) + (q-n0)*W with n0 = 8
    pre = _op(forward_ops(SLIDING, make_shape(1, 20, 0), 2.0, 2.0), "attention")
    sliding_keys = 8 * 4 + 12 * 8
    assert float(pre.flops) == 2 * 4 * 20 * 10 * 64 + 2 * 4 * sliding_keys * 64


def test_sliding_kv_cache_memory_is_capped_by_the_window():
    dep = make_deployment(SLIDING, "h100")
    # per layer and token 2*2*16*2 B = 128 B; 2 layers hold 1000 tokens, 2 hold 8
    assert float(kv_cache_bytes_per_gpu(dep, 5, 1000)) == 5 * 128 * (2 * 1000 + 2 * 8)


MLA = _spec(**MLA_FIELDS)


def test_mla_decode_absorbed_by_hand():
    b, c, t = 2, 50, 2
    ops = forward_ops(MLA, make_shape(b, 1, c, tp=t), 1.0, 2.0)
    attn, up = _op(ops, "attention"), _op(ops, "mla_kv_up")
    heads, latent, lora = 4 / t, 16 + 4, 16
    # per pair and head 2*(latent + lora) FLOPs; keys c + 1/2 per new token
    assert float(attn.flops) == pytest.approx(4 * b * (c + 0.5) * heads * 2 * (latent + lora))
    # the latent cache is read whole on every TP rank: (c+1)*20 elements x 2 B per layer
    assert float(attn.kv_read_bytes) == 4 * b * (c + 1) * latent * 2
    assert float(attn.kv_write_bytes) == 4 * b * 1 * latent * 2
    # absorption through kv_b: 2*tokens*lora*h/t*(nope+v); its weights lora*h/t*(nope+v)
    assert float(up.flops) == 4 * 2 * b * lora * heads * 16
    assert float(up.weight_bytes) == 4 * lora * heads * 16 * 1.0


def test_mla_prefill_decompressed_by_hand():
    b, q = 1, 40
    ops = forward_ops(MLA, make_shape(b, q, 0), 2.0, 2.0)
    attn, up = _op(ops, "attention"), _op(ops, "mla_kv_up")
    # per pair and head 2*(nope + rope + v) = 40 FLOPs; pairs q*q/2
    assert float(attn.flops) == 4 * b * q * (q / 2) * 4 * 40
    # kv_b expands every token's latent: 2*b*(c+q)*lora*h*(nope+v)
    assert float(up.flops) == 4 * 2 * b * q * 16 * 4 * 16
    # q_a and kv_a replicated, q_b split: params 64*(24+20) + 24*4*12/t
    qkv = _op(ops, "qkv_proj")
    assert float(qkv.flops) == 4 * 2 * q * (64 * 44 + 24 * 48)


def test_mla_kv_memory_not_split_by_tp():
    dep = make_deployment(MLA, "h100", 4)
    assert float(kv_cache_bytes_per_gpu(dep, 1, 10)) == 10 * 4 * 20 * 2


def test_moe_weight_traffic_grows_with_batch_from_k_to_all_experts():
    assert float(experts_touched(8, 2, 1)) == 2  # one token: its k experts
    assert float(experts_touched(8, 2, 2)) == pytest.approx(8 * (1 - 0.75**2))
    assert float(experts_touched(256, 8, 4096)) == pytest.approx(256, rel=1e-9)
    m, expert = MLA, 3 * 64 * 32
    ws = [
        float(_op(forward_ops(m, make_shape(b, 1, 10), 1.0, 2.0), "moe_experts").weight_bytes)
        for b in (1, 4, 64)
    ]
    assert ws[0] == 3 * 2 * expert  # 3 MoE layers x k experts x 1 B
    assert ws[0] < ws[1] < ws[2] <= 3 * 8 * expert
    assert ws[1] == pytest.approx(3 * 8 * (1 - 0.75**4) * expert)


def test_shared_expert_and_dense_layers_priced_as_dense_mlps():
    ops = forward_ops(MLA, make_shape(1, 5, 0), 2.0, 2.0)
    # dense layer 0: 64 -> 2*96 ; shared experts of layers 1..3: 64 -> 2*32
    gate_up = _op(ops, "mlp_gate_up")
    assert float(gate_up.flops) == 2 * 5 * 64 * 2 * 96 + 3 * 2 * 5 * 64 * 2 * 32
    experts = _op(ops, "moe_experts")
    assert float(experts.flops) == 3 * 2 * 5 * 2 * 3 * 64 * 32


def test_gpt_oss_mxfp4_experts_only_and_bf16_rest():
    m = load_model("gpt-oss-120b")
    dep = make_deployment(m, "h100", 1, weight_dtype="mxfp4")
    experts = 36 * 128 * m.expert_params
    expected = experts * weight_bytes("mxfp4") + (m.param_count - experts) * 2.0
    assert weight_bytes_per_gpu(dep) == pytest.approx(expected)
    assert expected / 1e9 == pytest.approx(65.3, rel=0.01)  # 60.8 GB experts + 4.5 GB rest


def test_decode_flops_per_token_match_twice_active_params_for_moe():
    m = load_model("qwen3-30b-a3b")
    shape = make_shape(1, 1, 0)
    total = sum(float(o.flops) for o in forward_ops(m, shape, 2.0, 2.0))
    attention = 4 * 0.5 * m.num_heads * m.head_dim * m.num_layers
    assert total == pytest.approx(2 * m.matmul_params + attention, rel=0.01)


@pytest.mark.parametrize(
    "model, gpu, gpus, w",
    [
        ("deepseek-v3", "h200", 8, "fp8-block"),
        ("kimi-k2", "b200", 8, "fp8-block"),
        ("gpt-oss-120b", "h100", 1, "mxfp4"),
        ("gpt-oss-20b", "b200", 1, "mxfp4"),
        ("qwen3-235b-a22b", "h100", 8, "fp8"),
        ("qwen3-30b-a3b", "h100", 1, "bf16"),
        ("scout", "h100", 8, "bf16"),
        ("gemma-2-9b", "h100", 1, "bf16"),
        ("phi-3-mini", "l40s", 1, "bf16"),
        ("qwen3-8b", "h100", 1, "bf16"),
    ],
)
def test_real_configs_predict(model, gpu, gpus, w):
    from perfmodel.core.api import predict_arrays

    dep = make_deployment(model, gpu, gpus, weight_dtype=w)
    cols = predict_arrays(dep, np.array([1, 16]), 4096, 256)
    assert np.all(np.isfinite(cols["ttft_s"])) and np.all(cols["tpot_s"] > 0)
    assert cols["tpot_s"][1] > cols["tpot_s"][0]


def test_speculator_must_attend_to_the_whole_prompt_draft_need_not():
    from perfmodel.errors import PerfModelError
    from perfmodel.planners.speculation.deploy import default_speculator, helper_deployment

    target = make_deployment("gpt-oss-120b", "h100", 8, weight_dtype="mxfp4")
    with pytest.raises(PerfModelError, match="gpt-oss-20b cannot score SpecPrefill.*sliding"):
        helper_deployment(target, "gpt-oss-20b", "speculator")
    assert helper_deployment(target, "gpt-oss-20b", "draft").model.name == "gpt-oss-20b"
    assert default_speculator(target.model, 8) is None
    assert default_speculator(target.model, 8, role="draft") == "gpt-oss-20b"
    # a dense draft of the same tokenizer for a MoE target (qwen3 ~ qwen3_moe)
    assert default_speculator(load_model("qwen3-235b-a22b"), 4) == "Qwen3-8B"


MOE = _spec(
    model_type="qwen3_moe",
    num_experts=8,
    num_experts_per_tok=2,
    moe_intermediate_size=32,
)


def test_expert_parallel_costs_by_hand():
    # ep=4, tp=1: 4 attention groups of 1 GPU; a group's 2 sequences, the experts see all 8
    ops = forward_ops(MOE, make_shape(2, 1, 100, tp=1, ep=4), 2.0, 2.0)
    experts, a2a = _op(ops, "moe_experts"), _op(ops, "moe_all_to_all")
    expert = 3 * 64 * 32
    assert float(experts.flops) == 4 * 2 * 8 * 2 * expert / 4
    touched = 8 * (1 - (1 - 2 / 8) ** 8)
    assert float(experts.weight_bytes) == pytest.approx(4 * touched * expert * 2 / 4)
    # dispatch + combine: each GPU sends its 8/4 tokens x k=2 hidden states, 3/4 remote
    assert float(a2a.comm_bytes) == 2 * 4 * (8 / 4) * 2 * 64 * 2 * 3 / 4
    assert float(a2a.comm_calls) == 2 * 4
    # attention runs on the group's own 2 sequences
    attn = _op(ops, "attention")
    assert float(attn.kv_read_bytes) == 4 * 2 * 2 * 101 * 2 * 16 * 2


def test_expert_parallel_memory_and_replicas():
    tp4 = make_deployment(MOE, "h100", 4, 4)
    ep8 = make_deployment(MOE, "h100", 8, 1, ep=8)
    assert (ep8.attn_dp, ep8.replicas) == (8, 1)
    experts = 4 * 8 * 3 * 64 * 32
    rest = MOE.param_count - experts
    assert weight_bytes_per_gpu(ep8) == pytest.approx((rest + experts / 8) * 2)
    assert weight_bytes_per_gpu(tp4) == pytest.approx(MOE.param_count * 2 / 4)
    # KV: 16 sequences over 8 attention groups -> 2 per GPU, KV heads whole (tp=1)
    from perfmodel.core.memory import memory_report

    rep = memory_report(ep8, 16, 1000, 0)
    assert float(rep.kv_cache_gb) * 1e9 == pytest.approx(2 * 1000 * 4 * 2 * 2 * 16 * 2)


@pytest.mark.parametrize(
    "model, gpu, n, tp, ep, says",
    [
        ("8b", "h100", 2, 1, 2, "needs a MoE model"),
        ("qwen3-30b-a3b", "h100", 8, 4, 6, "multiple of --tp 4"),
        ("deepseek-v3", "h200", 16, 1, 16, "more than one node"),
    ],
)
def test_expert_parallel_refusals(model, gpu, n, tp, ep, says):
    from perfmodel.errors import PerfModelError

    with pytest.raises(PerfModelError, match=says):
        make_deployment(model, gpu, n, tp, ep=ep)


def test_real_configs_through_predict_recommend_capacity_cli():
    from tests.conftest import run_cli

    pred = run_cli(
        "predict", "--model", "deepseek-v3", "--gpu", "h200", "--num-gpus", "8", "--tp", "1",
        "--ep", "8", "--batch", "32", "--prompt-len", "4k", "--json", check_json=True,
    )  # fmt: skip
    assert pred["weight_dtype"] == "fp8-block" and pred["ep"] == 8  # the checkpoint's format
    assert pred["memory"]["fits"] and pred["tpot_s"] > 0
    rec = run_cli(
        "recommend", "--model", "gpt-oss-20b", "--gpu", "h100", "--bsz", "8",
        "--prompt-len", "2k", "--output-len", "128", "--json", check_json=True,
    )  # fmt: skip
    assert rec["deployment"]["gpu"] == "h100-sxm" and rec["baseline"]["tpot_s"] > 0
    cap = run_cli(
        "capacity", "--model", "gpt-oss-120b", "--qps", "1", "--prompt-len", "2k",
        "--output-len", "128", "--slo-ttft", "5", "--slo-tpot", "0.1", "--gpus", "h100",
        "--json", check_json=True,
    )  # fmt: skip
    assert {o["weight_dtype"] for o in cap["options"]} == {"mxfp4"}


def test_expert_parallel_layouts_and_search():
    from perfmodel.planners.deployment_search import (
        expert_parallel_layouts,
        search_deployments,
    )
    from perfmodel.specs.hardware import load_gpu

    h200 = load_gpu("h200")
    lays = expert_parallel_layouts(h200, load_model("deepseek-v3"), [(1, 1), (2, 1), (8, 2)], 64)
    assert lays == [(1, 1, 1), (2, 1, 1), (8, 2, 1), (1, 1, 2), (1, 1, 4), (1, 1, 8)] + [
        (2, 1, 4),
        (2, 1, 8),
    ]
    assert expert_parallel_layouts(h200, load_model("8b"), [(1, 1)], 64) == [(1, 1, 1)]
    found = search_deployments("deepseek-v3", 64, 4096, 512, "h200", alternatives=[])
    c = found.choice
    assert c.num_gpus == c.tp * c.deployment.attn_dp * c.pp * c.dp
    assert c.weight_dtype == "fp8-block"  # the checkpoint's format, never upcast
    # at 8 GPUs, EP (attention replicated, MLA latent KV split over attention groups) wins
    assert (c.num_gpus, c.ep) == (8, 8)


def test_operator_tables_price_llama_blocks_only():
    """A measured table's kernels are Llama blocks: MLA, windowed, shared-expert or sink
    models fall back to the roofline with the profile's efficiencies, and say so."""
    from dataclasses import replace

    from perfmodel.core.inference import decode_step_time, table_notices
    from perfmodel.specs.profile import load_profile

    with_table = load_profile("torch-cudagraph-h100")
    without = replace(with_table, optable="")

    def step(model, profile):
        dep = make_deployment(model, "h100", profile=profile)
        return float(decode_step_time(dep, 4, 1024)), dep

    t_table, dep = step("gpt-oss-20b", with_table)
    assert t_table == step("gpt-oss-20b", without)[0]  # the table is not used
    notes = table_notices(dep, 4, 1024, 64)
    assert len(notes) == 1 and "priced by roofline" in notes[0] and "sliding" in notes[0]
    assert step("8b", with_table)[0] != step("8b", without)[0]  # a Llama block: table used
