"""One speculation layer: the CLI (entry point, --json), the dashboard's compute layer,
recommend and capacity give the same SpecPrefill TTFT and the same MagicDec choice (draft,
KV budget, gamma, acceptance basis) for one workload (issue 13, "Must show").

Targets: Llama-3.1-405B in FP8 weights on 8x H100, Llama-3.1-70B (BF16, 8x H100) and
Llama-3.1-8B (BF16, 1x H100). The precision is the one recommend chooses; every other caller
is given it.
"""

from __future__ import annotations

import json

import pytest

from app import compute
from perfmodel.core.options import DeploymentPins
from perfmodel.planners.capacity.plan import _speculation_basis, plan_capacity
from perfmodel.planners.capacity.search import (
    BATCH_GRID,
    candidates_for_gpu,
    spec_decode_service,
    spec_prefill_service,
)
from perfmodel.planners.capacity.workload import fixed_workload
from perfmodel.planners.recommend import recommend
from perfmodel.planners.specdecode import PLANNER_BUDGETS
from perfmodel.planners.speculation.deploy import default_speculator
from tests.conftest import run_cli

# (model, GPUs, batch, prompt, output, acceptance given to every caller or None = published)
CASES = [
    ("405b", 8, 4, 32768, 512, 0.8),
    ("70b", 8, 16, 32768, 512, 0.7),
    ("8b", 1, 16, 8192, 256, None),
]


def _cfg(model, n, w, k) -> dict:
    return {
        "model": model,
        "gpu": "h100",
        "num_gpus": n,
        "weight_dtype": w,
        "kv_dtype": k,
        "mode": "auto",
        "profile": "auto",
    }


def _dep_args(n, w, k) -> list[str]:
    return ["--gpu", "h100", "--num-gpus", str(n), "--weight-dtype", w, "--kv-dtype", k]


def _choice(d: dict) -> tuple:
    return (d["draft"], d["draft_kv"], d["gamma"], d["acceptance_basis"])


@pytest.fixture(scope="module", params=CASES, ids=[c[0] for c in CASES])
def case(request):
    model, n, batch, prompt, output, rate = request.param
    pins = DeploymentPins(model, gpu="h100", num_gpus=n)
    rec = recommend(pins, batch, prompt_len=prompt, output_len=output, acceptance_rate=rate)
    d = rec.as_dict()
    assert d["fits"] and d["batch"] == batch
    w, k = d["precision"]["weight_dtype"], d["precision"]["kv_dtype"]
    return {
        "model": model,
        "n": n,
        "batch": batch,
        "prompt": prompt,
        "output": output,
        "rate": rate,
        "w": w,
        "k": k,
        "rec": d,
        "speculator": default_speculator(rec.model, n),
    }


def _cli_specprefill(c, batch) -> dict:
    out = run_cli(
        "specprefill",
        "--model",
        c["model"],
        "--speculator",
        c["speculator"],
        "--batch",
        str(batch),
        "--prompt-len",
        str(c["prompt"]),
        *_dep_args(c["n"], c["w"], c["k"]),
        "--json",
        check_json=True,
    )
    keep = out["best_keep_rate"]  # the fastest within quality; recommended only if it pays
    row = next(r for r in out["rows"] if r["keep_rate"] == keep)
    assert out["recommended_keep_rate"] == (keep if out["pays"] else None)
    assert out["pays"] == (row["speedup"] > 1.0 and row["fits"])
    return {"keep": keep, "ttft_s": row["ttft_s"], "speedup": row["speedup"], "payload": out}


