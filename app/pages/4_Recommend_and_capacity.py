"""Recommend & capacity: the joint recommendation for a workload, fleet sizing and cost."""

import functools
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import plotly.graph_objects as go  # noqa: E402
import streamlit as st  # noqa: E402
from plotly.subplots import make_subplots  # noqa: E402

from app import background, common, compute, feasibility  # noqa: E402
from perfmodel.planners.deployment_choice import NoFeasibleDeployment  # noqa: E402
from perfmodel.planners.feasibility import InfeasibleError  # noqa: E402
from perfmodel.planners.slo import DEFAULT_SLO_TPOT_S, DEFAULT_SLO_TTFT_S  # noqa: E402

TITLE = "Recommend & capacity"
recommend = st.cache_data(show_spinner=False, max_entries=128)(compute.recommend_view)
verdict = st.cache_data(show_spinner=False, max_entries=256)(feasibility.verdict)
# the fleet search takes seconds (more with speculation): say so while it runs
capacity = st.cache_data(show_spinner="Sizing fleets…", max_entries=64)(compute.capacity_view)
KEYS = (
    "rc_batch", "rc_prompt_len", "rc_output_len", "rc_slo_ttft", "rc_slo_tpot", "rc_max_drop",
    "rc_qps", "rc_gpus", "rc_spec",
)  # fmt: skip
COMPARE = ("h100-sxm", "h200", "a100-80gb", "a100-40gb", "l40s", "rtx4090", "b200", "mi300x")


st.set_page_config(page_title=TITLE, layout="wide")
cfg = common.sidebar()
common.page_header(
    TITLE,
    "What to run for a workload (precision, SpecPrefill, speculative decoding) and how many "
    "GPUs of each type serve a load under latency SLOs, at what cost.",
)
common.init("rc_batch", 16, lo=1, hi=4096)
common.init("rc_prompt_len", 32768, lo=1, hi=1_048_576)
common.init("rc_output_len", 512, lo=1, hi=131_072)
common.init("rc_slo_ttft", 0.0, lo=0.0, hi=3600.0)
common.init("rc_slo_tpot", 0.0, lo=0.0, hi=10.0)
common.init("rc_max_drop", 1.0, lo=0.0, hi=10.0)
common.init("rc_qps", 1.0, lo=0.001, hi=1e6)
common.init("rc_gpus", ["h100-sxm", "a100-80gb", "h200"], COMPARE)
common.init("rc_spec", False)

st.subheader("Workload")
c1, c2, c3, c4, c5, c6 = st.columns(6)
c1.number_input("Batch", min_value=1, max_value=4096, step=1, key="rc_batch")
c2.number_input("Prompt length", min_value=1, max_value=1_048_576, step=1024, key="rc_prompt_len")
c3.number_input("Output length", min_value=1, max_value=131_072, step=64, key="rc_output_len")
c4.number_input(
    "TTFT SLO (s, 0 = none)", min_value=0.0, max_value=3600.0, step=0.5, key="rc_slo_ttft"
)
c5.number_input(
    "TPOT SLO (s, 0 = none)",
    min_value=0.0,
    max_value=10.0,
    step=0.005,
    format="%.3f",
    key="rc_slo_tpot",
)
c6.slider("Max quality drop", 0.0, 10.0, step=0.1, key="rc_max_drop")
ss = st.session_state
common.sync_query_params(KEYS)

