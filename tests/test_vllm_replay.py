"""The engine simulator's queueing on hand-computed cases, the replay of a vLLM serving file,
and calibrate recovering an overhead planted in a synthetic file."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from perfmodel.accuracy.vllm_bench import read_vllm_result
from perfmodel.accuracy.vllm_replay import arrival_times, predicted_summary, replay_serve
from perfmodel.core.deployment import make_deployment
from perfmodel.planners.capacity.simulate import EngineConfig, simulate_engine
from tests import vllm_bench_writer as w
from tests.conftest import run_cli

V1 = {"mixed": True, "chunked_prefill": True}


def flat(pt, pctx, nd, dctx):
    """10 ms per step, 0.1 ms per prefill token, 1 ms per decoding sequence."""
    return 0.01 + 1e-4 * pt + 1e-3 * nd


def test_one_request():
    run = simulate_engine([0.0], [100], [5], flat, EngineConfig(max_num_seqs=8, **V1))
    # prefill 0.01 + 0.01 = 0.02; then 4 decode steps of 0.011
    assert run.ttft_s[0] == pytest.approx(0.02)
    assert run.finish_s[0] == pytest.approx(0.02 + 4 * 0.011)


def test_n_requests_at_t0_with_max_concurrency_one_run_back_to_back():
    cfg = EngineConfig(max_num_seqs=8, max_concurrency=1, **V1)
    run = simulate_engine(np.zeros(3), [100] * 3, [5] * 3, flat, cfg)
    one = 0.02 + 4 * 0.011
    assert run.send_s == pytest.approx([0, one, 2 * one])  # sent when the slot frees
    assert run.ttft_s == pytest.approx([0.02] * 3)  # timed from the send, as vLLM does
    assert run.finish_s == pytest.approx([one, 2 * one, 3 * one])


def test_chunked_prefill_shares_steps_with_a_decode():
    """A (10 tokens in, 10 out) and B (1000 in) at t = 0, budget 256 tokens per step:
    step 1: A's prefill 10 + B's chunk 246 (0.0356 s, A's first token);
    steps 2-3: A decodes 1 + B's chunks 255 (0.0365 s each); step 4: A + B's last 244
    (0.0354 s): B's first token at 0.1440 s, A has 4 tokens."""
    cfg = EngineConfig(max_num_seqs=8, max_num_batched_tokens=256, **V1)
    run = simulate_engine([0.0, 0.0], [10, 1000], [10, 2], flat, cfg)
    assert run.first_token_s[0] == pytest.approx(0.0356)
    assert run.first_token_s[1] == pytest.approx(0.0356 + 2 * 0.0365 + 0.0354)
    # then both decode (2 sequences, 0.012 s): A needs 6 more tokens, B 1
    assert run.finish_s[1] == pytest.approx(0.1440 + 0.012)
    assert run.finish_s[0] == pytest.approx(0.1440 + 0.012 + 5 * 0.011)


def test_without_chunking_a_long_prompt_waits_for_a_budget_of_its_own():
    cfg = EngineConfig(max_num_seqs=8, max_num_batched_tokens=1024, mixed=True)
    run = simulate_engine([0.0, 0.0], [10, 1000], [3, 1], flat, cfg)
    # step 1: A's 10 tokens only (1000 > 1014 left? no: 10 + 1000 <= 1024, both fit)
    assert run.first_token_s == pytest.approx([0.01 + 1e-4 * 1010] * 2)
    cfg = EngineConfig(max_num_seqs=8, max_num_batched_tokens=512, mixed=True)
    run = simulate_engine([0.0, 0.0], [10, 500], [3, 1], flat, cfg)
    # 10 + 500 = 510 fits; with 600 it would wait for the next step
    run2 = simulate_engine([0.0, 0.0], [10, 600], [3, 1], flat, EngineConfig(
        max_num_seqs=8, max_num_batched_tokens=700, mixed=True))  # fmt: skip
    assert run.first_token_s[1] == pytest.approx(0.01 + 1e-4 * 510)
    assert run2.first_token_s[1] == pytest.approx(0.01 + 1e-4 * 610)


def test_max_num_seqs_queues_the_rest_and_decode_jumps_price_the_mean_context():
    """One running slot: B waits for A. Step time linear in the context: a decode-only
    stretch advanced in one jump costs what the steps cost one by one."""

    def ctx_cost(pt, pctx, nd, dctx):
        return 0.05 if pt else 0.01 + 1e-5 * dctx

    cfg = EngineConfig(max_num_seqs=1, **V1)
    run = simulate_engine([0.0, 0.0], [100, 100], [101, 1], ctx_cost, cfg)
    # A: decode j = 1..100 at context 100 + j
    a_done = 0.05 + sum(0.01 + 1e-5 * (100 + j) for j in range(1, 101))
    assert run.finish_s[0] == pytest.approx(a_done, rel=1e-12)
    assert run.first_token_s[1] == pytest.approx(a_done + 0.05)


def test_arrivals_follow_vllm_get_request():
    assert np.all(arrival_times(5, math.inf, 1.0) == 0)
    t = arrival_times(2000, 4.0, 1.0, seed=1)
    assert t[-1] == pytest.approx(500.0) and np.all(np.diff(t) >= 0)
    gaps = np.diff(t)
    assert np.std(gaps) / np.mean(gaps) == pytest.approx(1.0, abs=0.08)  # Poisson
    g4 = np.diff(arrival_times(2000, 4.0, 4.0, seed=1))
    assert np.std(g4) / np.mean(g4) == pytest.approx(0.5, abs=0.05)  # gamma shape 4
    assert np.all(arrival_times(4, 2.0, math.inf) == pytest.approx([0.5, 1.0, 1.5, 2.0]))


def test_predicted_summaries_read_back_through_the_writer(tmp_path):
    """A replayed run written out as vLLM's writer would (equal gaps per request) reads back
    with the summaries the replay reported: the two sides use one definition."""
    dep = make_deployment("8b", "h100", 1)
    path = w.write(tmp_path / "m.json", w.serve_result(w.synthetic_outputs(60, seed=2),
                   request_rate=3.0, metadata={"gpu": "h100"}))  # fmt: skip
    rep = replay_serve(read_vllm_result(path), dep)
    from perfmodel.accuracy.vllm_replay import run_engine, server_defaults

    r = read_vllm_result(path)
    p, o = r.input_lens, r.output_lens
    run = run_engine(dep, arrival_times(len(p), 3.0, 1.0), p, o, server_defaults(dep), None)
    assert predicted_summary(run, o) == rep.predicted
    back = w.serve_result(w.outputs_of_run(p, o, run), duration=float(run.finish_s.max()))
    for key in ("mean_ttft_ms", "median_ttft_ms", "p99_ttft_ms", "mean_tpot_ms", "mean_itl_ms",
                "request_throughput", "output_throughput"):  # fmt: skip
        assert rep.predicted[key] == pytest.approx(back[key], rel=1e-9), key


def test_replay_orders_loads_and_concurrency(tmp_path):
    """More load, longer TTFT and TPOT; a concurrency cap of 1 serializes the requests."""
    dep = make_deployment("8b", "h100", 1)
    outs = w.synthetic_outputs(80, seed=4)
    reps = {}
    for key, kw in {
        "light": {"request_rate": 0.5},
        "inf": {},
        "c1": {"max_concurrency": 1},
    }.items():
        path = w.write(tmp_path / f"{key}.json", w.serve_result(outs, **kw))
        reps[key] = replay_serve(read_vllm_result(path), dep).predicted
    assert reps["light"]["mean_ttft_ms"] < reps["inf"]["mean_ttft_ms"]
    assert reps["light"]["mean_tpot_ms"] < reps["inf"]["mean_tpot_ms"]
    assert reps["c1"]["request_throughput"] < reps["inf"]["request_throughput"]
    assert reps["c1"]["mean_ttft_ms"] < reps["inf"]["mean_ttft_ms"]


def test_calibrate_recovers_a_planted_per_step_overhead(tmp_path):
    """Files written from replays with per_step_us = 900 and per_token_us = 20 (vs 0 in the
    start profile) on two loads; calibrate on them through the CLI recovers them (the weak
    prior toward the start pulls a few percent) and says what it left at the prior."""
    from dataclasses import replace

    from perfmodel.specs.profile import load_profile

    truth = replace(load_profile("vllm-h100"), per_step_us=900.0, per_token_us=20.0)
    start = tmp_path / "start.yaml"
    from perfmodel.accuracy.calibrate import write_profile_yaml

    write_profile_yaml(replace(truth, name="start", per_step_us=0.0, per_token_us=0.0), start)
    dep = make_deployment("8b", "h100", 1, profile=truth)
    folder = tmp_path / "runs"
    folder.mkdir()
    outs = w.synthetic_outputs(50, seed=5)
    from perfmodel.accuracy.vllm_replay import run_engine, server_defaults

    for rate in (1.0, math.inf):
        p = np.array([o.prompt_len for o in outs], float)
        o = np.array([o.output_tokens for o in outs], float)
        run = run_engine(dep, arrival_times(len(p), rate, 1.0), p, o, server_defaults(dep), None)
        sim = w.outputs_of_run(p, o, run)
        w.write(folder / f"r{rate}.json", w.serve_result(
            sim, duration=float(run.finish_s.max()), request_rate="inf" if math.isinf(rate)
            else rate, metadata={"gpu": "h100"}))  # fmt: skip
    fit = run_cli("calibrate", "--measurements", str(folder), "--base", str(start), "--json",
                  check_json=True)  # fmt: skip
    assert fit["parameters"]["overhead.per_step_us"] == pytest.approx(900.0, rel=0.05)
    assert fit["parameters"]["overhead.per_token_us"] == pytest.approx(20.0, abs=10.0)
    assert "efficiency.matmul" in fit["left_at_prior"] and fit["mape"] < 0.01


def test_cli_validate_json_is_the_replay(tmp_path):
    """validate --json on a folder: the rows are the in-process replay's, the deployment comes
    from the file's metadata (tp 2 on 2 GPUs), MAPE per quantity over the two files."""
    outs = w.synthetic_outputs(30, seed=9)
    for rate in (2.0, "inf"):
        w.write(tmp_path / f"r{rate}.json",
                w.serve_result(outs, request_rate=rate, metadata={"gpu": "h100", "num_gpus": 2,
                                                                  "tp": 2}))  # fmt: skip
    got = run_cli("validate", "--measurements", str(tmp_path), "--json", check_json=True)
    first = got["vllm_results"][0]
    assert "TP2" in first["deployment"] and first["requests"] == 30
    dep = make_deployment("8b", "h100", 2, 2)
    rep = replay_serve(read_vllm_result(tmp_path / "r2.0.json"), dep)
    rows = {r["quantity"]: r for r in first["rows"]}
    assert rows["mean_tpot_ms"]["predicted"] == pytest.approx(rep.predicted["mean_tpot_ms"])
    assert rows["mean_tpot_ms"]["measured"] == pytest.approx(rep.measured["mean_tpot_ms"])
    errs = [abs(r["rows"][3]["error"]) for r in got["vllm_results"]]
    assert got["mape"]["mean_tpot_ms"] == {"files": 2, "mape": pytest.approx(np.mean(errs))}


def test_capacity_check_runs_on_the_same_engine_with_unchanged_answers():
    """simulate_replica now drives simulate_engine (prefill-first, one prompt per pass); these
    are the figures the earlier event simulator gave for the same seed (recorded before the
    change), to the last digits."""
    from perfmodel.planners.capacity.simulate import simulate_replica

    got = simulate_replica(2.0, 8, lambda p: 0.05 + 1e-5 * p, np.linspace(0.01, 0.02, 8),
                           np.array([1000.0, 3000.0]), np.array([64.0, 300.0]), n_requests=600)  # fmt: skip
    assert got["stable"] and got["completed"] == 600
    assert got["ttft_p50_s"] == pytest.approx(2.173499806085985, rel=1e-9)
    assert got["ttft_p90_s"] == pytest.approx(14.85608879741348, rel=1e-9)
    assert got["tpot_p50_s"] == pytest.approx(0.022222222222222313, rel=1e-9)
    assert got["tpot_p90_s"] == pytest.approx(0.023492063492062877, rel=1e-9)


def test_latency_file_is_one_batch_at_t0(tmp_path):
    """vllm bench latency: one batch of 8 requests (32 in, 128 out) at t = 0, timed to the
    last token, on the offline LLM class's defaults (H100: 16384 tokens per step): the whole
    prefill is one step, then 127 decode steps of 8 sequences."""
    from perfmodel.accuracy.vllm_bench import read_vllm_result as read
    from perfmodel.accuracy.vllm_replay import replay_latency, step_grid

    path = w.write(tmp_path / "lat.json", w.latency_result([0.9, 1.0, 1.1]), indent=4)
    dep = make_deployment("8b", "h100", 1)
    rep = replay_latency(read(path), dep, 8, 32, 128)
    assert rep.setup.max_num_batched_tokens == 16384 and rep.measured["avg_latency_s"] == 1.0
    grid = step_grid(dep, 16384, 1024, 160)
    expected = grid(256.0, 0.0, 0, 0.0) + 127 * grid(0.0, 0.0, 8, 32 + 1 + 63)
    assert rep.predicted["avg_latency_s"] == pytest.approx(expected, rel=1e-9)
    (row,) = rep.rows()
    assert row["quantity"] == "avg_latency_s" and row["error"] == pytest.approx(expected - 1)
    proc = run_cli("validate", "--measurements", str(path), "--gpu", "h100")
    assert proc.returncode == 2 and "--batch, --prompt-len and --output-len" in proc.stderr
    # the command replays it on the same scheduler (it used the server's defaults)
    shape = ("--batch", "8", "--prompt-len", "32", "--output-len", "128", "--json")
    proc = run_cli("validate", "--measurements", str(path), "--gpu", "h100", *shape)
    (result,) = json.loads(proc.stdout)["vllm_results"]
    assert [r["predicted"] for r in result["rows"]] == [rep.predicted["avg_latency_s"]]


def test_per_token_overhead_is_fitted_only_over_a_span_of_batches():
    """Little's law gives each file's mean decode batch (output tok/s x s per token); at one
    batch a per-token and a per-step cost are one number, so per_token_us needs x4."""
    from types import SimpleNamespace

    from perfmodel.accuracy.vllm_setup import identified_parameters, mean_decode_batch

    def case(tok_s, tpot_ms):
        return SimpleNamespace(
            result=SimpleNamespace(summary={"output_throughput": tok_s, "mean_tpot_ms": tpot_ms})
        )

    assert mean_decode_batch(case(100.0, 8.0).result) == pytest.approx(0.8)
    light = [case(100.0, 8.0), case(200.0, 9.0)]  # batches 0.8 and 1.8
    params, why = identified_parameters(light)
    assert params == ("overhead.per_step_us",) and "0.8-1.8" in why
    params, why = identified_parameters([*light, case(4000.0, 20.0)])  # batch 80
    assert params == ("overhead.per_step_us", "overhead.per_token_us") and why == ""
