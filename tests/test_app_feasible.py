"""Dashboard defaults are feasible and infeasible choices say why (issue 24), through
streamlit.testing.v1.AppTest: the sidebar's TP default is the smallest that serves one
32k-token request (deployment search), a setup that does not fit shows what and by how
much instead of a number, and invalid URL values are named, not silently replaced."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

PAGES = Path(__file__).resolve().parent.parent / "app" / "pages"
SAFETY_S = 300  # AppTest's per-run limit: a safety net, not a speed budget
SHORT = re.compile(r"([\d,.]+) GB per GPU needed, ([\d,.]+) GB usable.*?\(([\d,.]+) GB short\)")


def run(page: str, **query) -> AppTest:
    at = AppTest.from_file(str(PAGES / page), default_timeout=SAFETY_S)
    for key, value in query.items():
        at.query_params[key] = str(value)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def gb(text: str) -> tuple[float, float, float]:
    need, usable, short = (float(x.replace(",", "")) for x in SHORT.search(text).groups())
    return need, usable, short


@pytest.mark.parametrize(
    ("model", "tp", "weights"),
    # 70B bf16 at TP2 needs 79.8 GB per H100 for 32k tokens (77.3 usable): TP4; 405B does
    # not fit 8 H100s at bf16 (810 GB of weights > 8 x 77.3): fp8 at TP8
    [("Llama-3.1-8B", 1, "bf16"), ("Llama-3.1-70B", 4, "bf16"), ("Llama-3.1-405B", 8, "fp8")],
)
def test_tp_default_is_the_smallest_that_fits(model, tp, weights):
    at = run("4_Recommend_and_capacity.py", model=model)
    assert at.selectbox(key="num_gpus").value == tp
    assert at.selectbox(key="weight_dtype").value == weights


def test_specprefill_says_what_does_not_fit_and_by_how_much():
    at = run("2_SpecPrefill_planner.py", sp_batch=16)  # 8B, 16 x 32k tokens on one H100
    assert at.metric[0].value == "does not fit"
    (err,) = [e.value for e in at.error]
    need, usable, short = gb(err)
    assert usable == 77.3 and need > usable  # H100: 80 GiB x 0.9 = 77.3 GB
    assert short == pytest.approx(need - usable, abs=0.11)
    assert "pays from" not in " ".join(i.value for i in at.info)
    assert not at.get("plotly_chart"), "no latency chart for a setup that does not run"


def test_specprefill_default_batch_fits():
    at = run("2_SpecPrefill_planner.py")
    assert not at.error
    assert at.number_input(key="sp_batch").value == 8  # the largest power of 2 <= 16 that fits
    assert at.metric[3].value.endswith(" s")  # a baseline TTFT, not "does not fit"


def test_critical_length_of_a_model_that_does_not_fit():
    at = run("1_Critical_sequence_length.py", model="Llama-3.1-70B", gpu="rtx4090", num_gpus=1)
    assert at.metric[0].value == "does not fit"
    need, usable, _ = gb(at.error[0].value)
    assert need > 140 and usable == pytest.approx(23.2, abs=0.05)  # 70B bf16 > 140 GB


def test_invalid_url_values_are_named():
    at = run("3_Speculative_decoding_planner.py", gpu="tpu-v9", sd_batch=-3, sd_kv="zip")
    (warning,) = [w.value for w in at.warning if w.value.startswith("Ignored in the URL")]
    for part in ("gpu=tpu-v9", "sd_batch=-3", "sd_kv=zip", "using h100-sxm", "using 32"):
        assert part in warning, warning
    assert at.query_params["gpu"] in (["h100-sxm"], "h100-sxm")  # the URL says what is shown


def test_pages_check_through_the_feasibility_layer_of_the_cli():
    """app.feasibility.verdict is planners.feasibility.check_request on the sidebar's
    DeploymentOptions: the same reasons, limits and values the CLI refuses with."""
    from app import compute, feasibility
    from perfmodel.core.options import DeploymentOptions
    from perfmodel.planners import feasibility as fz

    cfg = {
        "model": "Llama-3.1-70B", "gpu": "rtx4090", "num_gpus": 1, "weight_dtype": "bf16",
        "kv_dtype": "bf16", "profile": "auto", "mode": "auto",
    }  # fmt: skip
    o = compute.deployment_options(cfg)
    assert (o.model, o.gpu, o.num_gpus, o.tp, o.profile, o.mode) == (
        "Llama-3.1-70B", "rtx4090", 1, 1, None, None,
    )  # fmt: skip
    got = feasibility.verdict(cfg, 1, 1, 1)
    pinned = DeploymentOptions("Llama-3.1-70B", "rtx4090", 1, 1, weight_dtype="bf16")
    _, want = fz.check_request(pinned, 1, 1, 1)
    assert not got["ok"] and [r["kind"] for r in got["reasons"]] == ["memory"]
    assert got["reasons"] == [r.as_dict() for r in want.reasons]
    need, usable, short = gb(got["why"])
    assert (need, usable) == (round(want.reasons[0].value, 1), round(want.reasons[0].limit, 1))
    assert short == pytest.approx(need - usable, abs=0.11)
    # the context window: the layer's numbers, without the CLI's option
    long = feasibility.verdict({**cfg, "model": "Llama-3.1-8B", "gpu": "h100"}, 1, 200_000, 256)
    (r,) = long["reasons"]
    assert (r["kind"], r["limit"], r["value"]) == ("context", 131072, 200_255)
    assert "200,255 positions" in long["why"] and "69,183 over" in long["why"]
    assert "--" not in long["why"]


@pytest.mark.parametrize(
    ("page", "query", "label"),
    [
        ("3_Speculative_decoding_planner.py", {}, "Best speedup (modeled)"),
        ("4_Recommend_and_capacity.py", {}, "Recommendation (modeled)"),
        ("5_Model_explorer_and_validation.py", {}, "TTFT (modeled)"),
    ],
)
def test_an_infeasible_choice_names_what_does_not_fit_in_the_headline(page, query, label):
    at = run(page, model="Llama-3.1-70B", gpu="rtx4090", num_gpus=1, weight_dtype="bf16", **query)
    head = [m for m in at.metric if m.label == label]
    assert head and head[0].value == "does not fit"
    (err,) = [e.value for e in at.error if "does not fit" in e.value]
    assert err.startswith("Llama-3.1-70B (bf16) on 1x rtx4090 does not fit:")
    need, usable, short = gb(err)
    assert need > 140 and usable == pytest.approx(23.2, abs=0.05)
    assert "--" not in err


def test_a_prompt_beyond_the_window_stops_the_explorer_section_only():
    at = run("5_Model_explorer_and_validation.py", ex_prompt_len=200_000)
    assert at.metric[0].value == "does not fit"
    (err,) = [e.value for e in at.error]
    assert "context window of 131,072 tokens" in err and "--" not in err
    # the validation section below still runs (it does not depend on the sidebar)
    assert any("MAPE" in m.label for m in at.metric)


def test_a_draft_the_target_tp_does_not_divide_runs_at_its_own_tp():
    """Qwen2.5-72B at TP8 with a Qwen2.5-7B draft (28 heads): a result, and where it runs."""
    q = {"model": "Qwen2.5-72B", "num_gpus": 8}
    at = run("1_Critical_sequence_length.py", cl_drafts="Qwen2.5-7B", **q)
    assert not at.error
    assert at.metric[0].value not in ("does not fit", "")
    assert "Qwen2.5-7B" in at.multiselect(key="cl_drafts").options
    notes = " ".join(c.value for c in at.caption)
    assert "Draft Qwen2.5-7B runs on 4 of the target's 8 GPUs per TP group (TP4" in notes
    at = run("3_Speculative_decoding_planner.py", sd_draft="Qwen2.5-7B", **q)
    assert not at.error
    assert at.metric[0].value.endswith("x")  # a speedup
    assert "(TP4: its 28 attention heads" in " ".join(c.value for c in at.caption)
