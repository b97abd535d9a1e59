"""SpecPrefill planner: TTFT vs keep rate, speculator/target split, quality, QPS."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import plotly.graph_objects as go  # noqa: E402
import streamlit as st  # noqa: E402

from app import common, compute  # noqa: E402

TITLE = "SpecPrefill planner"
plan = st.cache_data(show_spinner=False, max_entries=256)(compute.specprefill)
smaller = st.cache_data(show_spinner=False)(compute.smaller_models)
PARTS = (
    ("speculator_prefill_s", "speculator prefill", "#9ecae1"),
    ("lookahead_s", "speculator look-ahead", "#6baed6"),
    ("scoring_selection_s", "token scoring + selection", "#3182bd"),
    ("target_prefill_s", "target prefill (kept tokens)", "#e6550d"),
)


st.set_page_config(page_title=TITLE, layout="wide")
cfg = common.sidebar()
common.page_header(
    TITLE,
    "A small speculator prefills the whole prompt and keeps the most important tokens; the "
    "target prefills only those (Speculative Prefill, Liu et al. 2025).",
)
with common.guard():
    options = smaller(cfg["model"])
    if not options:
        st.warning(
            f"No shipped model is smaller than {cfg['model']} and shares its vocabulary: pick "
            "a larger target in the sidebar (e.g. Llama-3.1-70B)."
        )
        st.stop()
    common.init("sp_speculator", options[0], options)
    common.init("sp_batch", 16, lo=1, hi=4096)
    common.init("sp_prompt_len", 32768, lo=16, hi=1_048_576)
    common.init("sp_max_drop", 1.0, lo=0.0, hi=10.0)
    common.init("sp_slo", 0.0, lo=0.0, hi=3600.0)
    c1, c2, c3, c4, c5 = st.columns(5)
    c1.selectbox("Speculator", options, key="sp_speculator")
    c2.number_input("Batch", min_value=1, max_value=4096, step=1, key="sp_batch")
    c3.number_input(
        "Prompt length", min_value=16, max_value=1_048_576, step=1024, key="sp_prompt_len"
    )
    c4.slider("Max quality drop (LongBench points)", 0.0, 10.0, step=0.1, key="sp_max_drop")
    c5.number_input(
        "TTFT SLO for QPS (s, 0 = 2x baseline)",
        min_value=0.0,
        max_value=3600.0,
        step=0.5,
        key="sp_slo",
    )
    res = plan(
        cfg,
        st.session_state.sp_speculator,
        int(st.session_state.sp_batch),
        int(st.session_state.sp_prompt_len),
        float(st.session_state.sp_max_drop),
        float(st.session_state.sp_slo) or None,
    )
    p, rows = res["plan"], res["rows"]
    m1, m2, m3, m4 = st.columns(4)
    rec = p["recommended_keep_rate"]
    m1.metric(
        "Recommended keep rate (modeled)",
        "skip SpecPrefill" if rec is None else f"{rec:.0%}",
        None if rec is None else f"{p['recommended_speedup']:.2f}x TTFT speedup",
    )
    be = p["break_even_prompt_len"]
    m2.metric(
        "Break-even prompt length (modeled)", "never pays" if be is None else f"{be:,} tokens"
    )
    q = p["qps"]
    m3.metric(
        "Max QPS gain (modeled)",
        "-" if q["improvement"] is None else f"{q['improvement']:.2f}x",
        f"{q['baseline']:.2f} -> {q['specprefill']:.2f} QPS",
    )
    m4.metric("Baseline TTFT (modeled)", common.fmt_s(p["baseline_ttft_s"]))
    common.modeled(
        f"target {res['describe']}, speculator {res['speculator']} on the same GPUs; "
        f"{res['basis']}. QPS: {q['slo_note']}, SLO {q['slo_ttft_s']:.2f} s."
    )
    if p["best_keep_rate"] is None:
        st.info(
            "Skip SpecPrefill: no keep rate meets the quality constraint; relax the max "
            "quality drop to see one."
        )
    elif rec is None:
        st.info(
            f"Skip SpecPrefill: the fastest keep rate within the quality constraint "
            f"({p['best_keep_rate']:.0%}) is {p['best_speedup']:.2f}x the baseline TTFT"
            + (f"; it pays from {be:,} prompt tokens (raise the prompt length)." if be else ".")
        )

    left, right = st.columns(2)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=rows["keep_rate"], y=rows["ttft_s"], mode="lines+markers", name="SpecPrefill")
    )
    fig.add_hline(
        y=p["baseline_ttft_s"], line_dash="dash", annotation_text="baseline (no SpecPrefill)"
    )
    if rec is not None:
        fig.add_vline(x=rec, line_dash="dot", line_color="green", annotation_text="recommended")
    fig.update_layout(
        title="TTFT vs keep rate (modeled)",
        xaxis={"title": "keep rate", "tickformat": ".0%"},
        yaxis={"title": "TTFT (s)", "rangemode": "tozero"},
        height=420,
    )
    left.plotly_chart(fig)

    bars = go.Figure()
    for col, name, color in PARTS:
        bars.add_trace(go.Bar(x=rows["keep_rate"], y=rows[col], name=name, marker_color=color))
    bars.update_layout(
        barmode="stack",
        title="Speculator / target split of TTFT (modeled)",
        xaxis={"title": "keep rate", "tickformat": ".0%"},
        yaxis={"title": "seconds"},
        height=420,
    )
    right.plotly_chart(bars)

    qc, qp = res["quality_curve"], res["quality_points"]
    quality = go.Figure()
    known = qc[~qc["unmeasured"]]
    quality.add_trace(
        go.Scatter(x=known["keep_rate"], y=known["drop"], mode="lines", name="interpolated")
    )
    quality.add_trace(
        go.Scatter(
            x=qp["keep_rate"],
            y=qp["drop"],
            mode="markers",
            marker={"size": 10},
            name="published (SpecPrefill paper, LongBench)",
        )
    )
    quality.add_hline(
        y=p["max_quality_drop"],
        line_dash="dash",
        line_color="red",
        annotation_text=f"constraint: drop <= {p['max_quality_drop']:g}",
    )
    quality.add_vrect(
        x0=0.0,
        x1=float(qp["keep_rate"].min()),
        fillcolor="gray",
        opacity=0.15,
        line_width=0,
        annotation_text="unmeasured",
    )
    quality.update_layout(
        title="Quality drop vs keep rate (measured LongBench average, interpolated)",
        xaxis={"title": "keep rate", "tickformat": ".0%", "range": [0, 1.02]},
        yaxis={"title": "LongBench points lost"},
        height=380,
    )
    st.plotly_chart(quality)
    st.caption(f"Measured: {res['quality_source']}.")
    st.dataframe(common.fmt_table(rows, {"keep_rate": "{:.0%}"}), hide_index=True)

common.sync_query_params(("sp_speculator", "sp_batch", "sp_prompt_len", "sp_max_drop", "sp_slo"))
