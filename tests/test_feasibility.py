"""The feasibility layer through the real entry point (perfmodel.cli.main, in process):
recommend meets its SLOs or exits 2, TP across nodes only when asked and then priced over the
network, one context-window rule in every command, calibrate never overwrites its input, a
user's CSV is out-of-sample; and a property test of recommend's search against brute force.
"""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perfmodel.cli.main import main
from perfmodel.core.deployment import make_deployment
from perfmodel.core.inference import request_times
from perfmodel.core.memory import memory_report
from perfmodel.core.ops import allreduce_op, make_shape
from perfmodel.core.options import DeploymentPins
from perfmodel.planners import feasibility as fz
from perfmodel.planners.deployment_search import (
    FALLBACK_PRECISIONS,
    PRECISIONS,
    NoFeasibleDeployment,
    replica_layouts,
)
from perfmodel.planners.recommend import recommend
from perfmodel.specs.hardware import resolve_gpu
from perfmodel.specs.models import resolve_model


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    return rc, out.getvalue(), err.getvalue()


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


# --- recommend honours its SLOs ----------------------------------------------------------
def test_recommend_slo_tpot_is_met_by_the_printed_deployment():
    # the case: 70B at batch 1 with a 8 ms TPOT SLO printed 2x H100 at 18.5 ms, exit 0;
    # priced by the profile (vllm-0.6.3-h100; the newer default vllm-0.24.0-h100 has
    # slower measured FP8 GEMMs at these shapes, so there only int4 weights reach 8 ms)
    rc, out, _ = cli(
        "recommend", "--model", "70b", "--bsz", "1", "--gpu", "h100", "--slo-tpot", "0.008",
        "--profile", "vllm-0.6.3-h100", "--json",
    )  # fmt: skip
    assert rc == 0
    d = json.loads(out)
    dep = d["deployment"]
    assert dep["tpot_s"] <= 0.008 and d["baseline"]["tpot_s"] <= 0.008
    assert all(row["met"] and row["value_s"] <= row["limit_s"] for row in d["slo_check"])
    # 8x H100 with FP8 weights, the smallest H100 deployment reaching it (7.9 ms)
    assert (dep["num_gpus"], dep["weight_dtype"]) == (8, "fp8")
    assert d["binding"]["constraint"] == "slo_tpot"
    # the deployment it prints is the one predict prices: same TPOT through predict's path
    rc, out, _ = cli(
        "predict", "--model", "70b", "--num-gpus", str(dep["tp"]), "--weight-dtype", "fp8",
        "--kv-dtype", dep["kv_dtype"], "--prompt-len", "32k", "--output-len", "512",
        "--profile", "vllm-0.6.3-h100", "--json",
    )  # fmt: skip
    assert rc == 0 and json.loads(out)["tpot_s"] == pytest.approx(dep["tpot_s"], rel=1e-12)


def test_recommend_exits_2_with_the_nearest_miss_when_no_deployment_meets_the_slo():
    rc, out, err = cli(
        "recommend", "--model", "70b", "--bsz", "1", "--gpu", "h100", "--slo-tpot", "0.001",
        "--json",
    )  # fmt: skip
    assert rc == 2
    line = one_error_line(err)
    assert "meets the SLOs" in line and "nearest" in line and "% over" in line
    d = json.loads(out)
    near = d["nearest"]
    assert d["feasible"] is False and near["deployment"]["tpot_s"] > 0.001
    assert near["excess"] == pytest.approx(near["deployment"]["tpot_s"] / 0.001 - 1)


def test_recommend_slo_e2e_and_ttft_bind():
    rc, out, _ = cli(
        "recommend", "--model", "8b", "--bsz", "8", "--gpu", "h100", "--prompt-len", "4k",
        "--output-len", "256", "--slo-ttft", "0.3", "--slo-e2e", "3", "--json",
    )  # fmt: skip
    assert rc == 0
    d = json.loads(out)
    dep = d["deployment"]
    assert dep["ttft_s"] <= 0.3 and dep["e2e_s"] <= 3
    assert {r["slo"] for r in d["slo_check"]} == {"TTFT", "e2e"}