def test_specprefill_ttft_is_one_number(case):
    c, sp = case, case["rec"]["specprefill"]
    assert sp["speculator"] == c["speculator"] and sp["speculator_weight_dtype"] == "bf16"
    cli = _cli_specprefill(c, c["batch"])
    assert cli["payload"]["speculator_weight_dtype"] == "bf16"
    app = compute.specprefill(
        _cfg(c["model"], c["n"], c["w"], c["k"]), c["speculator"], c["batch"], c["prompt"], 1.0
    )
    app_row = app["plan"]["rows"][
        [r["keep_rate"] for r in app["plan"]["rows"]].index(app["plan"]["best_keep_rate"])
    ]
    assert cli["keep"] == sp["best_keep_rate"] == app["plan"]["best_keep_rate"]
    assert cli["payload"]["pays"] == sp["pays"] == app["plan"]["pays"]
    rec = cli["payload"]["recommended_keep_rate"]
    assert rec == sp["keep_rate"] == app["plan"]["recommended_keep_rate"]
    assert cli["ttft_s"] == app_row["ttft_s"]
    if sp["pays"]:
        assert cli["ttft_s"] == sp["specprefill_ttft_s"] == sp["ttft_s"]
    else:  # skip SpecPrefill: the recommended configuration is the baseline
        assert sp["ttft_s"] == sp["baseline_ttft_s"]

    # capacity serves one request per prefill pass: compare at batch 1
    wl = fixed_workload(1.0, c["prompt"], c["output"])
    plan = candidates_for_gpu(
        c["model"], "h100", wl, 1e9, 1e9, 1.0, False, precisions=((c["w"], c["k"]),)
    )
    service = spec_prefill_service(plan.deps[(c["w"], c["k"], c["n"], 1)], wl, 1.0)
    one = _cli_specprefill(c, 1)
    if service is None:  # capacity uses SpecPrefill only where it pays
        assert one["speedup"] <= 1.0
    else:
        assert service.keep_rate == one["keep"]
        assert service.ttft_p90_s == one["ttft_s"]
        assert service.speculator.weight_dtype == "bf16"


def test_magicdec_choice_is_one_choice(case):
    c, sd = case, case["rec"]["specdecode"]
    assert sd["available"]
    ctx = int(sd["context"])
    assert ctx == c["prompt"] + c["output"] // 2
    expected = _choice(sd)
    assert expected[3] == ("given" if c["rate"] is not None else "nearest")

    # the CLI over the same drafts, KV methods and budgets
    args = [
        "specdecode",
        "--model",
        c["model"],
        *_dep_args(c["n"], c["w"], c["k"]),
        "--draft",
        f"{c['speculator']},self",
        "--draft-kv",
        "full,streamingllm",
        "--budgets",
        ",".join(str(b) for b in PLANNER_BUDGETS),
        "--batch",
        str(c["batch"]),
        "--prompt-len",
        str(ctx),
        "--json",
    ]
    if c["rate"] is not None:
        args += ["--acceptance-rate", str(c["rate"])]
    cli = run_cli(*args, check_json=True)
    assert _choice(cli) == expected
    assert cli["speedup"] == pytest.approx(sd["speedup"], rel=1e-12)

    # the dashboard's recommendation page and its MagicDec explorer (same config's speedup)
    cfg = _cfg(c["model"], c["n"], c["w"], c["k"])
    view = compute.recommend_view(
        cfg, c["batch"], c["prompt"], c["output"], None, None, 1.0, c["rate"]
    )
    assert _choice(view["specdecode"]) == expected
    draft = "self" if sd["draft"] == "self" else c["speculator"]
    page3 = compute.specdecode_view(
        cfg, draft, sd["draft_kv"].split(":")[0], c["batch"], ctx, c["output"] // 2, c["rate"]
    )
    assert page3["heat"].loc[sd["draft_kv"], sd["gamma"]] == pytest.approx(sd["speedup"])

    # capacity's MagicDec choice at the same batch and context
    wl = fixed_workload(1.0, c["prompt"], c["output"])
    cands = candidates_for_gpu(
        c["model"], "h100", wl, 1e9, 1e9, 1.0, False, precisions=((c["w"], c["k"]),)
    )
    service = spec_decode_service(cands.deps[(c["w"], c["k"], c["n"], 1)], wl, c["rate"])
    i = list(BATCH_GRID).index(c["batch"])
    got = service.choices_p90[i]
    assert (got.draft, got.draft_kv, got.gamma, got.acceptance.kind) == expected
    assert got.t_sd_s == pytest.approx(sd["sd_tpot_s"], rel=1e-12)


