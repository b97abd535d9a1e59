"""Cost-model core: hand-checked FLOPs and bytes, memory, properties, predict API and CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from perfmodel.cli.commands.common import fmt_time
from perfmodel.core.api import predict
from perfmodel.core.deployment import make_deployment
from perfmodel.core.inference import decode_step_time, pass_breakdown, pass_time, prefill_time
from perfmodel.core.memory import memory_report, weight_bytes_per_gpu
from perfmodel.core.ops import forward_ops, make_shape
from perfmodel.specs.models import ModelSpec, load_model
from perfmodel.specs.profile import load_profile
from tests.conftest import assert_one_line_error, run_cli

TINY = ModelSpec(
    name="tiny",
    model_type="llama",
    hidden_size=64,
    num_layers=2,
    num_heads=4,
    num_kv_heads=2,
    head_dim=16,
    intermediate_size=128,
    vocab_size=256,
    max_position_embeddings=4096,
)


def _op(ops, name):
    return next(o for o in ops if o.name == name)


def test_tiny_config_flops_and_bytes_by_hand():
    # b=2 sequences, q=3 new tokens each, c=5 cached, tp=1, bf16 weights and KV
    shape = make_shape(batch=2, new_tokens=3, cached=5, logits_per_seq=1, tp=1)
    ops = forward_ops(TINY, shape, w_bytes=2.0, kv_bytes=2.0)
    tokens = 6
    # QKV: d=64 -> q 64 + k 32 + v 32 = 128 outputs, 2 layers
    qkv = _op(ops, "qkv_proj")
    assert float(qkv.flops) == 2 * 2 * tokens * 64 * 128  # = 196608
    assert float(qkv.weight_bytes) == 2 * 64 * 128 * 2
    # attention: 4*b*q*(c + q/2)*h*hd per layer = 4*2*3*6.5*4*16 = 9984, x2 layers
    attn = _op(ops, "attention")
    assert float(attn.flops) == 2 * 9984
    # KV read 2*b*(c+q)*h_kv*hd*2 B per layer = 2*2*8*2*16*2 = 2048; write 2*b*q*h_kv*hd*2 = 768
    assert float(attn.kv_read_bytes) == 2 * 2048
    assert float(attn.kv_write_bytes) == 2 * 768
    # MLP gate+up (64 -> 256) and down (128 -> 64)
    assert float(_op(ops, "mlp_gate_up").flops) == 2 * 2 * tokens * 64 * 256
    assert float(_op(ops, "mlp_down").flops) == 2 * 2 * tokens * 128 * 64
    # lm_head only for the sampled token of each sequence: 2 * 2 * 64 * 256
    assert float(_op(ops, "lm_head").flops) == 2 * 2 * 64 * 256
    # no all-reduce at tp=1
    assert float(_op(ops, "allreduce").comm_bytes) == 0


def test_allreduce_ring_bytes_by_hand():
    shape = make_shape(batch=1, new_tokens=10, tp=4)
    ar = _op(forward_ops(TINY, shape, 2.0, 2.0), "allreduce")
    # 2 per layer x 2 layers, each 2*(t-1)/t * tokens*d*2 B = 1.5 * 10*64*2 = 1920
    assert float(ar.comm_bytes) == 4 * 1920
    assert float(ar.comm_calls) == 4


def test_llama8b_flops_per_token_is_twice_params_plus_attention():
    m = load_model("8b")
    ctx = 4096
    shape = make_shape(batch=1, new_tokens=1, cached=ctx, logits_per_seq=1, tp=1)
    total = sum(float(o.flops) for o in forward_ops(m, shape, 2.0, 2.0))
    matmul_params = m.param_count - m.embedding_params  # embedding lookup has no FLOPs
    attention = 4 * (ctx + 0.5) * m.num_heads * m.head_dim * m.num_layers
    expected = 2 * matmul_params + attention
    assert total == pytest.approx(expected, rel=0.01)
    assert 2 * matmul_params == pytest.approx(2 * 7.5e9, rel=0.01)


def test_kv_bytes_per_token_70b():
    assert load_model("70b").kv_bytes_per_token(2) == 327_680


def test_405b_fp8_fits_on_8xh100_bf16_does_not():
    fp8 = make_deployment("405b", "h100", 8, weight_dtype="fp8")
    bf16 = make_deployment("405b", "h100", 8, weight_dtype="bf16")
    assert memory_report(fp8, 1, 1024, 128).fits.all()
    assert not memory_report(bf16, 1, 1024, 128).fits.any()
    assert weight_bytes_per_gpu(bf16) / 1e9 == pytest.approx(405.85 * 2 / 8, rel=0.01)


def test_kv_heads_replicated_beyond_tp():
    # 8 KV heads on 16 GPUs: each GPU still holds one head (replication), not half a head
    dep16 = make_deployment("70b", "h100", 16, allow_cross_node_tp=True)  # TP16: asked for
    dep8 = make_deployment("70b", "h100", 8)
    kv16 = memory_report(dep16, 1, 1000, 0).kv_cache_gb
    kv8 = memory_report(dep8, 1, 1000, 0).kv_cache_gb
    assert float(kv16) == pytest.approx(float(kv8))


def test_ideal_roofline_decode_is_weights_over_bandwidth():
    # batch 1, no context: decode time = all bytes / HBM bandwidth (ideal profile, roofline)
    dep = make_deployment("8b", "h100", 1, profile="ideal", mode="roofline")
    res = pass_breakdown(dep, 1, 1, 0, 1)
    total_bytes = sum(float(o.mem_bytes) for o in res.ops)
    assert float(res.time_s) == pytest.approx(total_bytes / 3.35e12, rel=1e-6)
    assert total_bytes == pytest.approx(2 * (8.03e9 - load_model("8b").embedding_params), rel=0.01)


@settings(max_examples=40, deadline=None)
@given(
    batch=st.integers(1, 256),
    prompt=st.integers(16, 32768),
    extra=st.integers(1, 32768),
    mode=st.sampled_from(["roofline", "additive"]),
)
@example(batch=1, prompt=33, extra=1, mode="roofline")
def test_ttft_increases_with_prompt_and_batch(batch, prompt, extra, mode):
    """Never decreases; strictly increases once the pass has 128 tokens or more. Below that
    the measured GEMMs of the default profile's table (vllm-0.24.0-h100) sit on their launch
    floor, flat in M: batch 1 with 33 or 34 prompt tokens takes the same 8.11 ms (flat up to
    104 tokens, checked on every batch 1-256 x prompt 16-2047)."""
    dep = make_deployment("8b", "h100", 1, mode=mode)
    base = float(prefill_time(dep, batch, prompt))
    longer = float(prefill_time(dep, batch, prompt + extra))
    assert longer >= base
    if batch * prompt >= 128:
        assert longer > base
    assert float(prefill_time(dep, batch + 1, prompt)) > base


@settings(max_examples=40, deadline=None)
@given(batch=st.integers(1, 512), ctx=st.integers(1, 100_000), extra=st.integers(1, 10_000))
@example(batch=1, ctx=4, extra=1)
def test_tpot_increases_with_context(batch, ctx, extra):
    """Never decreases; strictly increases once the KV read outgrows the per-kernel floor
    (a few us: at batch 1 and a handful of cached tokens attention sits on that floor)."""
    dep = make_deployment("70b", "h100", 8)
    longer = float(decode_step_time(dep, batch, ctx + extra))
    shorter = float(decode_step_time(dep, batch, ctx))
    # exactly: the decode-attention interpolation never decreases in the context, rounding
    # included (interpolate.interp2d; batch 1, ctx 4 -> 5 sits on the flat launch floor)
    assert longer >= shorter
    if batch * ctx >= 65536:  # KV per layer and GPU >= 33 MB: well above the floor
        assert longer > shorter


@settings(max_examples=40, deadline=None)
@given(
    batch=st.integers(1, 512),
    q=st.integers(1, 8192),
    ctx=st.integers(0, 65536),
    model=st.sampled_from(["1b", "8b", "70b", "mixtral-8x7b"]),
)
def test_roofline_never_exceeds_additive(batch, q, ctx, model):
    roof = make_deployment(model, "h100", 8, mode="roofline")
    add = make_deployment(model, "h100", 8, mode="additive")
    assert float(pass_time(roof, batch, q, ctx)) <= float(pass_time(add, batch, q, ctx)) * (
        1 + 1e-12
    )


@settings(max_examples=30, deadline=None)
@given(
    batch=st.integers(1, 64),
    prompt=st.integers(1, 16384),
    model=st.sampled_from(["8b", "70b", "qwen2.5-72b"]),
)
def test_more_gpus_never_increase_memory_per_gpu(batch, prompt, model):
    totals = [
        float(memory_report(make_deployment(model, "h100", n), batch, prompt, 128).total_gb)
        for n in (1, 2, 4, 8)
    ]
    assert all(a >= b - 1e-9 for a, b in zip(totals, totals[1:], strict=False))


def test_predict_api_broadcasts_and_records_basis():
    frame = predict("8b", "h100", 1, batch=np.array([1, 8, 64]), prompt_len=2048, output_len=128)
    assert len(frame) == 3
    assert (frame["profile"] == "vllm-0.24.0-h100").all()  # newest vLLM with H100 tables
    assert frame["ttft_s"].is_monotonic_increasing
    ideal = predict("8b", "h100", 1, batch=1, prompt_len=2048, output_len=128, profile="ideal")
    assert ideal["profile"].iloc[0] == "ideal"
    assert ideal["ttft_s"].iloc[0] < frame["ttft_s"].iloc[0]


def test_default_profile_per_gpu_is_the_newest_vllm_with_tables_for_it():
    """A GPU's default: the newest vLLM profile with a measured table for it; else the
    nearest measured GPU of the same architecture family (transferred, said so); else the
    newest vLLM profile without a table (efficiencies reused, said so)."""
    expect = {
        "h100": ("vllm-0.24.0-h100", ""),
        "h200": ("vllm-0.24.0-h200", ""),
        "a100": ("vllm-0.14.0-a100", ""),
        "l40s": ("vllm-0.24.0-l40s", ""),
        "b200": ("vllm-0.24.0-b200", ""),
        "a100-40gb": ("vllm-0.14.0-a100", "transferred"),
        "h100-pcie": ("vllm-0.24.0-h100", "transferred"),
        "rtx4090": ("vllm-0.24.0-l40s", "transferred"),
        "mi300x": ("vllm-0.6.3-h100", "reused"),
    }
    for gpu, (name, note) in expect.items():
        dep = make_deployment("8b", gpu, 1)
        assert dep.profile.name == name, gpu
        assert (note in dep.profile.note) if note else dep.profile.note == "", gpu
    assert "a100-80gb, same ampere family" in make_deployment("8b", "a100-40gb", 1).profile.note
    assert load_profile("vllm-h100").name == "vllm-0.24.0-h100"  # <framework>-<gpu>: newest
    assert load_profile("vllm-0.6.3-h100").framework_version == "0.6.3"


def test_cli_predict_json_contract():
    out = run_cli(
        "predict",
        "--model",
        "70b",
        "--gpu",
        "h100",
        "--num-gpus",
        "8",
        "--batch",
        "128",
        "--prompt-len",
        "4k",
        "--json",
        check_json=True,
    )
    for key in (
        "ttft_s",
        "tpot_s",
        "e2e_s",
        "throughput_tok_s",
        "memory",
        "breakdown",
        "profile",
        "mode",
    ):
        assert key in out
    for key in ("weights_gb", "kv_cache_gb", "total_gb", "capacity_gb", "fits"):
        assert key in out["memory"]
    assert out["prompt_len"] == 4096
    ops = {r["op"] for r in out["breakdown"]["prefill"]}
    assert {"qkv_proj", "attention", "mlp_gate_up", "allreduce", "lm_head"} <= ops
    total = sum(r["time_s"] for r in out["breakdown"]["prefill"])
    assert total == pytest.approx(out["ttft_s"], rel=1e-9)  # totals are the sum of their parts


def test_cli_predict_sweep_rows():
    out = run_cli(
        "predict",
        "--model",
        "8b",
        "--batch",
        "1,8",
        "--prompt-len",
        "1k,4k",
        "--json",
        check_json=True,
    )
    assert len(out["rows"]) == 4


def test_cli_human_output_has_breakdown():
    proc = run_cli("predict", "--model", "8b", "--prompt-len", "2k")
    assert proc.returncode == 0, proc.stderr
    assert "Operator breakdown" in proc.stdout and "attention" in proc.stdout


def test_cli_list_commands():
    gpus = run_cli("list", "gpus", "--json", check_json=True)["gpus"]
    assert {"h100-sxm", "a100-80gb", "rtx4090", "mi300x"} <= {g["name"] for g in gpus}
    models = run_cli("list", "models", "--json", check_json=True)["models"]
    assert any(m["name"] == "Llama-3.1-405B" for m in models)


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("--model", "llama-9b"), ("unknown model",)),
        (("--gpu", "h10"), ("unknown gpu", "h100")),
        (("--model", "8b", "--num-gpus", "3"), ("does not divide",)),
        (("--batch", "0"), ("positive",)),
        (("--prompt-len", "abc"), ("--prompt-len",)),
        (("--weight-dtype", "fp7"), ("weight dtype",)),
        (("--profile", "nope"), ("unknown profile",)),
        (
            ("--model", "405b", "--num-gpus", "8", "--strict"),
            ("1 of 1 point does not fit", "gb per gpu short"),
        ),
    ],
)
def test_cli_bad_input_one_line_exit_2(args, fragments):
    assert_one_line_error(run_cli("predict", *args), *fragments)


def test_cli_oom_without_strict_still_answers():
    proc = run_cli("predict", "--model", "405b", "--num-gpus", "8", "--json")
    assert proc.returncode == 0
    out = json.loads(proc.stdout)
    assert out["memory"]["fits"] is False and out["memory"]["missing_gb"] > 0
    assert "1 of 1 point does not fit" in proc.stderr
    # the JSON keeps its contract (fits: false plus numbers); the warning says by how much
    assert f"{out['memory']['missing_gb']:.1f} GB per GPU short" in proc.stderr


def test_cli_text_leads_with_the_verdict_and_labels_times_hypothetical():
    """A deployment that does not fit: the first line is the feasibility verdict (what, by
    how much, as --json's missing_gb), every time of it is in parentheses and said to be
    hypothetical; one that fits shows neither."""
    args = ("predict", "--model", "405b", "--num-gpus", "8", "--batch", "1")
    js = json.loads(run_cli(*args, "--json").stdout)
    proc = run_cli(*args)
    assert proc.returncode == 0 and proc.stderr == ""  # said once, on stdout, first
    lines = proc.stdout.splitlines()
    short = f"{js['memory']['missing_gb']:.1f} GB per GPU short"
    assert lines[0].startswith("does not fit: Llama-3.1-405B on 8x h100-sxm (TP8, bf16/bf16)")
    head = " ".join(" ".join(lines[:3]).split())  # the verdict wraps at 140 columns
    assert short in head and "times below in parentheses are hypothetical" in head
    row = next(line for line in lines if line.startswith("│     1 │"))
    cells = [c.strip() for c in row.strip("│").split("│")]
    assert cells[3] == f"({fmt_time(js['ttft_s'])})" and cells[4] == f"({fmt_time(js['tpot_s'])})"
    assert all(c.startswith("(") for c in cells[3:7]) and cells[8].startswith("no (")
    fits = run_cli("predict", "--model", "8b", "--batch", "1")
    assert "does not fit" not in fits.stdout and "hypothetical" not in fits.stdout
    row = next(line for line in fits.stdout.splitlines() if line.startswith("│     1 │"))
    assert "(" not in row.split("│")[4]


def test_malformed_profile_yaml_names_file_and_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nefficiency:\n  matmul: 1.5\n")
    assert_one_line_error(
        run_cli("predict", "--profile", str(bad)), "bad.yaml", "efficiency.matmul"
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    assert_one_line_error(run_cli("predict", "--profile", str(broken)), "broken.yaml", "malformed")


def test_malformed_config_json(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text('{"model_type": "llama", "hidden_size": 64}')
    assert_one_line_error(run_cli("predict", "--model", str(cfg)), "missing field")