# --- topology: TP inside a node unless asked for --------------------------------------------
@pytest.mark.parametrize(
    "command",
    [
        ["predict", "--model", "70b", "--num-gpus", "16"],
        ["specprefill", "--model", "70b", "--num-gpus", "16"],
        ["specdecode", "--model", "70b", "--num-gpus", "16"],
        ["critical-length", "--model", "70b", "--num-gpus", "16"],
        ["min-acceptance", "--model", "70b", "--num-gpus", "16"],
        ["recommend", "--model", "70b", "--num-gpus", "16", "--pp", "1"],
    ],
    ids=lambda c: c[0],
)
def test_tp16_across_nodes_is_refused_unless_asked(command):
    rc, _, err = cli(*command)
    assert rc == 2
    assert "--allow-cross-node-tp" in one_error_line(err) and "inside one node" in err


def test_tp16_when_asked_is_priced_over_the_inter_node_network():
    rc, out, err = cli(
        "predict", "--model", "70b", "--num-gpus", "16", "--allow-cross-node-tp",
        "--batch", "1", "--prompt-len", "4k", "--output-len", "256", "--json",
    )  # fmt: skip
    assert rc == 0 and "TP across nodes" in err
    d = json.loads(out)
    assert d["tp_across_nodes"] and any("inter-node" in x for x in d["labels"])
    # the network prices it, not the profile's all-reduce table measured inside one node
    assert d["basis_by_class"]["allreduce"].startswith("TP across nodes (asked for)")
    # hand-computed decode all-reduce at the mean context: 2 per layer, ring bytes over the
    # 50 GB/s-per-GPU InfiniBand of an HGX H100 node, latency = profile's + the network's
    dep = make_deployment("70b", "h100", 16, allow_cross_node_tp=True)
    hw, prof, m = dep.gpu, dep.profile, dep.model
    op = allreduce_op(m, make_shape(1, 1, 4096 + 128, 1, 16, np.inf), 2.0)
    calls = 2 * m.num_layers
    nbytes = calls * 2 * 15 / 16 * 1 * m.hidden_size * 2.0
    assert float(op.comm_bytes) == pytest.approx(nbytes)
    expected = calls * (prof.comm_latency_us * 1e-6 + hw.inter_node_latency_s) + nbytes / (
        hw.inter_node_bandwidth * prof.comm
    )
    got = next(r for r in d["breakdown"]["decode"] if r["op"] == "allreduce")["time_s"]
    assert got == pytest.approx(expected, rel=1e-9)
    # and it costs more than the same TP priced as if NVLink (what the issue saw)
    nvlink = calls * prof.comm_latency_us * 1e-6 + nbytes / (hw.link_bandwidth * prof.comm)
    assert got > 1.2 * nvlink


def test_cross_node_tp_needs_inter_node_data():
    rc, _, err = cli(
        "predict", "--model", "70b", "--gpu", "rtx4090", "--num-gpus", "16", "--tp", "16",
        "--allow-cross-node-tp",
    )  # fmt: skip
    assert rc == 2 and "no inter-node network data" in one_error_line(err)


# --- one context-window rule ------------------------------------------------------------------
WINDOW = 131072  # Llama-3.1-8B and -70B


