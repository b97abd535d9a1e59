"""Model explorer & validation: operator breakdown on a roofline; predicted vs measured."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402
import plotly.graph_objects as go  # noqa: E402
import streamlit as st  # noqa: E402

from app import common, compute, feasibility  # noqa: E402

TITLE = "Model explorer & validation"
explorer = st.cache_data(show_spinner=False, max_entries=256)(compute.explorer)
verdict = st.cache_data(show_spinner=False, max_entries=256)(feasibility.verdict)
published_validation = st.cache_data(show_spinner=False)(compute.published_validation)
uploaded_validation = st.cache_data(show_spinner=False, max_entries=8)(compute.uploaded_validation)


def roofline_figure(data: dict, phase: str) -> go.Figure:
    """Operators at (arithmetic intensity, modeled FLOP/s) under the GPU's datasheet roof."""
    ops = data["ops"]
    ops = ops[(ops["phase"] == phase) & ops["intensity_flop_per_byte"].notna()]
    ops = ops[ops["flops"] > 0]
    peak, bw = data["peak_flop_s"], data["hbm_bytes_s"]
    ridge = peak / bw
    lo = min(float(ops["intensity_flop_per_byte"].min()), ridge) / 4
    hi = max(float(ops["intensity_flop_per_byte"].max()), ridge) * 4
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[lo, ridge, hi],
            y=[lo * bw, peak, peak],
            mode="lines",
            name=f"datasheet roof ({data['compute_dtype']})",
            line={"color": "gray", "dash": "dash"},
        )
    )
    for bound, color in (("memory", "#1f77b4"), ("compute", "#d62728")):
        sub = ops[ops["bound"] == bound]
        if sub.empty:
            continue
        fig.add_trace(
            go.Scatter(
                x=sub["intensity_flop_per_byte"],
                y=sub["achieved_flop_s"],
                mode="markers+text",
                text=sub["op"],
                textposition="top center",
                marker={"size": 12, "color": color},
                name=f"{bound}-bound ops (modeled)",
                customdata=np.stack([sub["time_s"] * 1e3], axis=-1),
                hovertemplate="%{text}<br>%{x:.1f} FLOP/B<br>%{y:.3s}FLOP/s"
                "<br>%{customdata[0]:.3f} ms<extra></extra>",
            )
        )
    rates = ops["achieved_flop_s"].dropna()
    y_lo = min(float(rates.min()) if len(rates) else peak, lo * bw)
    fig.update_layout(
        title=f"Roofline, {phase} on {data['gpu']} (modeled operator rates)",
        xaxis={
            "type": "log",
            "title": "arithmetic intensity (FLOP / byte)",
            "range": common.log_range(lo, hi, 1.0),
        },
        yaxis={
            "type": "log",
            "title": "attainable FLOP/s per GPU",
            "range": common.log_range(y_lo, peak, 2.0),
        },
        height=480,
        margin={"t": 60},
    )
    return fig


def scatter_figure(points, title: str) -> go.Figure:
    fig = go.Figure()
    for (table, quantity), sub in points.groupby(["table", "quantity"], sort=False):
        fig.add_trace(
            go.Scatter(
                x=sub["measured_s"],
                y=sub["predicted_s"],
                mode="markers",
                name=f"{table}/{quantity}",
                text=sub["label"],
                hovertemplate="%{text}<br>measured %{x:,.4r} s<br>modeled %{y:,.4r} s<extra></extra>",
            )
        )
    lo = float(min(points["measured_s"].min(), points["predicted_s"].min())) * 0.8
    hi = float(max(points["measured_s"].max(), points["predicted_s"].max())) * 1.25
    fig.add_trace(
        go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x", line={"dash": "dash"})
    )
    fig.update_layout(
        title=title,
        xaxis={"type": "log", "title": "measured (s)", "range": common.log_range(lo, hi, 1.0)},
        yaxis={"type": "log", "title": "modeled (s)", "range": common.log_range(lo, hi, 1.0)},
        height=520,
    )
    return fig


def score_table(tables):
    shown = tables.copy()
    shown["MAPE"] = (100 * shown.pop("mape")).map("{:.1f}%".format)
    shown["max APE"] = (100 * shown.pop("max_ape")).map("{:.1f}%".format)
    shown["fitted on it"] = shown.pop("fitted_on").map({True: "yes (in-sample)", False: "no"})
    return common.fmt_table(
        shown[["table", "quantity", "rows", "MAPE", "max APE", "profile", "fitted on it", "worst"]]
    )


st.set_page_config(page_title=TITLE, layout="wide")
cfg = common.sidebar()
common.page_header(
    TITLE,
    "Where the time goes, operator by operator, and how well the model matches measurements.",
)
common.init("ex_batch", 1, lo=1, hi=4096)
common.init("ex_prompt_len", 4096, lo=1, hi=1_048_576)
common.init("ex_output_len", 256, lo=1, hi=131_072)
common.init("ex_phase", "prefill", ("prefill", "decode step"))

st.subheader("Operator breakdown")
c1, c2, c3, c4 = st.columns(4)
c1.number_input("Batch", min_value=1, max_value=4096, step=1, key="ex_batch")
c2.number_input("Prompt length", min_value=1, max_value=1_048_576, step=512, key="ex_prompt_len")
c3.number_input("Output length", min_value=1, max_value=131_072, step=64, key="ex_output_len")
c4.radio("Phase on the roofline", ("prefill", "decode step"), key="ex_phase", horizontal=True)