@pytest.mark.parametrize("model,n", [("405b", 8), ("70b", 8)])
def test_without_data_the_basis_says_assumed_everywhere(model, n):
    """No published acceptance for these targets: recommend and capacity assume a rate and
    say so; the CLI does not rank what it has no data for (one line, exit 2)."""
    pins = DeploymentPins(model, gpu="h100", num_gpus=n)
    rec = recommend(pins, 1, prompt_len=8192, output_len=256).as_dict()
    sd = rec["specdecode"]
    assert sd["acceptance_basis"] == "assumed" and sd["acceptance_assumed"]
    assert sd["acceptance_source"].startswith("assumed 0.8 per token")
    assert any("assumed" in line for line in [rec["rationale"]])
    w, k = rec["precision"]["weight_dtype"], rec["precision"]["kv_dtype"]
    wl = fixed_workload(1.0, 8192, 256)
    cands = candidates_for_gpu(model, "h100", wl, 1e9, 1e9, 1.0, False, precisions=((w, k),))
    service = spec_decode_service(cands.deps[(w, k, n, 1)], wl, None)
    got = service.choices_p90[0]
    assert (got.draft, got.draft_kv, got.gamma, got.acceptance.kind) == _choice(sd)
    assert service.basis == "assumed 0.8"
    proc = run_cli(
        "specdecode", "--model", model, *_dep_args(n, w, k), "--draft", "8b", "--prompt-len",
        "8k", "--json",
    )  # fmt: skip
    # the CLI follows the same policy: it assumes the rate, labels it, and names the flag
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["acceptance_basis"] == "assumed"
    warning = [line for line in proc.stderr.splitlines() if "no published acceptance" in line]
    assert len(warning) == 1 and "--acceptance-rate" in warning[0] and "0.8" in warning[0]
    # critical-length over recommend's compressed drafts gives recommend's answer
    drafts = sorted({c.split("/")[0] for c in [sd["draft"] + "/"]} | {"self"})
    crit = run_cli(
        "critical-length", "--model", model, *_dep_args(n, w, k), "--batch", "1", "--draft",
        ",".join(drafts), "--draft-kv", "streamingllm", "--budgets", "256,512,1024,2048,4096",
        "--json", check_json=True,
    )  # fmt: skip
    assert crit["acceptance_basis"] == "assumed"
    for key in ("critical_seq_len", "pays_at_every_context", "critical_seq_len_text"):
        assert crit[key] == rec[key], key


def test_capacity_with_spec_reports_the_basis():
    out = run_cli(
        "capacity",
        "--model",
        "70b",
        "--qps",
        "2",
        "--prompt-len",
        "8k",
        "--output-len",
        "256",
        "--slo-ttft",
        "5",
        "--slo-tpot",
        "0.1",
        "--gpus",
        "h100",
        "--with-spec",
        "--json",
        check_json=True,
    )
    spec = [o for o in out["options"] if o["with_spec"]]
    assert spec and spec[0]["speculation"]["acceptance"] == "assumed 0.8"
    # where the helper runs is recorded (issue 15: the first stage's GPUs, or the target)
    info = spec[0]["speculation"]
    assert info["pp"] == spec[0]["pp"] and info["tp"] == spec[0]["tp"]
    if "specdecode" in info:
        assert info["draft_placement"] in ("first_stage", "self")
    if "speculator" in info:
        assert info["speculator_placement"] == "first_stage"
    assert out["critical_length"]["acceptance"] == "assumed 0.8"
    # the basis line names the speculation of the best option, and only of the best
    if out["best"]["with_spec"]:
        assert "MagicDec acceptance assumed 0.8" in out["basis"]
    else:
        assert "acceptance" not in out["basis"]
    assert _speculation_basis(spec[0]).endswith("MagicDec acceptance assumed 0.8")


