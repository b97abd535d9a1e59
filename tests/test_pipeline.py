"""Pipeline parallelism in the cost model: closed-form checks against pipeline.py's formulas."""

from __future__ import annotations

import numpy as np
import pytest

from perfmodel.core import pipeline
from perfmodel.core.api import predict_arrays
from perfmodel.core.deployment import make_deployment
from perfmodel.core.inference import decode_step_time, prefill_time, stage_time
from perfmodel.core.memory import max_batch, memory_report
from perfmodel.errors import PerfModelError
from perfmodel.specs.hardware import load_gpu

# predict at PP = 1 before pipeline parallelism existed (commit bf187d3), exact reprs, with the
# `ideal` profile (shipped profiles are refitted over time; the ideal one is fixed physics):
# (model, gpu, num_gpus, tp, weights, kv, batch, prompt, output) -> ttft, tpot, total_gb, tok/s
BEFORE_PP = [
    (
        ("8b", "h100", 1, None, "bf16", "bf16", 8, 4096, 256),
        (0.5523406464706174, 0.005828914894328358, 23.98347264, 1004.554859449798),
    ),
    (
        ("70b", "h100", 8, None, "fp8", "fp8", 32, 8192, 512),
        (6.284160469169623, 0.004806218753698176, 16.580936704, 1874.5698897464106),
    ),
    (
        ("405b", "h200", 8, 8, "fp8", "fp8", 16, 32768, 512),
        (56.692304335512425, 0.014843850453333331, 71.896999936, 127.4473724271874),
    ),
    (
        ("mixtral-8x7b", "a100", 4, 2, "bf16", "bf16", 4, 2048, 128),
        (0.3746793724405615, 0.01614152522368481, 48.112590848, 422.3284601825523),
    ),
    (
        ("405b", "h100", 16, 8, "fp8", "fp8", 64, 32768, 512),
        (234.1989964622312, 0.038754749057910445, 123.448649728, 258.0130325653878),
    ),
]


@pytest.mark.parametrize(("config", "expected"), BEFORE_PP)
def test_pp1_equals_the_numbers_before_pipeline_parallelism(config, expected):
    model, gpu, n, tp, w, k, b, p, o = config
    dep = make_deployment(model, gpu, n, tp, w, k, profile="ideal")
    cols = predict_arrays(dep, b, p, o)
    got = tuple(float(np.ravel(cols[c])[0]) for c in ("ttft_s", "tpot_s", "total_gb"))
    got += (float(np.ravel(cols["throughput_tok_s"])[0]),)
    assert got == pytest.approx(expected, rel=1e-12)  # identical up to float summation order


def test_vllm_layer_split():
    # vllm/distributed/utils.py get_pp_indices: remainder on the stages before the last
    assert pipeline.stage_layers(126, 1) == (126,)
    assert pipeline.stage_layers(126, 4) == (31, 32, 32, 31)
    assert pipeline.stage_layers(10, 4) == (2, 3, 3, 2)
    assert pipeline.stage_layers(80, 3) == (27, 27, 26)
    with pytest.raises(PerfModelError, match="cannot split 32 layers"):
        pipeline.stage_layers(32, 33)


@pytest.mark.parametrize("model", ["405b", "70b"])
def test_weights_and_kv_per_gpu_halve_from_pp1_to_pp2(model):
    one = make_deployment(model, "h100", 8, 8, "fp8", "fp8")
    two = make_deployment(model, "h100", 16, 8, "fp8", "fp8", pp=2)
    r1 = memory_report(one, 4, 8192, 512)
    r2 = memory_report(two, 4, 8192, 512)
    # even layer count: each stage holds L/2 layers' KV
    assert float(r2.kv_cache_gb) == pytest.approx(float(r1.kv_cache_gb) / 2, rel=1e-15)
    # untied embedding and lm_head are the same size: each stage holds half the weights,
    # the last stage also the final norm (d weights)
    m = one.model
    norm_gb = m.hidden_size * one.w_bytes / one.tp / 1e9
    assert float(r2.weights_gb) == pytest.approx((float(r1.weights_gb) + norm_gb) / 2, rel=1e-12)
    assert float(max_batch(two, 8192, 512)) > 1.9 * float(max_batch(one, 8192, 512))


def test_memory_report_reports_the_fullest_stage():
    dep = make_deployment("8b", "h100", 4, 1, "bf16", "bf16", pp=4)
    r = memory_report(dep, np.array([1.0, 64.0]), 4096, 256)
    total = r.weights_gb + r.kv_cache_gb + r.activation_gb
    np.testing.assert_allclose(r.total_gb, total, rtol=1e-15)
    # the last stage carries lm_head + logits; 32 layers split 8/8/8/8
    assert np.all(r.fits)
    assert np.all(r.total_gb < memory_report(make_deployment("8b"), [1, 64], 4096, 256).total_gb)


def test_prefill_bubble_matches_the_formula():
    t = [np.array(2.0)] * 4
    for m in (1, 2, 4, 8):
        latency = pipeline.prefill_latency(t, m, 0.0)
        assert float(latency) == (m + 4 - 1) * 2.0
        busy = m * 2.0
        assert 1 - busy / float(latency) == pytest.approx(float(pipeline.bubble_fraction(m, 4)))
        assert float(pipeline.bubble_fraction(m, 4)) == pytest.approx(3 / (m + 3))


