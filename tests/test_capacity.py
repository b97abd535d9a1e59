"""capacity: monotone in QPS, workload files, reports, bad input through the entry point."""

from __future__ import annotations

import json

import numpy as np
import pytest

from perfmodel.core.options import DeploymentPins
from perfmodel.errors import PerfModelError
from perfmodel.planners.capacity.plan import plan_capacity
from perfmodel.planners.capacity.simulate import simulate_replica
from perfmodel.planners.capacity.workload import fixed_workload, load_workload
from tests.conftest import run_cli

SLO = (2.0, 0.05)


def _cost(qps, gpus=("h100", "a100")):
    plan = plan_capacity(
        DeploymentPins("8b"), fixed_workload(qps, 2048, 256), *SLO, gpus, simulate=False
    )
    return {o.gpu: o.cost_per_hour for o in plan.options}


def test_cost_monotone_in_qps():
    grid = [0.5, 1, 2, 5, 10, 20, 40]
    costs = [_cost(q) for q in grid]
    for gpu in costs[0]:
        series = [c[gpu] for c in costs]
        assert all(b >= a for a, b in zip(series, series[1:], strict=False)), series


def test_option_fields_and_slo():
    plan = plan_capacity(
        DeploymentPins("8b"), fixed_workload(4, 2048, 256), *SLO, ("h100",)
    ).as_dict()
    o = plan["options"][0]
    for key in (
        "gpu",
        "tp",
        "replicas",
        "gpus_needed",
        "batch",
        "cost_per_hour",
        "cost_per_mtok",
        "ttft_s",
        "tpot_s",
        "meets_slo",
        "with_spec",
    ):
        assert key in o
    assert o["meets_slo"] and o["ttft_s"] <= SLO[0] and o["tpot_s"] <= SLO[1]
    assert o["gpus_needed"] == o["replicas"] * o["tp"]
    assert plan["assumptions"] and plan["profile"]
    assert o["simulation"]["ttft_p50_s"] <= o["simulation"]["ttft_p90_s"]


def test_simulation_is_seeded_and_bounded():
    step = np.full(8, 0.01)
    args = (2.0, 8, lambda p: 0.05 + 0 * p, step, np.array([1000.0]), np.array([64.0]))
    a, b = simulate_replica(*args, n_requests=400), simulate_replica(*args, n_requests=400)
    assert a == b and a["stable"]


def test_workload_files(tmp_path):
    rng = np.random.default_rng(1)
    n = 200
    t = np.cumsum(rng.exponential(0.5, n))
    rows = [
        {"prompt_len": int(p), "output_len": int(o), "arrival_time": float(x)}
        for p, o, x in zip(rng.integers(500, 3000, n), rng.integers(50, 300, n), t, strict=True)
    ]
    csv = tmp_path / "w.csv"
    csv.write_text(
        "prompt_len,output_len,arrival_time\n"
        + "".join(f"{r['prompt_len']},{r['output_len']},{r['arrival_time']}\n" for r in rows)
    )
    jl = tmp_path / "w.jsonl"
    jl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    a, b = load_workload(csv), load_workload(jl)
    assert a.qps == pytest.approx(b.qps) and a.qps == pytest.approx((n - 1) / (t[-1] - t[0]))
    assert a.prompt_p90 >= a.prompt_mean
    bad = tmp_path / "bad.csv"
    bad.write_text("prompt_len,arrival_time\n1,2\n")
    with pytest.raises(PerfModelError, match="missing column"):
        load_workload(bad)
    out = run_cli(
        "capacity",
        "--model",
        "8b",
        "--workload",
        str(csv),
        "--gpus",
        "h100",
        "--json",
        check_json=True,
    )
    assert out["workload"]["n_requests"] == n


def test_reports(tmp_path):
    html_path, md_path = tmp_path / "r.html", tmp_path / "r.md"
    for path in (html_path, md_path):
        proc = run_cli(
            "capacity",
            "--model",
            "8b",
            "--qps",
            "3",
            "--prompt-len",
            "2k",
            "--output-len",
            "256",
            "--gpus",
            "h100,a100",
            "--report",
            str(path),
        )
        assert proc.returncode == 0, proc.stderr
    text = html_path.read_text()
    assert text.count('class="plotly-graph-div"') >= 2
    assert text.count("plotly.js v") <= 1 or text.count('<script type="text/javascript">/**') <= 1
    assert "modeled" in text and "vllm-0.24.0-h100" in text
    # each Markdown table (options; how each option is priced) keeps one column count
    for section in md_path.read_text().split("\n## ")[1:3]:
        rows = [line for line in section.splitlines() if line.startswith("|")]
        assert len(rows) >= 3, section
        counts = {len(line.strip("|").split(" | ")) for line in rows if not line.startswith("|---")}
        assert len(counts) == 1, section


def test_options_carry_the_basis_predict_gives_their_deployment(tmp_path):
    """Each feasible option's basis_by_class (JSON and report) is what predict --json says of
    the same deployment (one GPU type with a measured table, one transferred or roofline)."""
    import contextlib
    import io

    from perfmodel.cli.main import main

    def run(*argv):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            assert main(list(argv)) == 0
        return out.getvalue()

    md = tmp_path / "r.md"
    args = ("--model", "8b", "--qps", "4", "--prompt-len", "2k", "--output-len", "128")
    plan = json.loads(run("capacity", *args, "--gpus", "h100,l40s", "--report", str(md), "--json"))
    report = md.read_text()
    fleets = [o for o in plan["options"] if o["tp"] is not None]
    assert len(fleets) == 2
    for o in fleets:
        pred = json.loads(run(
            "predict", "--model", "8b", "--gpu", o["gpu"], "--num-gpus", str(o["tp"] * o["pp"]),
            "--tp", str(o["tp"]), "--pp", str(o["pp"]), "--weight-dtype", o["weight_dtype"],
            "--kv-dtype", o["kv_dtype"], "--json",
        ))  # fmt: skip
        assert o["basis_by_class"] == pred["basis_by_class"]
        assert {"gemm", "attention_decode", "allreduce", "overheads"} <= set(o["basis_by_class"])
        name = f"| {o['gpu']} {o['replicas']} x TP{o['tp']} {o['weight_dtype']}/{o['kv_dtype']} |"
        for kind, words in o["basis_by_class"].items():
            assert f"{name} {kind} | {words} |" in report
    assert any(w.startswith("measured") for w in fleets[0]["basis_by_class"].values())


@pytest.mark.parametrize(
    "args",
    [
        ("--gpus", "h1000"),
        ("--qps", "0"),
        ("--qps", "-2"),
        ("--slo-ttft", "0.0001"),
        ("--prices", "h100=abc"),
        ("--prices", "h100"),
    ],
)
def test_bad_input_exit_2(args):
    base = ["capacity", "--model", "8b", "--qps", "2", "--gpus", "h100"]
    proc = run_cli(*base, *args)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    if args[0] == "--slo-ttft":
        assert "impossible: the best is" in proc.stderr