with common.guard():
    common.require_feasible(
        verdict(
            cfg,
            int(st.session_state.ex_batch),
            int(st.session_state.ex_prompt_len),
            int(st.session_state.ex_output_len),
        ),
        "TTFT (modeled)",
        "Lower the batch or the lengths, or raise the GPUs per replica in the sidebar.",
        stop=False,
    )
    data = explorer(
        cfg,
        int(st.session_state.ex_batch),
        int(st.session_state.ex_prompt_len),
        int(st.session_state.ex_output_len),
    )
    s = data["summary"]
    m1, m2, m3, m4 = st.columns(4)
    fits = bool(s["fits"])  # no latency for a deployment that does not run
    m1.metric("TTFT (modeled)", common.fmt_s(s["ttft_s"]) if fits else "does not fit")
    m2.metric("TPOT (modeled)", common.fmt_s(s["tpot_s"]) if fits else "does not fit")
    m3.metric("Throughput (modeled)", f"{s['throughput_tok_s']:,.0f} tok/s" if fits else "–")
    m4.metric(
        "Memory per GPU (modeled)",
        f"{s['total_gb']:,.1f} / {s['capacity_gb']:,.1f} GB",
        "fits" if s["fits"] else "out of memory",
        delta_color="normal" if s["fits"] else "inverse",
    )
    common.modeled(f"{data['describe']}; {data['basis']}")
    if not fits:
        st.error(
            f"{cfg['model']} ({cfg['weight_dtype']}) on {int(cfg['num_gpus'])}x {cfg['gpu']} "
            f"does not fit: {s['total_gb']:,.1f} GB per GPU needed, {s['capacity_gb']:,.1f} GB "
            f"usable ({s['total_gb'] - s['capacity_gb']:,.1f} GB short). The operator "
            "breakdown below is what it would cost with enough memory."
        )
    phase = st.session_state.ex_phase
    common.chart(
        roofline_figure(data, phase),
        data["ops"][data["ops"]["phase"] == phase],
        f"roofline {phase}",
    )
    ops = data["ops"][data["ops"]["phase"] == phase]
    bar = go.Figure(
        go.Bar(
            x=ops["op"],
            y=ops["time_s"] * 1e3,
            marker_color="#1f77b4",
            name="time",
            hovertemplate="%{x}: %{y:,.3f} ms<extra></extra>",
        )
    )
    bar.update_layout(
        title=f"Time per operator, {phase} (modeled, per GPU)",
        yaxis_title="ms",
        height=360,
    )
    common.chart(bar, ops[["op", "time_s"]], f"time per operator {phase}")
    shown = ops.drop(columns=["phase", "time_s"]).assign(time_ms=ops["time_s"] * 1e3)
    si = {c: common.fmt_si for c in ("flops", "bytes", "achieved_flop_s") if c in shown}
    st.table(common.fmt_table(shown, si))
    common.modeled(data["basis"] + "; roof = datasheet peak FLOP/s and HBM bandwidth")

st.subheader("Predicted vs measured: published tables")
with common.guard():
    val = published_validation(cfg["profile"])
    pts = val["points"]
    overall = float(pts["ape"].mean())
    v1, v2 = st.columns([1, 2])
    v1.metric(
        "MAPE, published rows",
        f"{100 * overall:.1f}%",
        help="Mean absolute percentage error over every published row; in-sample for the "
        "tables a profile was fitted on.",
    )
    v2.caption(
        "Measured: the published tables shipped with perfmodel (paper and line cited in each "
        "row). Modeled: each table with "
        + ("its own profile." if cfg["profile"] == "auto" else f"profile {cfg['profile']}.")
        + " Tables a profile was fitted on give in-sample errors; the README lists the "
        "leave-one-table-out (out-of-sample) errors."
    )
    st.table(score_table(val["tables"]))
    common.chart(
        scatter_figure(pts, "Published measurements vs perfmodel (log-log)"),
        pts,
        "published vs modeled",
    )
    for check in val["memory_checks"]:
        verdict = "agrees" if check["agrees"] else "disagrees"
        st.caption(
            f"OOM check {check['table']} [{check['label']}]: published out of memory; the "
            f"model needs {check['total_gb']:.1f} of {check['capacity_gb']:.1f} GB per GPU "
            f"({verdict})."
        )

st.subheader("Predicted vs measured: your profiler CSV")
st.caption(
    "Upload a measurement CSV (`perfmodel profile` output or the published schema: model, gpu, "
    f"num_gpus, batch_size, prompt_len and ttft_s or tpot_s), at most "
    f"{compute.MAX_UPLOAD_BYTES // 1_000_000} MB. It is read as data by pandas only."
)
upload = st.file_uploader("Measurement CSV", type=["csv"], key="ex_upload")
if upload is not None:
    with common.guard():
        if upload.size > compute.MAX_UPLOAD_BYTES:
            raise compute.PerfModelError(
                f"{upload.name}: {upload.size / 1e6:.1f} MB is over the "
                f"{compute.MAX_UPLOAD_BYTES // 1_000_000} MB limit"
            )
        mine = uploaded_validation(upload.getvalue(), upload.name, cfg["profile"])
        u1, u2 = st.columns([1, 2])
        u1.metric("MAPE, your rows", f"{100 * float(mine['points']['ape'].mean()):.1f}%")
        u2.caption("Measured: your CSV. Modeled: perfmodel with the profile in the table.")
        for note in mine["notes"]:  # e.g. decode-only rows have no TTFT: not compared
            st.caption(f"Not compared: {note}.")
        st.table(score_table(mine["tables"]))
        common.chart(
            scatter_figure(mine["points"], "Your measurements vs perfmodel (log-log)"),
            mine["points"],
            "your rows vs modeled",
        )

common.sync_query_params(("ex_batch", "ex_prompt_len", "ex_output_len", "ex_phase"))
