"""Correct answers (issue 14) through the entry point: no recommendation of a slowdown,
capacity ranked after the simulation, one form of the critical length, one acceptance policy
for critical-length and recommend, and profile's memory check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perfmodel.cli.main import main
from perfmodel.planners.capacity.plan import CapacityPlan, rank_key
from perfmodel.planners.capacity.records import FeasibleCapacity, InfeasibleCapacity
from perfmodel.planners.critical import from_raw

FIXTURES = Path(__file__).parent / "fixtures"
TINY = str(FIXTURES / "profiler" / "tiny-llama" / "config.json")
SMALL = ("--model", "8b", "--num-gpus", "1")


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    got = capsys.readouterr()
    return code, got.out, got.err


def cli_json(capsys, *argv: str) -> tuple[dict, str]:
    code, out, err = cli(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out), err


# --- 1. never recommend what the plan shows to be worse than the baseline ------------------
SKIP = ("specprefill", *SMALL, "--speculator", "1b", "--batch", "1", "--prompt-len", "2k")


def test_specprefill_skips_a_slowdown(capsys):
    out, _ = cli_json(capsys, *SKIP)
    assert out["recommended_keep_rate"] is None and out["pays"] is False
    assert out["reason"].startswith("skip SpecPrefill")
    best = next(r for r in out["rows"] if r["keep_rate"] == out["best_keep_rate"])
    assert best["meets_quality"] and best["speedup"] <= 1.0  # why it is skipped
    code, text, _ = cli(capsys, *SKIP)
    assert code == 0
    flat = " ".join(text.split())
    assert "Skip SpecPrefill" in flat and "* recommended." not in flat
    assert "Use keep rate" not in flat


@pytest.mark.parametrize("prompt", ["2k", "16k", "64k"])
def test_recommended_keep_rate_always_beats_the_baseline(capsys, prompt):
    sp, _ = cli_json(
        capsys, "specprefill", *SMALL, "--speculator", "1b", "--batch", "1", "--prompt-len", prompt
    )
    rows = {r["keep_rate"]: r for r in sp["rows"]}
    if sp["recommended_keep_rate"] is None:
        assert not sp["pays"] and sp["reason"].startswith("skip SpecPrefill")
    else:
        row = rows[sp["recommended_keep_rate"]]
        assert sp["pays"] and row["speedup"] > 1.0 and row["fits"] and row["meets_quality"]
    rec, _ = cli_json(
        capsys, "recommend", *SMALL, "--batch", "1", "--prompt-len", prompt, "--output-len", "64"
    )
    section = rec["specprefill"]
    assert section["keep_rate"] == sp["recommended_keep_rate"]
    assert section["pays"] == sp["pays"]
    if not section["pays"]:  # the recommended TTFT is the baseline's, not the slowdown's
        assert section["ttft_s"] == section["baseline_ttft_s"]


def test_speculative_decoding_without_gain_is_not_recommended(capsys):
    sd, _ = cli_json(capsys, "specdecode", *SMALL, "--acceptance-rate", "0.05")
    assert sd["speedup"] <= 1.0 and sd["pays"] is False
    code, text, _ = cli(capsys, "specdecode", *SMALL, "--acceptance-rate", "0.05")
    assert code == 0 and "not recommended" in " ".join(text.split())
    rec, _ = cli_json(capsys, "recommend", *SMALL, "--acceptance-rate", "0.05")
    assert rec["specdecode"]["pays"] is False
    assert rec["specdecode"]["tpot_s"] == rec["specdecode"]["baseline_tpot_s"]


# --- 2. capacity ranks after every adjustment and says why --------------------------------
def _opt(gpu, meets, cost, ttft, tpot=0.02, why=None) -> FeasibleCapacity:
    return FeasibleCapacity(
        gpu, False, meets, "p", weight_dtype="fp8", kv_dtype="fp8", tp=8, pp=1,
        gpus_per_node=8, nodes=int(cost) // 8, replicas=int(cost // 8), gpus_needed=int(cost),
        batch=16, price_per_gpu_hour=1.0, cost_per_hour=float(cost), cost_per_mtok=1.0,
        ttft_s=ttft, tpot_s=tpot, utilization=0.5, qps_per_replica_max=1.0,
        binding_constraint="TTFT SLO", prefill_s=0.1, decode_step_s=0.01, speculation=None,
        index=0, why=why,
    )  # fmt: skip


def test_rank_key_by_hand():
    # $16/h at 1.2 s beats $16/h at 1.5 s (tie on cost, lower TTFT); $8/h missing an SLO and
    # $24/h come after
    a, b = _opt("a", True, 16, 1.5), _opt("b", True, 16, 1.2)
    c, d = _opt("c", False, 8, 0.5), _opt("d", True, 24, 0.4)
    e = InfeasibleCapacity("e", False, "p", "nothing fits")
    assert sorted([a, e, b, c, d], key=rank_key) == [b, a, d, c, e]
    plan = CapacityPlan("m", None, 2.0, 0.05, [a, c, e, d, b], {}, [], "p")
    assert [o.gpu for o in plan.ranked()] == ["b", "a", "d", "c", "e"]
    infeasible = e.as_dict()
    assert infeasible["meets_slo"] is False and infeasible["reason"] == "nothing fits"
    assert infeasible["cost_per_hour"] is None and infeasible["gpus_needed"] is None
    assert plan.why().startswith("b wins: $16.00/h")
    assert "ties on cost with a, lower TTFT p90 (1.2 s vs 1.5 s)" in plan.why()


def test_capacity_reranks_after_the_simulation_adds_replicas(capsys):
    """The reported case: int4/fp8 TP8 at batch 15 needs 2 replicas (16 GPUs) by the
    formulas, but the simulation adds one (24 GPUs, $43.20/h at $1.80/GPU-h); a candidate
    meeting both SLOs on 16 GPUs ($28.80/h) must win. With a price of $1/GPU-h the cost is
    the GPU count."""
    args = ("capacity", "--model", "70b", "--qps", "2", "--gpus", "a100")
    out, _ = cli_json(capsys, *args)
    best = out["best"]
    assert best["meets_slo"] and best["gpus_needed"] == 16
    assert best["cost_per_hour"] == pytest.approx(16 * 1.80)
    assert "the simulation added 1 replica" in best["why"] and "$43.20/h" in best["why"]
    assert out["why"].startswith("a100-80gb wins: $28.80/h")
    one, _ = cli_json(capsys, *args, "--prices", "a100=1")
    assert one["best"]["cost_per_hour"] == pytest.approx(one["best"]["gpus_needed"]) == 16


def test_capacity_options_are_ranked(capsys):
    out, _ = cli_json(capsys, "capacity", "--model", "8b", "--qps", "4", "--gpus", "a100,h100,l40s")
    opts = out["options"]
    assert [o["rank"] for o in opts] == list(range(1, len(opts) + 1))
    keys = [
        (not o["meets_slo"], o["cost_per_hour"] or float("inf"), o["ttft_s"] or float("inf"))
        for o in opts
    ]
    assert keys == sorted(keys)
    assert out["best"] == opts[0] and out["best"]["why"]


# --- 3. one representation of the critical sequence length --------------------------------
def test_critical_length_three_answers(capsys):
    base = ("critical-length", *SMALL, "--batch", "1,256")
    out, _ = cli_json(capsys, *base)
    every, length = out["curve"]
    assert every["critical_seq_len"] is None and every["pays_at_every_context"] is True
    assert every["critical_seq_len_text"] == "pays at every context"
    assert length["critical_seq_len"] > 1 and length["pays_at_every_context"] is False
    assert length["critical_seq_len_text"] == f"{length['critical_seq_len']} tokens"
    never, _ = cli_json(
        capsys, "critical-length", *SMALL, "--batch", "1", "--acceptance-rate", "0.05"
    )
    assert never["critical_seq_len"] is None and never["pays_at_every_context"] is False
    assert never["critical_seq_len_text"] == "does not pay at any context up to 131072"
    code, text, _ = cli(capsys, *base)
    assert code == 0 and "pays at every context" in text and "1 (pays" not in text


def test_recommend_uses_the_same_form(capsys):
    rec, _ = cli_json(capsys, "recommend", *SMALL, "--batch", "1", "--prompt-len", "8k")
    assert rec["critical_seq_len"] is None and rec["pays_at_every_context"] is True
    assert rec["critical_seq_len_text"] == "pays at every context" and rec["above_critical"]
    code, text, _ = cli(capsys, "recommend", *SMALL, "--batch", "1", "--prompt-len", "8k")
    assert code == 0 and "pays at every context" in text


def test_typed_answer_and_report_figure():
    assert from_raw(float("nan"), 8, 4096).text() == "does not pay at any context up to 4096"
    assert from_raw(1.0, 8, 4096).as_dict() == {
        "critical_seq_len": None,
        "pays_at_every_context": True,
        "critical_seq_len_text": "pays at every context",
    }
    assert from_raw(3297.0, 256, 131072).text() == "3297 tokens"
    pytest.importorskip("plotly")
    from perfmodel.reports import critical_figure

    fig = critical_figure(
        {
            "gpu": "h100",
            "config": "TP8",
            "acceptance": "published",
            "batch": [1, 64, 256],
            "critical_seq_len": [None, 900, 3297],
            "pays_at_every_context": [True, False, False],
        },
        "p",
    )
    ys = [y for trace in fig.data for y in trace.y]
    assert ys == [900, 3297]  # nothing drawn as a number of tokens for batch 1
    notes = [a.text for a in fig.layout.annotations]
    assert notes == ["batch 1: pays at every context"]


# --- 4. one acceptance policy: critical-length assumes what recommend assumes -------------
def test_critical_length_without_published_acceptance(capsys):
    out, err = cli_json(capsys, "critical-length", "--model", "70b", "--num-gpus", "8")
    assert out["acceptance_basis"] == "assumed" and out["acceptance_rate"] == 0.8
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "--acceptance-rate" in lines[0]
    assert "no published acceptance data" in lines[0]
    given, err = cli_json(
        capsys, "critical-length", "--model", "70b", "--num-gpus", "8", "--acceptance-rate", "0.7"
    )
    assert given["acceptance_basis"] == "given" and not err.strip()


# --- 5. profile checks memory before each point -------------------------------------------
def test_profile_refuses_a_point_that_cannot_fit(capsys, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from profiler import memcheck

    monkeypatch.setattr(memcheck, "host_available_bytes", lambda *a: 24e9)
    out = tmp_path / "x.csv"
    code, _, err = cli(
        capsys, "profile", "--runner", "torch", "--model", "70b", "--device", "cpu", "--out",
        str(out), "--no-progress",
    )  # fmt: skip
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, err
    assert "needs 282.8 GB" in lines[0] and "the host has 24.0 GB available" in lines[0]
    assert not out.exists()  # no header-only CSV left behind


def test_profile_records_later_points_that_cannot_fit(capsys, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from perfmodel.specs.models import load_model
    from profiler import memcheck

    spec = load_model(TINY)
    small = memcheck.estimate(spec, "fp32", 1, 16, 4).total
    large = memcheck.estimate(spec, "fp32", 64, 1024, 4).total
    assert small < large
    monkeypatch.setattr(memcheck, "host_available_bytes", lambda *a: (small + large) / 2)
    out = tmp_path / "x.csv"
    data, _ = cli_json(
        capsys, "profile", "--runner", "torch", "--model", TINY, "--device", "cpu", "--out",
        str(out), "--batch", "1,64", "--prompt-len", "16,1024", "--output-len", "4",
        "--repeats", "1", "--warmup", "0", "--no-progress",
    )  # fmt: skip
    import csv

    rows = list(csv.DictReader(out.open()))
    by_point = {(r["batch_size"], r["prompt_len"]): r for r in rows}
    assert by_point[("1", "16")]["status"] == "ok"
    refused = by_point[("64", "1024")]
    assert refused["status"] == "oom" and refused["ttft_s"] == ""
    assert refused["note"].startswith("not run: batch 64 x 1024+4 tokens needs")
    assert data["rows_written"] == 4 and data["oom"] >= 1


@pytest.mark.parametrize(
    "argv",
    [
        ("recommend", *SMALL, "--draft", "1b,,self"),
        ("specdecode", *SMALL, "--draft", "1b,,self"),
        ("specdecode", *SMALL, "--draft", "1b,"),
        ("critical-length", *SMALL, "--draft-kv", "full,,streamingllm:512"),
    ],
)
def test_draft_lists_with_an_empty_item_are_refused(capsys, argv):
    code, _, err = cli(capsys, *argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "empty item" in lines[0] and "draft" in lines[0]
