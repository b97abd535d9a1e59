"""Our own H100 profiler run (validation/measurements/profiler_h100_2026-11-26): the derived
measurement CSVs, the runner vs the reference benchmark, and the held-out Qwen2.5-7B check."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from perfmodel.accuracy.measured import compare_measurements, measured_report
from perfmodel.accuracy.observations import build_table
from perfmodel.accuracy.targets import LEAVE_ONE_TABLE_OUT_MAPE, RUNNER_REFERENCE_MAPE

ROOT = Path(__file__).resolve().parent.parent
MEAS = ROOT / "validation" / "measurements"


def _build_script():
    spec = importlib.util.spec_from_file_location(
        "build_profiler_measured", ROOT / "validation" / "build_profiler_measured.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_derived_csvs_are_reproduced_by_the_build_script():
    mod = _build_script()
    for name in mod.OUTPUTS:
        rows = mod.output_rows(name)
        with (MEAS / name).open(newline="") as fh:
            committed = list(csv.DictReader(fh))
        assert [{k: str(v) for k, v in r.items()} for r in rows] == committed


def test_decode_rows_are_one_step_with_prompt_len_cached_tokens():
    """The runner's step attends decode_context = prompt_len + 1 tokens: context_len (tokens
    already cached) = prompt_len, as the reference conversion writes ctx - 1."""
    table = build_table(MEAS / "h100_torch_cudagraph_profiler.csv")
    dec = table.frame[table.frame["tpot_s"].notna()]
    assert len(dec) == 61 and dec["ttft_s"].isna().all()
    assert (dec["context_len"] == dec["prompt_len"]).all()
    ref = build_table(MEAS / "h100_torch_cudagraph.csv").frame
    ref_dec = ref[ref["tpot_s"].notna()]
    assert set(zip(dec["batch_size"], dec["context_len"], strict=True)) <= set(
        zip(ref_dec["batch_size"], ref_dec["context_len"], strict=True)
    )


def _comparison() -> dict:
    ours = build_table(MEAS / "h100_torch_cudagraph_profiler.csv")
    ref = build_table(MEAS / "h100_torch_cudagraph.csv")
    return {(r["model"], r["quantity"]): r for r in compare_measurements(ours, ref)}


@pytest.mark.parametrize(
    "model,quantity",
    [("Llama-3.1-8B", "tpot_s"), ("Llama-3.1-8B", "ttft_s"), ("Llama-3.2-1B", "tpot_s")],
)
def test_runner_matches_reference_within_5_percent(model, quantity):
    """Issue 12 item 2: our runner lands within 5% of the reference benchmark (same grid)."""
    r = _comparison()[(model, quantity)]
    assert r["rows"] >= 11
    assert r["mape"] <= RUNNER_REFERENCE_MAPE, r


def test_small_prefill_of_the_1b_is_host_bound_and_the_rest_within_5_percent():
    """Where the 5% does not hold: the 1B prefill of 1 x 512 tokens (~5 ms, eager) is bound by
    the host's launch time, and our runner's nn.Module forward launches more slowly than the
    reference's functional loop (+37%). The other 1B prefill points hold."""
    ours = build_table(MEAS / "h100_torch_cudagraph_profiler.csv").frame
    ref = build_table(MEAS / "h100_torch_cudagraph.csv").frame
    on = ["model", "batch_size", "prompt_len"]
    pair = ours[ours["ttft_s"].notna()].merge(ref[ref["ttft_s"].notna()], on=on)
    pair = pair[pair["model"] == "Llama-3.2-1B"]
    err = pair["ttft_s_x"].to_numpy() / pair["ttft_s_y"].to_numpy() - 1.0
    host_bound = (pair["batch_size"] * pair["prompt_len"] <= 512).to_numpy()
    # reported, not hidden
    assert _comparison()[("Llama-3.2-1B", "ttft_s")]["mape"] > RUNNER_REFERENCE_MAPE
    assert host_bound.sum() == 1 and err[host_bound][0] > 0.12
    assert np.mean(np.abs(err[~host_bound])) <= RUNNER_REFERENCE_MAPE


def test_validate_reports_the_remeasurement_and_the_held_out_model():
    rows = measured_report(loo=False)
    samples = {(r.table, r.quantity): r.sample for r in rows}
    assert samples[("h100_torch_cudagraph_profiler", "tpot_s")] == "re-measured (not fitted)"
    assert samples[("h100_torch_cudagraph_qwen2.5-7b", "tpot_s")] == (
        "held-out model (never fitted)"
    )


def test_held_out_qwen_within_the_leave_one_out_bound():
    """Qwen2.5-7B was never fitted on (nor its end-to-end points used anywhere): its error is
    the model's generalization error. Bound: the issue's leave-one-table-out target (10%
    MAPE), applied per quantity, and no point off by more than 20%."""
    rows = [r for r in measured_report(loo=False) if r.table == "h100_torch_cudagraph_qwen2.5-7b"]
    assert {r.quantity for r in rows} == {"ttft_s", "tpot_s"}
    for r in rows:
        assert r.rows >= 18
        assert r.mape <= LEAVE_ONE_TABLE_OUT_MAPE, r
        assert r.max_ape <= 0.20, r