def test_prefill_and_decode_assemble_stage_times_micro_batches_and_transfers():
    dep = make_deployment("70b", "h100", 8, 4, "fp8", "fp8", pp=2)  # one node
    b, p, c = 6, 2048, 3000
    m, b_mb = pipeline.micro_batches(b, 2)
    assert (float(m), float(b_mb)) == (2.0, 3.0)
    first, last = pipeline.stages(80, 2)
    s0 = stage_time(dep, first, b_mb, p, 0, 1, np.inf)
    s1 = stage_time(dep, last, b_mb, p, 0, 1, np.inf)
    xfer = load_gpu("h100").link_latency_s + 2 * 3 * p * 8192 * 2 / 4 / (
        load_gpu("h100").link_bandwidth * dep.profile.comm
    )
    assert float(prefill_time(dep, b, p)) == pytest.approx(float(s0 + s1 + max(s0, s1) + xfer))
    d0 = stage_time(dep, first, b_mb, 1, c, 1, np.inf)
    d1 = stage_time(dep, last, b_mb, 1, c, 1, np.inf)
    xfer1 = load_gpu("h100").link_latency_s + 2 * 3 * 8192 * 2 / 4 / (
        load_gpu("h100").link_bandwidth * dep.profile.comm
    )
    expect = max(float(d0 + d1), 2 * max(float(d0), float(d1))) + xfer1
    assert float(decode_step_time(dep, b, c)) == pytest.approx(expect)


def _with_inter_node(dep, **update):
    from dataclasses import replace

    return replace(dep, gpu=replace(dep.gpu, **update))


def test_inter_node_transfer_uses_the_inter_node_link():
    across = make_deployment("405b", "h100", 16, 8, "fp8", "fp8", pp=2)  # 2 nodes
    inside = make_deployment("405b", "h100", 8, 4, "fp8", "fp8", pp=2)  # 1 node
    assert (across.nodes, across.node_crossings) == (2, 1)
    assert (inside.nodes, inside.node_crossings) == (1, 0)
    b, c = 16, 8192
    for dep, crossings in ((across, 1), (inside, 0)):
        base = float(decode_step_time(dep, b, c))
        slow = _with_inter_node(dep, inter_node_latency_us=dep.gpu.inter_node_latency_us + 1000)
        assert float(decode_step_time(slow, b, c)) - base == pytest.approx(1e-3 * crossings)
    # bandwidth: bytes / (bw * comm) over the inter-node link, b/m = 8 sequences per micro-batch
    nbytes = 2 * 8 * 1 * 16384 * 2 / 8
    half = _with_inter_node(across, inter_node_bandwidth_gbps=25)
    delta = float(decode_step_time(half, b, c)) - float(decode_step_time(across, b, c))
    assert delta == pytest.approx(
        nbytes / (25e9 * across.profile.comm) - nbytes / (50e9 * across.profile.comm)
    )


def test_node_crossings_count_stage_boundaries_between_nodes():
    assert pipeline.node_crossings(8, 4, 1, 8) == 3
    assert pipeline.node_crossings(4, 4, 1, 8) == 1
    assert pipeline.node_crossings(2, 4, 2, 8) == 0
    assert pipeline.node_crossings(2, 3, 2, 8) == 1  # the second replica straddles nodes


def test_pipeline_errors_are_one_line():
    with pytest.raises(PerfModelError, match="cannot split 32 layers"):
        make_deployment("8b", "h100", 64, 1, pp=64)
    with pytest.raises(PerfModelError, match="--pp 3 must divide --num-gpus 8"):
        make_deployment("8b", "h100", 8, pp=3)
    with pytest.raises(PerfModelError, match="inside one node"):
        make_deployment("405b", "h100", 32, 16, pp=2)
    with pytest.raises(PerfModelError, match="no inter-node network data"):
        make_deployment("70b", "rtx4090", 16, 8, pp=2)
    # inside one node, a GPU type without node data is fine
    assert make_deployment("8b", "rtx4090", 8, 4, pp=2).node_crossings == 0


def test_predict_cli_pp(cli):
    out = cli(
        "predict", "--model", "405b", "--num-gpus", "16", "--tp", "8", "--pp", "2",
        "--weight-dtype", "fp8", "--kv-dtype", "fp8", "--batch", "64", "--prompt-len", "32k",
        "--output-len", "512", "--json", check_json=True,
    )  # fmt: skip
    assert (out["pp"], out["tp"], out["dp"], out["nodes"]) == (2, 8, 1, 2)
    assert out["memory"]["fits"] is True
    bad = cli("predict", "--model", "8b", "--num-gpus", "64", "--pp", "64")
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "cannot split 32 layers" in bad.stderr


def test_a_whole_model_pass_on_a_pipelined_deployment_is_refused():
    from perfmodel.core.inference import pass_breakdown, pass_time, stage_deployment

    dep = make_deployment("8b", "h100", 2, 1, pp=2)
    with pytest.raises(ValueError, match="stage_deployment"):
        pass_time(dep, 1, 1, 100)
    with pytest.raises(ValueError, match="stage_deployment"):
        pass_breakdown(dep, 1, 1, 100)
    first = pipeline.stages(32, 2)[0]
    assert stage_deployment(dep, first).model.num_layers == 16