@pytest.mark.parametrize(
    "command",
    [
        ["predict", "--model", "8b", "--prompt-len", "131000", "--output-len", "100"],
        ["specprefill", "--model", "70b", "--prompt-len", "131100", "--batch", "1"],
        ["specdecode", "--model", "8b", "--prompt-len", "131100"],
        ["critical-length", "--model", "8b", "--max-len", "131100"],
        ["min-acceptance", "--model", "8b", "--prompt-len", "131100"],
        ["recommend", "--model", "8b", "--prompt-len", "131000", "--output-len", "100"],
        [
            "capacity",
            "--model",
            "8b",
            "--qps",
            "1",
            "--prompt-len",
            "131000",
            "--output-len",
            "100",
        ],
    ],  # fmt: skip
    ids=lambda c: c[0],
)
def test_context_window_is_one_rule_in_every_command(command):
    rc, out, err = cli(*command)
    assert rc == 2 and out == ""
    line = one_error_line(err)
    assert f"context window of {WINDOW} tokens" in line and "--beyond-context" in line


def test_exactly_the_window_is_accepted_and_beyond_context_is_labelled():
    # 131000 + 73 output tokens feed 131072 positions (the last token is never fed back)
    rc, _, _ = cli("predict", "--model", "8b", "--prompt-len", "131000", "--output-len", "73")
    assert rc == 0
    rc, _, err = cli("predict", "--model", "8b", "--prompt-len", "131000", "--output-len", "74")
    assert rc == 2
    rc, out, err = cli(
        "predict", "--model", "8b", "--prompt-len", "131000", "--output-len", "74",
        "--beyond-context", "--json",
    )  # fmt: skip
    assert rc == 0 and "beyond" in err
    assert any("beyond Llama-3.1-8B's context window" in x for x in json.loads(out)["labels"])


def test_validate_drops_rows_beyond_the_window_with_a_count(tmp_path):
    csv = tmp_path / "mine.csv"
    csv.write_text(
        "model,gpu,num_gpus,tp,batch_size,prompt_len,output_len,ttft_s,tpot_s,status,runner\n"
        "8b,h100,1,1,1,4096,16,0.3,0.008,ok,vllm\n"
        "8b,h100,1,1,2,8192,16,0.6,0.009,ok,vllm\n"
        "8b,h100,1,1,1,1000000,16,300,0.01,ok,vllm\n"  # past 131072, under the 2^30 bound
    )
    rc, out, err = cli("validate", "--measurements", str(csv), "--json")
    assert rc == 0
    d = json.loads(out)
    assert any("dropped 1 row" in n and "context window" in n for n in d["dropped"])
    assert all(t["rows"] == 2 and t["mape"] < 10 for t in d["tables"])


# --- validate / calibrate tell the truth about data ---------------------------------------------
def test_a_users_csv_is_out_of_sample_and_warns_of_reused_efficiencies(tmp_path):
    csv = tmp_path / "cpu.csv"
    csv.write_text(
        "model,gpu,num_gpus,tp,batch_size,prompt_len,output_len,ttft_s,tpot_s,status,runner\n"
        "8b,cpu-generic,1,1,1,128,16,0.9,0.2,ok,torch\n"
        "8b,cpu-generic,1,1,2,256,16,1.9,0.25,ok,torch\n"
    )
    rc, out, err = cli("validate", "--measurements", str(csv), "--json")
    assert rc == 0
    d = json.loads(out)
    assert {t["sample"] for t in d["tables"]} == {"out-of-sample"}
    assert not any(t["fitted_on"] for t in d["tables"])
    assert any("reused" in w for w in d["warnings"]) and "reused" in err
    rc, out, _ = cli("validate", "--measurements", str(csv))
    assert "(out-of-sample)" in out and "(in-sample)" not in out and "issue 1" not in out


def test_calibrate_refuses_to_overwrite_its_input_and_checks_the_extension(tmp_path):
    csv = tmp_path / "m.csv"
    csv.write_text(
        "model,gpu,num_gpus,tp,batch_size,prompt_len,output_len,ttft_s,tpot_s,status\n"
        + "".join(f"8b,h100,1,1,{b},4096,64,{0.3 * b},0.008,ok\n" for b in (1, 2, 4, 8))
    )
    before = csv.read_bytes()
    for out in (csv, tmp_path / "." / "m.csv", tmp_path / "fitted.csv", tmp_path / "fitted"):
        rc, _, err = cli("calibrate", "--measurements", str(csv), "--out", str(out))
        assert rc == 2, out
        line = one_error_line(err)
        assert ("same file" in line) if out.name == "m.csv" else (".yaml" in line)
    assert csv.read_bytes() == before


