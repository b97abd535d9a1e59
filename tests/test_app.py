"""The Streamlit dashboard: every page runs at defaults and after a widget change, the
critical-length headline equals the CLI's answer, bad uploads show st.error, URLs restore."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app"
PAGES = {
    "home": APP / "Home.py",
    "critical": APP / "pages" / "1_Critical_sequence_length.py",
    "specprefill": APP / "pages" / "2_SpecPrefill_planner.py",
    "specdecode": APP / "pages" / "3_Speculative_decoding_planner.py",
    "recommend": APP / "pages" / "4_Recommend_and_capacity.py",
    "explorer": APP / "pages" / "5_Model_explorer_and_validation.py",
}
TIMEOUT = 300  # a safety net for a loaded machine, not a speed budget


def run(page: str, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(PAGES[page]), default_timeout=TIMEOUT)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    return at.run()


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def cli_json(*args: str) -> dict:
    code = "import sys; from perfmodel.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run(
        [sys.executable, "-c", code, *args, "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        timeout=600,  # safety net, not a speed budget
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def thousands(text: str) -> str:
    """The CLI's text as the pages write it: whole numbers with thousands separators."""
    return re.sub(r"\b\d{4,}\b", lambda m: f"{int(m.group()):,}", text)


def tokens(value: str) -> int:
    return int(re.sub(r"[^0-9]", "", value.split("tokens")[0]))


@pytest.mark.parametrize("page", list(PAGES))
def test_page_runs_at_defaults(page):
    at = run(page)
    assert_clean(at)
    assert at.title, "every page has a title"


def test_sidebar_change_recomputes_explorer():
    at = run("explorer")
    before = {m.label: m.value for m in at.metric}
    at.selectbox(key="gpu").set_value("a100-80gb").run()
    assert_clean(at)
    after = {m.label: m.value for m in at.metric}
    assert after["TTFT (modeled)"] != before["TTFT (modeled)"]
    at.radio(key="ex_phase").set_value("decode step").run()
    at.number_input(key="ex_batch").set_value(32).run()
    assert_clean(at)
    assert at.query_params["ex_batch"] == ["32"] or at.query_params["ex_batch"] == "32"
    assert any("Modeled" in c.value for c in at.caption)


def test_critical_length_headline_equals_cli():
    at = run("critical")
    assert_clean(at)
    args = ("critical-length", "--model", "Llama-3.1-8B", "--gpu", "h100-sxm", "--num-gpus", "1")
    args += ("--draft", "Llama-3.2-1B", "--draft-kv", "streamingllm:512")
    expected = cli_json(*args, "--batch", "256")
    assert tokens(at.metric[0].value) == expected["critical_seq_len"]
    assert at.metric[0].value == thousands(expected["critical_seq_len_text"])
    # an acceptance assumption and another batch: still the CLI's answer, in its one form
    at.radio(key="cl_acceptance").set_value("rate").run()
    at.slider(key="cl_rate").set_value(0.7).run()
    at.selectbox(key="cl_batch").set_value(64).run()
    assert_clean(at)
    expected = cli_json(*args, "--batch", "64", "--acceptance-rate", "0.7")
    assert at.metric[0].value == thousands(expected["critical_seq_len_text"])


def test_specprefill_widget_change():
    at = run("specprefill", {"model": "Llama-3.1-70B", "num_gpus": "8"})
    assert_clean(at)
    assert at.selectbox(key="sp_speculator").value == "Llama-3.1-8B"
    loose = {m.label: m.value for m in at.metric}
    at.slider(key="sp_max_drop").set_value(3.0).run()
    assert_clean(at)
    assert {m.label: m.value for m in at.metric} != loose


def test_specdecode_widget_change_and_oom():
    at = run("specdecode")
    assert_clean(at)
    assert "x" in at.metric[0].value  # a best speedup at the defaults
    at.number_input(key="sd_batch").set_value(2048).run()
    assert not at.exception
    # the target alone does not hold 2048 x 8k tokens: the headline says so, with the GB
    assert at.metric[0].value == "does not fit"
    assert any("GB per GPU needed, 77.3 GB usable" in e.value for e in at.error)
    at.number_input(key="sd_batch").set_value(8).run()
    at.radio(key="sd_acceptance").set_value("rate").run()
    assert_clean(at)


def test_recommend_widget_change():
    at = run("recommend")
    assert_clean(at)
    at.number_input(key="rc_batch").set_value(4).run()
    assert_clean(at)
    assert at.get("download_button")
    # the deployment that serves the batch leads the recommendation (issue 15)
    assert any(m.value.startswith("**serves batch 4: ") for m in at.markdown)


def test_query_params_reproduce_a_view():
    at = run(
        "specdecode", {"gpu": "h200", "sd_batch": "8", "sd_kv": "snapkv", "sd_acceptance": "rate"}
    )
    assert_clean(at)
    assert at.selectbox(key="gpu").value == "h200"
    assert at.number_input(key="sd_batch").value == 8
    assert at.selectbox(key="sd_kv").value == "snapkv"
    # nonsense in the URL falls back to the defaults instead of failing
    at = run("specdecode", {"gpu": "tpu-v9", "sd_batch": "-3"})
    assert_clean(at)
    assert at.selectbox(key="gpu").value == "h100-sxm"


