"""SpecPrefill planner: TTFT vs keep rate, speculator/target split, quality, QPS."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import plotly.graph_objects as go  # noqa: E402
import streamlit as st  # noqa: E402

from app import common, compute, feasibility  # noqa: E402
from perfmodel.specs.units import plural  # noqa: E402

TITLE = "SpecPrefill planner"
plan = st.cache_data(show_spinner=False, max_entries=256)(compute.specprefill)
helpers = st.cache_data(show_spinner=False, max_entries=256)(feasibility.helper_options)
verdict = st.cache_data(show_spinner=False, max_entries=256)(feasibility.verdict)
default_batch = st.cache_data(show_spinner=False, max_entries=256)(
    feasibility.specprefill_default_batch
)
KEYS = ("sp_speculator", "sp_batch", "sp_prompt_len", "sp_max_drop", "sp_slo")
PARTS = (
    ("speculator_prefill_s", "speculator prefill", "#9ecae1"),
    ("lookahead_s", "speculator look-ahead", "#6baed6"),
    ("scoring_selection_s", "token scoring + selection", "#3182bd"),
    ("target_prefill_s", "target prefill (kept tokens)", "#e6550d"),
)


def short(gb: float, cap: float) -> str:
    return f"{gb:,.1f} GB per GPU needed, {cap:,.1f} GB usable ({gb - cap:,.1f} GB short)"


st.set_page_config(page_title=TITLE, layout="wide")
cfg = common.sidebar()
common.page_header(
    TITLE,
    "A small speculator prefills the whole prompt and keeps the most important tokens; the "
    "target prefills only those (Speculative Prefill, Liu et al. 2025).",
)
with common.guard():
    options = helpers(cfg, "speculator")
    if not options["usable"]:
        common.sync_query_params(KEYS)
        st.warning(
            f"No shipped model can be {cfg['model']}'s speculator at "
            f"{common.plural(int(cfg['num_gpus']), 'GPU')}"
            + (f" ({'; '.join(options['excluded'])})" if options["excluded"] else "")
            + ": pick a target with a smaller model of its vocabulary in the sidebar (e.g. "
            "Llama-3.1-70B)."
        )
        st.stop()
    common.init("sp_speculator", options["usable"][0], options["usable"])
    common.init("sp_prompt_len", 32768, lo=16, hi=1_048_576)
    common.init(
        "sp_batch",
        default_batch(cfg, st.session_state.sp_speculator, int(st.session_state.sp_prompt_len)),
        lo=1,
        hi=4096,
    )
    common.init("sp_max_drop", 1.0, lo=0.0, hi=10.0)
    common.init("sp_slo", 0.0, lo=0.0, hi=3600.0)
    c1, c2, c3, c4, c5 = st.columns(5)
    c1.selectbox("Speculator", options["usable"], key="sp_speculator")
    if options["excluded"]:
        c1.caption("Not offered: " + "; ".join(options["excluded"]) + ".")
    c2.number_input("Batch", min_value=1, max_value=4096, step=1, key="sp_batch")
    c3.number_input(
        "Prompt length (tokens)", min_value=16, max_value=1_048_576, step=1024, key="sp_prompt_len"
    )
    c4.slider("Max quality drop (LongBench points)", 0.0, 10.0, step=0.1, key="sp_max_drop")
    c5.number_input(
        "TTFT SLO for QPS (s)",
        min_value=0.0,
        max_value=3600.0,
        step=0.5,
        key="sp_slo",
        help="0 = twice the baseline TTFT of one request of this length.",
    )
    common.sync_query_params(KEYS)
    prompt = int(st.session_state.sp_prompt_len)
    # the target alone first (the feasibility layer, as the CLI): its window, its memory
    common.require_feasible(
        verdict(cfg, int(st.session_state.sp_batch), prompt, 1),
        "Keep rate (modeled)",
        "Lower the batch or the prompt, or raise the GPUs per replica in the sidebar.",
    )
    res = plan(
        cfg,
        st.session_state.sp_speculator,
        int(st.session_state.sp_batch),
        prompt,
        float(st.session_state.sp_max_drop),
        float(st.session_state.sp_slo) or None,
    )
    p, rows = res["plan"], res["rows"]
    cap = p["capacity_gb"]
    rec, best = p["recommended_keep_rate"], p["best_keep_rate"]
    best_row = None if best is None else rows[rows["keep_rate"] == best].iloc[0]
    be = p["break_even_prompt_len"]
    # why not, in the order that matters: nothing runs > quality > memory > speed
    why = None
    if not p["baseline_fits"]:
        why = (
            f"Even the baseline does not fit: {cfg['model']} ({cfg['weight_dtype']}) on "
            f"{int(cfg['num_gpus'])}x {cfg['gpu']} at batch "
            f"{int(st.session_state.sp_batch):,} x {prompt:,} tokens: "
            f"{short(p['baseline_memory_gb'], cap)}. Lower the batch or the prompt, or raise "
            "the GPUs per replica in the sidebar."
        )
    elif best is None:
        why = (
            f"No keep rate is within {plural(float(p['max_quality_drop']), 'LongBench point')} (the lowest "
            f"that is: {p['quality_min_keep_rate']:.0%}); relax the max quality drop."
        )
    elif not bool(best_row["fits"]):
        why = (
            f"The speculator {res['speculator']} does not fit beside the target at keep "
            f"{best:.0%}: {short(best_row['memory_gb'], cap)}. Lower the batch or raise the "
            "GPUs per replica."
        )
    elif rec is None:
        why = (
            f"At {prompt:,} tokens the fastest keep rate within the quality limit "
            f"({best:.0%}) is {best_row['speedup']:.2f}x the baseline: the speculator costs "
            "more than the prompt it saves"
            + (f"; it pays from {be:,} prompt tokens." if be and be > prompt else ".")
        )
    q = p["qps"]
    gain = q["improvement"] if q.get("meets_quality") and q["baseline"] > 0 else None
    m1, m2, m3, m4 = st.columns(4)
    m1.metric(
        "Keep rate (modeled)",
        "does not fit"
        if not p["baseline_fits"]
        else "skip SpecPrefill"
        if rec is None
        else f"{rec:.0%}",
        None if rec is None else f"{p['recommended_speedup']:.2f}x TTFT",
        help="The fastest keep rate within the quality limit, where it beats the baseline "
        "and fits in memory.",
    )
    m2.metric(
        "Pays from (modeled)",
        "–" if not p["baseline_fits"] or be is None else f"{be:,} tokens",
        help="Smallest prompt length at which SpecPrefill at the best keep rate beats the "
        "baseline, at this batch.",
    )
    m3.metric(
        "Max QPS gain (modeled)",
        "–" if gain is None or not p["baseline_fits"] else f"{gain:.2f}x",
        None
        if gain is None or not p["baseline_fits"]
        else f"{q['baseline']:,.2f} → {q['specprefill']:,.2f} QPS at keep {q['keep_rate']:.0%}",
        delta_color="normal" if gain and gain > 1 else "off",
        help="Within the quality limit only, under the TTFT SLO.",
    )
    m4.metric(
        "Baseline TTFT (modeled)",
        "does not fit" if not p["baseline_fits"] else common.fmt_s(p["baseline_ttft_s"]),
    )
    if why and not p["baseline_fits"]:
        st.error(why)  # no latency for a deployment that does not run
        common.modeled(f"target {res['describe']}; {res['basis']}")
        st.stop()
    elif why:
        st.info("Skip SpecPrefill. " + why)
    common.modeled(
        f"target {res['describe']}, speculator {res['speculator']} on the same GPUs; "
        f"{res['basis']}. QPS: SLO {q['slo_ttft_s']:,.2f} s"
        + (" (twice the baseline TTFT of one request)" if q["slo_is_default"] else "")
        + "."
    )

    left, right = st.columns(2)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=rows["keep_rate"],
            y=rows["ttft_s"],
            mode="lines+markers",
            name="SpecPrefill",
            hovertemplate="keep %{x:.0%}: TTFT %{y:,.3f} s<extra></extra>",
        )
    )
    common.marker_line(fig, p["baseline_ttft_s"], "baseline (no SpecPrefill)", "y")
    if rec is not None:
        common.marker_line(fig, rec, "recommended", "x", line={"color": "green"})
    fig.update_layout(
        title="TTFT vs keep rate (modeled)",
        xaxis={"title": "keep rate", "tickformat": ".0%", "range": [0, 1]},
        yaxis={
            "title": "TTFT (s)",
            "range": [0, 1.15 * max(float(rows["ttft_s"].max()), p["baseline_ttft_s"])],
        },
        height=420,
    )
    common.chart(fig, rows[["keep_rate", "ttft_s", "speedup"]], "TTFT vs keep rate", left)

    bars = go.Figure()
    for col, name, color in PARTS:
        bars.add_trace(
            go.Bar(
                x=rows["keep_rate"],
                y=rows[col],
                name=name,
                marker_color=color,
                hovertemplate="keep %{x:.0%}: %{y:,.3f} s<extra>" + name + "</extra>",
            )
        )
    bars.update_layout(
        barmode="stack",
        title="Speculator / target split of TTFT (modeled)",
        xaxis={"title": "keep rate", "tickformat": ".0%"},
        yaxis={"title": "seconds"},
        height=420,
    )
    common.chart(bars, rows[["keep_rate", *(c for c, _, _ in PARTS)]], "TTFT split", right)

    qc, qp = res["quality_curve"], res["quality_points"]
    quality = go.Figure()
    known = qc[~qc["unmeasured"]]
    quality.add_trace(
        go.Scatter(
            x=known["keep_rate"],
            y=known["drop"],
            mode="lines",
            name="interpolated",
            hovertemplate="keep %{x:.0%}: %{y:.2f} LongBench points lost<extra></extra>",
        )
    )
    quality.add_trace(
        go.Scatter(
            x=qp["keep_rate"],
            y=qp["drop"],
            mode="markers",
            marker={"size": 10},
            name="published (SpecPrefill paper, LongBench)",
            hovertemplate="keep %{x:.0%}: %{y:.2f} LongBench points lost<extra></extra>",
        )
    )
    common.marker_line(
        quality, p["max_quality_drop"], f"limit: {p['max_quality_drop']:g} point{'' if p['max_quality_drop'] == 1 else 's'}", "y",
        line={"color": "red", "dash": "dash"},
    )  # fmt: skip
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
    common.chart(
        quality,
        qc.rename(columns={"drop": "longbench_points_lost"}),
        "quality vs keep rate",
    )
    st.caption(common.clean_source(f"Measured: {res['quality_source']}."))
    shown = rows.drop(columns=["memory_gb"]).assign(memory_per_gpu_gb=rows["memory_gb"])
    st.table(common.fmt_table(shown, {"keep_rate": "{:.0%}"}))

common.sync_query_params(KEYS)