def test_h200_run_with_its_own_table_within_the_leave_one_out_bound():
    """The H200 run (validation/measurements/profiler_h200_2026-11-26), priced by
    torch-cudagraph-h200: its own kernel table (shipped, so in-sample for the kernels) and the
    H100's overheads (not refitted). Same bound as the held-out model: 10% MAPE per quantity,
    no point off by more than 20%."""
    rows = [r for r in measured_report(loo=False) if r.table == "h200_torch_cudagraph_profiler"]
    assert {r.quantity for r in rows} == {"ttft_s", "tpot_s"}
    for r in rows:
        assert r.sample == "in-sample (H200 kernel table shipped; overheads not fitted on it)"
        assert r.rows >= 30
        assert r.mape <= LEAVE_ONE_TABLE_OUT_MAPE, r
        assert r.max_ape <= 0.20, r


def test_transferred_kernels_keep_their_launch_floor():
    """A kernel at its launch floor on the H100 does not get faster on the H200's HBM."""
    from perfmodel.core.optable.kernels import kernel_pricing
    from perfmodel.core.optable.load import table_curves
    from perfmodel.specs.hardware import load_gpu

    curves = table_curves("h100-sxm__torch-cudagraph")
    h100 = kernel_pricing(curves, load_gpu("h100"))
    h200 = kernel_pricing(curves, load_gpu("h200"))
    tiny = np.array([64.0])  # bytes: far below any measured size, at the floor
    floor = float(np.exp(h100.curves.eltwise["kernel"][0].y.min()))  # smallest measured time
    assert h200.eltwise("kernel", tiny).time_s[0] >= floor
    assert h200.eltwise("kernel", tiny).time_s[0] == h100.eltwise("kernel", tiny).time_s[0]
    assert h200.eltwise("kernel", tiny).time_s[0] >= 0.9 * h100.eltwise("kernel", tiny).time_s[0]
    big = np.array([4e9])  # bandwidth-bound: scales by the bandwidth ratio
    ratio = h100.eltwise("kernel", big).time_s[0] / h200.eltwise("kernel", big).time_s[0]
    assert ratio == pytest.approx(4.8 / 3.35, rel=0.02)


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "validation" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_shipped_table_is_built_from_our_profiler_without_qwen():
    """perfmodel/optables/h100-sxm__torch-cudagraph.csv = build_profiler_optable.py's output
    for the 8B, 1B and 70B@TP8 tables; Qwen2.5-7B's shapes stay out (held out)."""
    mod = _load("build_profiler_optable")
    rows = [r for m in mod.DEFAULT_MODELS for r in mod.optable_rows(mod.RAW / f"ops_{m}.csv")]
    with mod.SHIPPED.open(newline="") as fh:
        shipped = list(csv.DictReader(fh))
    assert [{k: str(v) for k, v in r.items()} for r in rows] == shipped
    assert not any("qwen" in r["source"] for r in shipped)


def test_gemm_never_reads_weights_faster_than_hbm_streams_them():
    """Weights that fit in L2 look faster than HBM in back-to-back microbenchmarks (8B o_proj
    34 MB at 3.3-3.7 TB/s); the model floors every GEMM at weight bytes / the streaming rate
    of the table's GEMVs over weights too large for L2, which stays below the datasheet."""
    from perfmodel.core.optable.kernels import KernelPricing
    from perfmodel.core.optable.load import table_curves
    from perfmodel.specs.hardware import resolve_gpu

    cv = table_curves("h100-sxm__torch-cudagraph")
    hw = resolve_gpu("h100-sxm")
    assert 2.7e12 < cv.stream_bw < hw.hbm_bandwidth
    tc = KernelPricing(cv, hw, True)
    m = np.array([1.0, 4.0, 16.0, 64.0])
    for k, n in ((4096, 4096), (8192, 2048), (1024, 8192), (3584, 4608), (4096, 28672)):
        t = tc.gemm("x", m, float(k), float(n), 2.0).time_s
        assert np.all(t >= k * n * 2.0 / cv.stream_bw * (1 - 1e-9)), (k, n)
    raw = [
        r
        for r in csv.DictReader((MEAS / "profiler_h100_2026-11-26" / "ops_llama-3.1-8b.csv").open())
        if r["op"] == "o_proj" and int(r["m"]) == 64
    ]
    assert float(raw[0]["tbps"]) * 1e12 > cv.stream_bw  # the microbenchmark does beat it


def test_operator_tables_transfer_to_the_held_out_h200():
    """Kernel by kernel: the H100 table transferred to the H200 against the H200's own
    `profile --ops` table (never used by the model). Same bound as the other held-out checks:
    10% MAPE per operator class."""
    from perfmodel.accuracy.measured import transfer_report

    rows = transfer_report()
    classes = {r.op for r in rows}
    assert {"gemm (M <= 64)", "gemm (M >= 128)", "attn_decode", "attn_prefill"} <= classes
    assert {"rmsnorm", "silu_mul"} <= classes
    for r in rows:
        assert r.sample == "h200 transferred (in-sample: fits the transfer latencies)"
        assert r.mape <= 0.10, r