def test_calibrate_on_user_data_is_in_sample_for_that_data_only(tmp_path):
    csv = tmp_path / "torch_rows.csv"
    rows = [
        f"8b,h100,1,1,{b},{p},64,{0.05 * b * p / 4096 + 0.01},{0.006 + 0.0002 * b},ok,torch"
        for b in (1, 2, 4, 8, 16)
        for p in (1024, 4096)
    ]
    csv.write_text(
        "model,gpu,num_gpus,tp,batch_size,prompt_len,output_len,ttft_s,tpot_s,status,runner\n"
        + "\n".join(rows)
        + "\n"
    )
    out = tmp_path / "fitted.yaml"
    rc, text, err = cli(
        "calibrate", "--measurements", str(csv), "--out", str(out), "--json",
        "--params", "efficiency.matmul,efficiency.memory,overhead.per_step_us",
    )  # fmt: skip
    assert rc == 0, err
    d = json.loads(text)
    assert d["framework"] == "torch"
    from perfmodel.specs.profile import load_profile

    fitted = load_profile(str(out))
    assert fitted.framework == "torch"
    # notes about this data only: the start profile's hand-set reasons are not copied
    assert set(fitted.unidentified) == set(d["unidentified"])
    rc, text, _ = cli("validate", "--measurements", str(csv), "--profile", str(out), "--json")
    assert {t["sample"] for t in json.loads(text)["tables"]} == {"in-sample"}


def test_calibrate_leaves_an_unidentifiable_parameter_at_its_prior():
    from perfmodel.accuracy.calibrate import fit_profile
    from perfmodel.accuracy.observations import Observation
    from perfmodel.specs.profile import load_profile

    start = load_profile("default")
    # rows that only the sum per_step_us + per_token_us (one sampled token per step) can see
    dep = make_deployment("8b", "h100", 1, profile=start)
    b = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0])
    truth = start.with_values(per_step_us=start.per_step_us + 300.0)

    def predict(profile):
        return request_times(
            make_deployment("8b", "h100", 1, profile=profile), b, 512.0, 2.0
        ).ttft_s

    obs = Observation("t", "ttft_s", [str(x) for x in b], predict(truth), predict, "", gpu="h100")
    params = ["overhead.per_step_us", "overhead.sd_step_us"]  # sd_step_us moves nothing here
    result = fit_profile([obs], start, params)
    assert "overhead.sd_step_us" in result.unidentified
    assert "left at the prior" in result.unidentified["overhead.sd_step_us"]
    assert result.profile.sd_step_us == start.sd_step_us
    assert result.parameters == ["overhead.per_step_us"]
    assert dep.profile is start


# --- property: recommend's deployment satisfies what it prints and nothing cheaper does ----
MODELS = ("1b", "8b", "Qwen2.5-7B")
GPUS = ("h100", "a100-40gb", "l40s", "h200")
MAX_GPUS_SMALL = 16