st.subheader("Recommendation")
with common.guard():
    # one sequence on one replica of the sidebar's deployment (the feasibility layer, as
    # the CLI's); the recommendation adds replicas for the batch
    common.require_feasible(
        verdict(cfg, 1, int(ss.rc_prompt_len), int(ss.rc_output_len)),
        "Recommendation (modeled)",
        "Raise the GPUs per replica or use fp8/int4 weights in the sidebar.",
        stop=False,
    )
    try:
        rec = recommend(
            cfg,
            int(ss.rc_batch),
            int(ss.rc_prompt_len),
            int(ss.rc_output_len),
            float(ss.rc_slo_ttft) or None,
            float(ss.rc_slo_tpot) or None,
            float(ss.rc_max_drop),
            None,
        )
    except (InfeasibleError, NoFeasibleDeployment) as exc:  # the planner's typed refusal
        common.infeasible(exc, "Recommendation (modeled)")
        raise common.SkipSection from None
    prec, sp, sd = rec["precision"], rec["specprefill"], rec["specdecode"]
    st.markdown(f"**{rec['headline']}** (modeled)")
    if rec.get("deployment", {}).get("num_gpus", rec["num_gpus"]) > int(cfg["num_gpus"]):
        st.caption(
            f"The sidebar's {common.plural(int(cfg['num_gpus']), 'GPU')} per replica cannot "
            "serve this batch alone: the recommendation adds replicas."
        )
    m1, m2, m3, m4 = st.columns(4)
    m1.metric(
        "Precision (weights/KV)",
        f"{prec['weight_dtype']}/{prec['kv_dtype']}",
        f"batch {rec['batch_per_replica']} per replica",
    )
    m2.metric(
        "SpecPrefill (modeled)",
        f"keep {sp['keep_rate']:.0%}" if sp.get("pays") else "skip",
        f"{sp['speedup']:.2f}x TTFT" if sp.get("pays") else None,
    )
    m3.metric(
        "Speculative decoding (modeled)",
        f"{sd['draft_kv']}, gamma {sd['gamma']}" if sd.get("pays") else "skip",
        f"{sd['speedup']:.2f}x TPOT" if sd.get("pays") else None,
    )
    crit = rec["critical_seq_len"]
    m4.metric(
        "Critical sequence length (modeled)",
        common.thousands(rec["critical_seq_len_text"]) if crit is None else f"{int(crit):,} tokens",
        None
        if rec["above_critical"] is None
        else ("workload above it" if rec["above_critical"] else "workload below it"),
    )
    b1, b2, b3 = st.columns(3)
    b1.metric("Baseline TTFT (modeled)", common.fmt_s(rec["baseline"]["ttft_s"]))
    b2.metric("Baseline TPOT (modeled)", common.fmt_s(rec["baseline"]["tpot_s"]))
    b3.metric(
        "Memory per GPU (modeled)",
        f"{rec['memory']['total_gb']:.1f} / {rec['memory']['capacity_gb']:.1f} GB",
    )
    common.modeled(
        f"{rec['model']} on {rec['num_gpus']}x {rec['gpu']}; {rec['basis']}. A replica is the "
        "sidebar's GPUs; the recommendation adds replicas and chooses the precision (the "
        "sidebar's dtypes are not used here); the plan is for one replica."
    )
    with_sp = sp.get("ttft_s") if sp.get("available") else None
    with_sd = sd.get("tpot_s") if sd.get("available") else None
    # seconds and milliseconds never share an axis: one panel per quantity
    bars = make_subplots(rows=1, cols=2, subplot_titles=("TTFT (s)", "TPOT (ms)"))
    for col, (plain, spec) in enumerate(
        (
            (rec["baseline"]["ttft_s"], with_sp),
            (1e3 * rec["baseline"]["tpot_s"], None if with_sd is None else 1e3 * with_sd),
        ),
        start=1,
    ):
        bars.add_trace(
            go.Bar(x=["baseline", "recommended"], y=[plain, spec or plain], showlegend=False),
            row=1,
            col=col,
        )
    bars.update_yaxes(title_text="seconds", row=1, col=1)
    bars.update_yaxes(title_text="milliseconds", row=1, col=2)
    bars.update_layout(title="Baseline vs recommended configuration (modeled)", height=360)
    common.chart(
        bars,
        pd.DataFrame(
            {
                "configuration": ["baseline", "recommended"],
                "ttft_s": [rec["baseline"]["ttft_s"], with_sp or rec["baseline"]["ttft_s"]],
                "tpot_s": [rec["baseline"]["tpot_s"], with_sd or rec["baseline"]["tpot_s"]],
            }
        ),
        "baseline vs recommended",
    )
    st.markdown(common.thousands(rec["rationale"]))
    for note in rec["notes"]:
        st.info(note)
    for key, section in (("SpecPrefill", sp), ("Speculative decoding", sd)):
        if section.get("reason"):
            st.caption(common.thousands(f"{key}: {section['reason']}"))
    if sd.get("acceptance_source"):
        st.caption(
            common.clean_source(f"Acceptance ({sd['acceptance_basis']}): {sd['acceptance_source']}")
        )
    st.download_button(
        "Download the recommendation (JSON)",
        json.dumps(rec, indent=2, default=str),
        file_name="recommendation.json",
        mime="application/json",
    )