def test_bad_input_is_a_message_not_a_traceback():
    at = run("critical", {"cl_drafts": "self", "cl_kv": "full"})
    assert not at.exception and not at.error
    assert at.warning and "compressed KV cache" in at.warning[0].value
    assert "--" not in at.warning[0].value  # the page's controls, not CLI flags


def test_uploaded_csv_with_wrong_columns(tmp_path):
    from app import compute
    from perfmodel.errors import PerfModelError

    with pytest.raises(PerfModelError, match="missing column"):
        compute.uploaded_validation(b"a,b\n1,2\n", "bad.csv")
    with pytest.raises(PerfModelError, match="limit"):
        compute.uploaded_validation(b"x" * (compute.MAX_UPLOAD_BYTES + 1), "big.csv")
    good = (ROOT / "validation" / "published" / "specprefill_8b_batch1.csv").read_bytes()
    res = compute.uploaded_validation(good, "mine.csv")
    assert 0 <= res["points"]["ape"].mean() < 0.5
    assert res["notes"] == []


def test_uploaded_csv_says_which_rows_were_dropped():
    """Rows the validator drops (NaN time) are counted in what the page shows, not lost."""
    import pandas as pd

    from app import compute

    frame = pd.read_csv(ROOT / "validation" / "published" / "specprefill_8b_batch1.csv")
    frame.loc[:1, "ttft_s"] = float("nan")
    res = compute.uploaded_validation(frame.to_csv(index=False).encode(), "mine.csv")
    assert len(res["notes"]) == 1 and "dropped 2 rows" in res["notes"][0]
    assert "ttft_s" in res["notes"][0]
    assert len(res["points"]) == len(frame) - 2


def _figure(at: AppTest, title: str) -> dict:
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        if spec["layout"]["title"]["text"].startswith(title):
            return spec
    raise AssertionError(f"no chart titled {title!r}")


def _values(y) -> list[float]:
    import base64

    import numpy as np

    if isinstance(y, dict):  # plotly's typed-array encoding
        return np.frombuffer(base64.b64decode(y["bdata"]), dtype=y["dtype"]).tolist()
    return [float("nan") if v is None else float(v) for v in y]


def _page_text(at: AppTest) -> list[str]:
    kinds = ("markdown", "caption", "error", "warning", "info", "metric")
    out = []
    for kind in kinds:
        for el in at.get(kind):
            out.append(str(getattr(el, "value", "")) + " " + str(getattr(el, "label", "")))
    return out


def test_critical_length_page_draws_every_context_as_a_band():
    at = run("critical", {"cl_acceptance": "rate", "cl_rate": "0.7"})
    assert_clean(at)
    spec = _figure(at, "Critical length vs batch")
    ys = [v for trace in spec["data"] for v in _values(trace["y"])]
    assert ys and all(v != v or v > 1 for v in ys)  # nan (no point) or a real length
    # a band in data units around batch 1 (shapes on a log axis take data values), named
    # in the legend, no rotated label over the ticks
    bands = [s for s in spec["layout"]["shapes"] if s["name"].startswith("pays at every context")]
    assert bands and all(s["xref"] == "x" and s["yref"] == "paper" for s in bands)
    assert any(s["x0"] < 1 < s["x1"] for s in bands)
    assert not [a for a in spec["layout"].get("annotations", []) if a.get("textangle")]


@pytest.mark.parametrize("page", ["critical", "specdecode"])
def test_no_published_acceptance_offers_an_assumed_rate(page):
    at = run(page, {"model": "Llama-3.1-70B", "num_gpus": "8"})
    assert_clean(at)
    labels = [s.label for s in at.slider]
    assert "Assumed acceptance rate (per token)" in labels
    assert not at.radio or all(r.key not in ("cl_acceptance", "sd_acceptance") for r in at.radio)
    text = _page_text(at)
    assert any("assumed" in t.lower() for t in text)
    assert not [t for t in text if "--" in t], "the page names no CLI flags"
    key = "cl_rate" if page == "critical" else "sd_rate"
    before = [m.value for m in at.metric]
    at.slider(key=key).set_value(0.6).run()
    assert_clean(at)
    assert [m.value for m in at.metric] != before  # the assumption drives the numbers


def test_critical_length_page_with_assumed_rate_equals_cli():
    at = run("critical", {"model": "Llama-3.1-70B", "num_gpus": "8", "cl_batch": "64"})
    assert_clean(at)
    expected = cli_json(
        "critical-length", "--model", "Llama-3.1-70B", "--num-gpus", "8", "--batch", "64",
        "--draft", "Llama-3.1-8B", "--draft-kv", "streamingllm:512",
    )  # fmt: skip
    assert expected["acceptance_basis"] == "assumed"
    assert at.metric[0].value == thousands(expected["critical_seq_len_text"])


def test_specprefill_page_says_skip():
    at = run(
        "specprefill",
        {"model": "Llama-3.1-8B", "num_gpus": "1", "sp_batch": "1", "sp_prompt_len": "2048"},
    )
    assert_clean(at)
    assert at.metric[0].value == "skip SpecPrefill"
    assert any(i.value.startswith("Skip SpecPrefill") for i in at.info)


def test_capacity_says_why_the_winner_won():
    at = run("recommend")
    assert_clean(at)
    why = [c.value for c in at.caption if c.value.startswith("Why: ")]
    assert why and " wins: $" in why[0]