def _feasible(model, hw, tp, pp, dp, w, k, batch, prompt, output, slos) -> bool:
    dep = make_deployment(model, hw, tp * pp, tp, w, k, pp=pp)
    per = -(-batch // dp)
    if not bool(np.asarray(memory_report(dep, per, prompt, output).fits).flat[0]):
        return False
    t = request_times(dep, per, prompt, output)
    return fz.slo_verdict(slos, t.ttft_s.flat[0], t.tpot_s.flat[0], t.e2e_s.flat[0]).ok


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(
    model=st.sampled_from(MODELS),
    gpus=st.lists(st.sampled_from(GPUS), min_size=1, max_size=2, unique=True),
    batch=st.integers(1, 48),
    prompt=st.sampled_from([512, 2048, 8192, 32768]),
    output=st.sampled_from([16, 128, 512]),
    slo_ttft=st.one_of(st.none(), st.floats(0.05, 20.0)),
    slo_tpot=st.one_of(st.none(), st.floats(0.004, 0.2)),
)
def test_recommend_is_feasible_and_nothing_cheaper_in_its_space_is(
    model, gpus, batch, prompt, output, slo_ttft, slo_tpot
):
    slos = fz.Slos(slo_ttft, slo_tpot)
    try:
        rec = recommend(
            DeploymentPins(model), batch, prompt_len=prompt, output_len=output, slo_ttft_s=slo_ttft,
            slo_tpot_s=slo_tpot, alternatives=gpus, max_gpus=MAX_GPUS_SMALL,
        )  # fmt: skip
        chosen = rec.as_dict()["deployment"]
    except NoFeasibleDeployment:
        chosen = None
    # brute force over the same space: every GPU type, layout, dp and precision
    cheapest, quality_exists = None, False
    m = resolve_model(model)
    for name in gpus:
        hw = resolve_gpu(name)
        for tp, pp in replica_layouts(hw, m.num_heads, m.num_layers, MAX_GPUS_SMALL):
            for w, k in PRECISIONS + FALLBACK_PRECISIONS:
                for dp in range(1, min(MAX_GPUS_SMALL // (tp * pp), batch) + 1):
                    if not _feasible(m, hw, tp, pp, dp, w, k, batch, prompt, output, slos):
                        continue
                    fallback = (w, k) in FALLBACK_PRECISIONS
                    quality_exists |= not fallback
                    key = (fallback, tp * pp * dp * hw.price_per_gpu_hour_usd)
                    cheapest = key if cheapest is None or key < cheapest else cheapest
                    break  # a larger dp of this layout and precision costs more
    if chosen is None:
        assert cheapest is None, f"recommend found nothing, brute force found {cheapest}"
        return
    # every constraint it prints holds
    d = rec.as_dict()
    assert all(r["met"] for r in d["slo_check"])
    if slo_ttft is not None:
        assert chosen["ttft_s"] <= slo_ttft
    if slo_tpot is not None:
        assert chosen["tpot_s"] <= slo_tpot
    assert chosen["memory_per_gpu_gb"] <= chosen["capacity_gb"]
    assert _feasible(
        m, resolve_gpu(chosen["gpu"]), chosen["tp"], chosen["pp"], chosen["dp"],
        chosen["weight_dtype"], chosen["kv_dtype"], batch, prompt, output, slos,
    )  # fmt: skip
    # and no feasible deployment of its space is cheaper (at a precision the policy allows)
    got = (
        (chosen["weight_dtype"], chosen["kv_dtype"]) in FALLBACK_PRECISIONS,
        chosen["cost_per_hour"],
    )
    assert got[0] == (not quality_exists)
    assert got[1] <= cheapest[1] + 1e-9, (got, cheapest)


def test_specdecode_leads_with_the_memory_verdict_when_no_draft_fits():
    """As predict does, the text answer starts with "does not fit:" and the worst point's
    figures, equal to its --json memory; a point that fits prints no verdict."""
    args = ["specdecode", "--model", "70b", "--gpu", "rtx4090", "--batch", "64"]
    args += ["--prompt-len", "32768"]
    rc, out, _ = cli(*args)
    first = out.splitlines()[0]
    _, payload, _ = cli(*args, "--json")
    mem = json.loads(payload)["memory"]
    assert rc == 0 and not mem["fits"]
    assert first.startswith("does not fit: at batch 64, context 32768"), first
    assert f"{mem['total_gb']:.1f} GB per GPU needed, {mem['capacity_gb']:.1f} GB usable" in (
        " ".join(out.split())
    )
    rc, out, _ = cli("specdecode", "--model", "8b", "--gpu", "h100", "--batch", "8")
    assert rc == 0 and "does not fit" not in out and out.startswith("MagicDec on")
