"""recommend: precision choice, planner sections, JSON keys through the real entry point."""

from __future__ import annotations

import pytest

from perfmodel.core.options import DeploymentPins
from perfmodel.errors import OutOfMemoryError
from perfmodel.planners.precision import choose_precision
from perfmodel.planners.recommend import recommend
from perfmodel.planners.speculation.deploy import (
    default_speculator,
    scores_whole_prompt,
    smaller_models,
)
from perfmodel.specs.models import list_models, resolve_model
from tests.conftest import run_cli


def test_405b_bf16_on_8xh100_is_converted_to_fp8_with_reason():
    choice, dep = choose_precision("405b", "h100", 8, None, 64, 4096, 512)
    assert (choice.weight_dtype, choice.kv_dtype) == ("fp8", "bf16")
    assert choice.fits and dep.weight_dtype == "fp8"
    assert "405B in bf16 needs 101.5 GB/GPU of weights on 8x h100-sxm" in choice.reason
    assert "77.3 GB usable" in choice.reason


def test_nothing_fits_plans_one_replica_and_names_gpus_needed():
    choice, _ = choose_precision("405b", "h100", 8, None, 64, 32768, 512)
    assert not choice.fits
    # quality first: fp8 weights and KV (int4 would hold more sequences)
    assert (choice.weight_dtype, choice.kv_dtype) == ("fp8", "fp8")
    largest = choice.max_batch["fp8/fp8"]
    assert largest < choice.max_batch["int4/fp8"]
    # 64 sequences of 33k tokens: KV heads stop shrinking at TP8, so replicas are needed,
    # and the plan is one replica at its share of the batch
    replicas = -(-64 // largest)
    assert choice.gpus_needed == 8 * replicas and choice.multi_node
    assert f"{replicas} data-parallel replicas" in choice.reason
    assert choice.batch == -(-64 // replicas) <= largest


def test_batch_one_not_fitting_raises():
    with pytest.raises(OutOfMemoryError, match="even at batch 1"):
        choose_precision("405b", "rtx4090", 1, None, 1, 4096, 256)


def test_default_speculator_same_family_then_vocabulary():
    assert default_speculator("405b", 8) == "Llama-3.1-8B"
    assert default_speculator("70b", 8) == "Llama-3.1-8B"
    assert default_speculator("8b", 1) == "Llama-3.2-1B"
    assert default_speculator("mistral-7b") is None


def test_default_speculator_reads_the_family_first_with_the_full_scan_answer():
    """default_speculator looks at the target's family before every shipped model: the
    answer must be the first model of the full smaller_models order that serves."""
    assert all(resolve_model(n).name == n for n in list_models())  # names select the family
    for name in list_models():
        target = resolve_model(name)
        for tp in (1, 2, 4, 8):
            for role in ("speculator", "draft"):
                full = next(
                    (
                        m.name
                        for m in smaller_models(target)
                        if m.num_heads % tp == 0
                        and not (role == "speculator" and scores_whole_prompt(m))
                    ),
                    None,
                )
                assert default_speculator(target, tp, role) == full, (name, tp, role)


def test_recommend_sections_consistent():
    r = recommend(DeploymentPins("70b", gpu="h100", num_gpus=8), 64, 8192, 256)
    d = r.as_dict()
    assert d["fits"] and d["baseline"]["tpot_s"] > 0
    sd = d["specdecode"]
    if sd["pays"]:
        assert sd["tpot_s"] < d["baseline"]["tpot_s"]
    assert d["specprefill"]["speculator"] == "Llama-3.1-8B"
    assert d["rationale"]


def test_recommend_json_through_entry_point():
    out = run_cli(
        "recommend",
        "--model",
        "405b",
        "--bsz",
        "64",
        "--prompt-len",
        "4k",
        "--json",
        check_json=True,
    )
    for key in (
        "precision",
        "fits",
        "specprefill",
        "specdecode",
        "critical_seq_len",
        "baseline",
        "memory",
        "rationale",
        "profile",
        "basis",
    ):
        assert key in out
    assert set(out["precision"]) >= {"weight_dtype", "kv_dtype", "reason"}
    assert out["precision"]["weight_dtype"] == "fp8"
    assert set(out["specprefill"]) >= {
        "keep_rate",
        "speculator",
        "ttft_s",
        "baseline_ttft_s",
        "speedup",
        "pays",
    }
    assert set(out["specdecode"]) >= {
        "draft",
        "draft_kv",
        "gamma",
        "speedup",
        "tpot_s",
        "acceptance_rate",
        "acceptance_source",
    }
    assert set(out["baseline"]) >= {"ttft_s", "tpot_s", "e2e_s", "throughput_tok_s"}
    assert out["basis"].startswith("modeled")


def test_recommend_human_and_errors():
    proc = run_cli("recommend", "--model", "405b", "--bsz", "64")
    assert proc.returncode == 0 and proc.stdout.startswith("serves batch 64: ")
    for args in (
        ("--model", "nope"),
        ("--model", "405b", "--gpu", "rtx4090", "-n", "1"),
        ("--model", "70b", "--slo-ttft", "-1"),
    ):
        proc = run_cli("recommend", *args)
        assert proc.returncode == 2
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
