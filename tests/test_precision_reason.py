"""recommend's precision line says what forced the choice (planners.precision_policy,
precision_reason): memory, an SLO (naming it and what would merely fit without it), or the
checkpoint's own format (quantization_config). Through the entry point, in process."""

from __future__ import annotations

import contextlib
import io
import json
import re

from perfmodel.cli.main import main


def recommend(*args: str) -> dict:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["recommend", *args, "--json"])
    assert rc == 0, err.getvalue()
    return json.loads(out.getvalue())


def text(*args: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(["recommend", *args]) == 0
    return re.sub(r"[\s│╭╮╰╯─]+", " ", out.getvalue())  # the panel wraps: read one line


def test_memory_sets_the_precision_and_the_line_says_so_by_policy_order():
    d = recommend("--model", "70b", "--bsz", "1", "--gpu", "h100")
    dep = d["deployment"]
    assert d["binding"]["constraint"] == "memory"
    assert d["precision"]["reason"] == (
        "the first of bf16/bf16, fp8/bf16, fp8/fp8 that serves batch 1 on the fewest GPUs "
        f"({dep['num_gpus']}; {dep['memory_per_gpu_gb']:.1f} of {dep['capacity_gb']:.1f} GB "
        "per GPU); int4/fp8 only when none of them serves it"
    )


def test_an_slo_that_forces_int4_is_named_with_what_would_merely_fit():
    # the issue-20 case: no quality precision on H100 reaches 8 ms TPOT, so int4 is the
    # fallback; the line used to read "the first of bf16/bf16, fp8/bf16, fp8/fp8 ..."
    args = ("--model", "70b", "--bsz", "1", "--gpu", "h100")
    d = recommend(*args, "--slo-tpot", "0.008")
    plain = recommend(*args)["deployment"]  # what fits without the SLO
    reason = d["precision"]["reason"]
    assert (d["precision"]["weight_dtype"], d["binding"]["constraint"]) == ("int4", "slo_tpot")
    assert reason.startswith("int4/fp8, the fallback (")
    assert (
        "no deployment on h100-sxm at bf16/bf16, fp8/bf16, fp8/fp8 meets --slo-tpot 0.008 s"
        in reason
    )
    assert "the first of" not in reason
    without = f"without the SLOs, {plain['weight_dtype']}/{plain['kv_dtype']} on "
    assert without + f"{plain['num_gpus']}x h100-sxm would hold it" in reason
    assert "meets --slo-tpot 0.008 s" in text(*args, "--slo-tpot", "0.008")


def test_an_slo_that_forces_a_larger_deployment_is_named():
    args = ("--model", "8b", "--bsz", "8", "--gpu", "h100", "--prompt-len", "4k")
    d = recommend(*args, "--output-len", "256", "--slo-ttft", "0.3")
    plain = recommend(*args, "--output-len", "256")["deployment"]
    dep, reason = d["deployment"], d["precision"]["reason"]
    assert d["binding"]["constraint"] == "slo_ttft" and dep["num_gpus"] > plain["num_gpus"]
    assert reason.startswith(
        f"the first of bf16/bf16, fp8/bf16, fp8/fp8 that serves batch 8 and meets --slo-ttft "
        f"0.3 s on the fewest GPUs ({dep['num_gpus']}; "
    )
    assert (
        f"without the SLOs, {plain['weight_dtype']}/{plain['kv_dtype']} on "
        f"{plain['num_gpus']}x h100-sxm would hold it; int4/fp8 only when none of them does"
    ) in reason


def test_the_checkpoint_format_that_fixes_the_weights_is_named():
    # gpt-oss is published only in MXFP4 (quantization_config): served so, never upcast
    d = recommend("--model", "gpt-oss-120b", "--bsz", "8", "--gpu", "h100")
    reason = d["precision"]["reason"]
    assert d["precision"]["weight_dtype"] == "mxfp4"
    assert reason.startswith(
        "weights in mxfp4, the checkpoint's own format (its quantization_config: served as "
        "published, never upcast); the first of mxfp4/bf16, mxfp4/fp8 that serves batch 8"
    )
    assert "int4" not in reason and "bf16/bf16" not in reason and "SLO" not in reason


def test_an_slo_that_changes_only_the_precision_binds_not_memory():
    # 8B at batch 1 fits on one H100 at bf16 (TPOT ~8.3 ms); a 7 ms TPOT SLO is met on the
    # same one GPU at fp8 weights. The binding line used to say "memory: ... every SLO given
    # is met there", as if the SLO had changed nothing.
    args = ("--model", "8b", "--bsz", "1", "--gpu", "h100")
    plain = recommend(*args)
    d = recommend(*args, "--slo-tpot", "0.007")
    dep, was = d["deployment"], plain["deployment"]
    assert dep["num_gpus"] == was["num_gpus"] == 1
    assert (was["weight_dtype"], dep["weight_dtype"]) == ("bf16", "fp8")
    assert was["tpot_s"] > 0.007 >= dep["tpot_s"]
    assert d["binding"]["constraint"] == "slo_tpot"
    assert d["binding"]["reason"].startswith(
        "--slo-tpot: the smallest deployment that fits, 1x h100-sxm (bf16/bf16), misses it ("
    )
    assert (
        "1x h100-sxm (fp8/bf16), the same size at another precision, is the cheapest"
        in (d["binding"]["reason"])
    )
    assert plain["binding"]["constraint"] == "memory"