st.subheader("Capacity and cost")
k1, k2, k3 = st.columns([1, 3, 1])
k1.number_input("Load (requests/s)", min_value=0.001, max_value=1e6, step=1.0, key="rc_qps")
k2.multiselect("GPU types", COMPARE, key="rc_gpus")
k3.checkbox(
    "With speculation",
    key="rc_spec",
    help="Also size fleets that use SpecPrefill and speculative decoding (slower to compute).",
)
common.sync_query_params(KEYS)
slo_ttft = float(ss.rc_slo_ttft) or DEFAULT_SLO_TTFT_S  # the planners' defaults, as the CLI's
slo_tpot = float(ss.rc_slo_tpot) or DEFAULT_SLO_TPOT_S
with common.guard():
    if not ss.rc_gpus:
        st.warning("Pick at least one GPU type.")
        st.stop()
    args = (
        cfg,
        float(ss.rc_qps),
        int(ss.rc_prompt_len),
        int(ss.rc_output_len),
        slo_ttft,
        slo_tpot,
        tuple(ss.rc_gpus),
    )
    if ss.rc_spec:  # seconds of work: in the background, the page stays responsive
        job, started = background.submit(compute.capacity_view, *args, True)
        if not job.done():

            @st.fragment(run_every=1.0)
            def progress() -> None:
                if job.done():
                    st.rerun()
                st.info(
                    f"Sizing fleets with speculation… {time.monotonic() - started:.0f} s "
                    "(the rest of the page answers meanwhile)"
                )

            progress()
            st.stop()
        cap = job.result()
    else:
        cap = capacity(*args, False)
    opts = cap["options"]
    best = cap["best"]
    if best is None:
        st.error("No GPU type meets both SLOs at this load: relax an SLO or add GPU types.")
    else:
        n1, n2, n3 = st.columns(3)
        n1.metric(
            "Cheapest fleet (modeled)",
            f"{best['gpus_needed']}x {best['gpu']}" + (" + spec" if best["with_spec"] else ""),
        )
        n2.metric("Cost (modeled)", f"${best['cost_per_hour']:,.2f}/h")
        n3.metric("Cost per million output tokens (modeled)", f"${best['cost_per_mtok']:,.3f}")
        st.caption(common.thousands(f"Why: {cap['why']}"))
    cols = [
        c
        for c in (
            "rank",
            "gpu",
            "with_spec",
            "meets_slo",
            "weight_dtype",
            "kv_dtype",
            "tp",
            "pp",
            "replicas",
            "gpus_needed",
            "nodes",
            "batch",
            "cost_per_hour",
            "cost_per_mtok",
            "ttft_s",
            "tpot_s",
            "binding_constraint",
            "reason",
        )
        if c in opts.columns
    ]
    st.table(
        common.fmt_table(
            opts[cols],
            {
                "cost_per_hour": "${:,.2f}",
                "cost_per_mtok": "${:,.3f}",
                "ttft_s": "{:.3f}",
                "tpot_s": "{:.4f}",
            },
        ),
    )
    label = opts["gpu"] + opts["with_spec"].map({True: " + spec", False: ""})
    left, right = st.columns(2)
    fig = go.Figure(
        go.Bar(
            x=label,
            y=opts["cost_per_mtok"],
            name="$/Mtok",
            hovertemplate="%{x}: $%{y:,.3f} per million output tokens<extra></extra>",
        )
    )
    fig.update_layout(
        title="Cost per million output tokens (modeled)", yaxis_title="USD / Mtok", height=400
    )
    common.chart(
        fig,
        pd.DataFrame({"option": label, "cost_per_mtok_usd": opts["cost_per_mtok"]}),
        "cost per million tokens",
        left,
    )
    curves = cap["curves"]
    load = float(ss.rc_qps)
    fig2 = go.Figure()
    for name, sub in curves.groupby("option", sort=False):
        fig2.add_trace(
            go.Scatter(
                x=sub["qps"],
                y=sub["cost_per_hour"],
                mode="lines",
                name=name,
                hovertemplate="%{x:,.3g} requests/s: $%{y:,.2f}/h<extra>%{fullData.name}</extra>",
            )
        )
    common.marker_line(fig2, load, f"this load ({load:,.3g}/s)", "x", log=True)
    shown = curves[(curves["qps"] > 0) & (curves["cost_per_hour"] > 0)]
    shown = shown[np.isfinite(shown["qps"]) & np.isfinite(shown["cost_per_hour"])]
    qps_span = shown["qps"] if not shown.empty else pd.Series([load])
    cost_span = shown["cost_per_hour"] if not shown.empty else pd.Series([1.0])
    fig2.update_layout(
        title="Fleet cost per hour vs load (modeled)",
        xaxis={
            "type": "log",
            "title": "requests / s",
            "range": common.log_range(min(qps_span.min(), load), max(qps_span.max(), load)),
        },
        yaxis={
            "type": "log",
            "title": "USD / hour",
            "range": common.log_range(cost_span.min(), cost_span.max()),
        },
        height=400,
    )
    common.chart(
        fig2,
        curves.rename(columns={"qps": "load_req_per_s", "cost_per_hour": "cost_per_hour_usd"}),
        "fleet cost vs load",
        right,
    )
    common.modeled(
        f"{cap['basis']}; SLOs TTFT {slo_ttft:g} s, TPOT {slo_tpot:g} s"
        + ("" if ss.rc_slo_ttft and ss.rc_slo_tpot else " (defaults where none given)")
        + "; GPU prices from the shipped hardware specs"
    )
    with st.expander("Assumptions"):
        for line in cap["assumptions"]:
            st.markdown(f"- {line}")
    d1, d2, d3 = st.columns(3)
    d3.download_button("Capacity plan (JSON)", cap["json"], "capacity.json", "application/json")
    if cap["report_inputs"] is not None:  # built only when a button is clicked
        d1.download_button(
            "Report (HTML)",
            functools.partial(compute.capacity_report, cap, "html"),
            "capacity.html",
            "text/html",
        )
        d2.download_button(
            "Report (Markdown)",
            functools.partial(compute.capacity_report, cap, "markdown"),
            "capacity.md",
            "text/markdown",
        )
    else:
        d1.caption("HTML/Markdown reports: perfmodel.reports is not installed in this build.")

common.sync_query_params(KEYS)