def test_recommend_with_slos_is_one_answer_in_cli_app_and_capacity():
    """One question, SLOs included: Llama-3.1-8B, batch 32, 8k+256 tokens, replicas of one
    H100, TTFT <= 2 s and TPOT <= 12 ms. The CLI (entry point) and the dashboard's page give
    the same deployment, binding constraint and SLO check; capacity prices the same replica
    at the same per-replica batch with the same decode step, so its TPOT verdict agrees, and
    both state the same precision policy."""
    slo_ttft, slo_tpot = 2.0, 0.012
    cli = run_cli(
        "recommend", "--model", "8b", "--bsz", "32", "--gpu", "h100", "--num-gpus", "1",
        "--tp", "1", "--prompt-len", "8192", "--output-len", "256", "--slo-ttft",
        str(slo_ttft), "--slo-tpot", str(slo_tpot), "--json",
        check_json=True,
    )  # fmt: skip
    app = compute.recommend_view(
        _cfg("8b", 1, "bf16", "bf16"), 32, 8192, 256, slo_ttft, slo_tpot, 1.0, None
    )
    assert json.loads(json.dumps(app["deployment"])) == cli["deployment"]
    assert app["binding"] == cli["binding"] and app["slo_check"] == cli["slo_check"]
    dep = cli["deployment"]
    assert dep["ttft_s"] <= slo_ttft and dep["tpot_s"] <= slo_tpot and dep["dp"] > 1
    assert cli["binding"]["constraint"] == "slo_ttft"  # one replica at batch 32 takes 7.7 s

    w, k, b = dep["weight_dtype"], dep["kv_dtype"], dep["batch_per_replica"]
    wl = fixed_workload(1.0, 8192, 256)
    cands = candidates_for_gpu(
        "8b", "h100", wl, slo_ttft, slo_tpot, 1.0, False, precisions=((w, k),)
    )
    i = next(
        j
        for j in range(len(cands.batch))
        if (cands.tp[j], cands.pp[j], cands.batch[j]) == (dep["tp"], dep["pp"], b)
    )
    assert cands.d_p90[i] == pytest.approx(dep["tpot_s"], rel=1e-9)
    assert (cands.d_p90[i] <= slo_tpot) == (dep["tpot_s"] <= slo_tpot)
    plan = plan_capacity(DeploymentPins("8b"), wl, slo_ttft, slo_tpot, ["h100"], simulate=False)
    assert plan.as_dict()["precision_policy"] == cli["precision_policy"]


def test_capacity_page_serves_a_quantized_checkpoint_as_the_cli_does():
    """gpt-oss-20b is published in MXFP4 only: `perfmodel capacity` never serves it in another
    weight format (DeploymentPins.precisions: the checkpoint's, never upcast), and the
    dashboard's capacity view (which used to search every pair and answered fp8/fp8) gives the
    same options and the same cheapest fleet."""
    cli = run_cli(
        "capacity", "--model", "gpt-oss-20b", "--qps", "2", "--prompt-len", "4096",
        "--output-len", "256", "--gpus", "h100", "--json",
        check_json=True,
    )  # fmt: skip
    page = compute.capacity_view(
        _cfg("gpt-oss-20b", 1, "bf16", "bf16"), 2.0, 4096, 256, 2.0, 0.05, ("h100-sxm",)
    )
    pairs = {(o["weight_dtype"], o["kv_dtype"]) for o in cli["options"]}
    assert pairs == {("mxfp4", "fp8")}
    assert (
        set(zip(page["options"]["weight_dtype"], page["options"]["kv_dtype"], strict=True)) == pairs
    )
    best = json.loads(page["json"])["best"]
    assert (best["weight_dtype"], best["tp"], best["replicas"], best["cost_per_hour"]) == (
        cli["best"]["weight_dtype"], cli["best"]["tp"], cli["best"]["replicas"],
        cli["best"]["cost_per_hour"],
    )  # fmt: skip
