"""Critical sequence length: from which context MagicDec speculative decoding pays."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402
import plotly.graph_objects as go  # noqa: E402
import streamlit as st  # noqa: E402

from app import common, compute, feasibility  # noqa: E402

TITLE = "Critical sequence length"
view = st.cache_data(show_spinner=False, max_entries=128)(compute.critical_length_view)
status = st.cache_data(show_spinner=False, max_entries=128)(compute.acceptance_status)
helpers = st.cache_data(show_spinner=False, max_entries=256)(feasibility.helper_options)
verdict = st.cache_data(show_spinner=False, max_entries=256)(feasibility.verdict)
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
KV_METHODS = ("streamingllm", "snapkv", "full")
BUDGETS = ("optimize", 128, 256, 512, 1024, 2048, 4096, 8192)
GAMMAS = ("optimize", 1, 2, 3, 4, 5, 6, 7, 8)
KEYS = (
    "cl_drafts", "cl_kv", "cl_budget", "cl_gamma", "cl_acceptance", "cl_rate", "cl_batch",
    "cl_curve_batches", "cl_gpus",
)  # fmt: skip
COMPARE = ("h100-sxm", "a100-80gb", "rtx4090", "h200", "l40s", "b200", "mi300x", "a100-40gb")

st.set_page_config(page_title=TITLE, layout="wide")
cfg = common.sidebar()
common.page_header(
    TITLE,
    "MagicDec: at large batch and long context, a draft with a compressed KV cache makes "
    "speculative decoding faster; the critical sequence length is the smallest context where "
    "the best configuration's speedup exceeds 1.",
)
with common.guard():
    options = helpers(cfg, "draft")
    drafts = ["self", *options["usable"]]
    common.init("cl_drafts", [options["usable"][0] if options["usable"] else "self"], drafts)
    common.init("cl_kv", "streamingllm", KV_METHODS)
    common.init("cl_budget", 512, BUDGETS)
    common.init("cl_gamma", "optimize", GAMMAS)
    common.init("cl_acceptance", "published", ("published", "rate"))
    common.init("cl_rate", 0.8, lo=0.0, hi=0.99)
    common.init("cl_batch", 256, BATCHES)
    common.init("cl_curve_batches", [16, 64, 256], BATCHES)
    common.init("cl_gpus", ["h100-sxm", "a100-80gb", "rtx4090"], COMPARE)
    c1, c2, c3, c4 = st.columns(4)
    c1.multiselect("Draft(s)", drafts, key="cl_drafts", help="self = self-speculation")
    c2.selectbox("Draft KV cache", KV_METHODS, key="cl_kv")
    c2.selectbox("KV budget (tokens)", BUDGETS, key="cl_budget", help="optimize = 128..8192")
    c3.selectbox("Gamma (draft tokens per round)", GAMMAS, key="cl_gamma")
    c4.selectbox("Batch size (headline)", BATCHES, key="cl_batch")
    c4.multiselect("Batch sizes of the speedup curves", BATCHES, key="cl_curve_batches")
    if options["excluded"]:
        c1.caption("Not offered: " + "; ".join(options["excluded"]) + ".")
    st.multiselect("GPUs side by side", COMPARE, key="cl_gpus")
    common.sync_query_params(KEYS)

    kv = st.session_state.cl_kv
    budget = st.session_state.cl_budget
    draft_kv = kv if kv == "full" or budget == "optimize" else f"{kv}:{budget}"
    gamma = None if st.session_state.cl_gamma == "optimize" else int(st.session_state.cl_gamma)
    chosen = tuple(st.session_state.cl_drafts)
    if not chosen:
        st.warning(
            "Pick at least one draft: the drafts of this model are " + ", ".join(drafts) + "."
        )
        st.stop()
    if "self" in chosen and kv == "full":
        st.warning(
            "Self-speculation needs a compressed KV cache: pick streamingllm or snapkv as the "
            "draft KV cache, or another draft."
        )
        st.stop()
    rate, assumed = common.acceptance_control(c3, "cl", status(cfg, chosen, draft_kv))
    common.sync_query_params(KEYS)
    # the target must at least hold its weights and one token (the feasibility layer's
    # check, as the CLI's): else no length to report
    common.require_feasible(
        verdict(cfg, 1, 1, 1),
        f"Critical sequence length, batch {int(st.session_state.cl_batch):,} (modeled)",
        "Raise the GPUs per replica or use fp8/int4 weights.",
    )
    res = view(
        cfg,
        chosen,
        draft_kv,
        gamma,
        None if rate is None else float(rate),
        BATCHES,
        int(st.session_state.cl_batch),
        tuple(st.session_state.cl_curve_batches) or (int(st.session_state.cl_batch),),
        tuple(st.session_state.cl_gpus),
        assumed,
    )
    best = res["best"]
    m1, m2 = st.columns([1, 2])
    m1.metric(
        f"Critical sequence length, batch {int(st.session_state.cl_batch):,} (modeled)",
        common.thousands(res["critical_seq_len_text"]),
    )
    if res["pays_at_every_context"] and best is not None:
        m2.markdown(
            f"Speculative decoding beats plain decoding from the shortest context on: draft "
            f"**{best['draft']}**, KV **{best['draft_kv']}**, gamma **{best['gamma']}**, "
            f"speedup {best['speedup']:.2f}x at 1 token, acceptance rate "
            f"{best['acceptance_rate']:.2f}."
        )
    elif best is not None:
        m2.markdown(
            f"From this length on, the best configuration is draft **{best['draft']}**, KV "
            f"**{best['draft_kv']}**, gamma **{best['gamma']}** (speedup rises above 1x here; "
            f"acceptance rate {best['acceptance_rate']:.2f}); "
            f"{'fits' if best['fits'] else 'does NOT fit'} in memory."
        )
    common.modeled(
        f"{res['describe']}; drafts {', '.join(chosen)}, KV {draft_kv}; time model "
        "only (memory not required to fit)"
    )
    for line in res["placement"]:  # a draft at its own TP (the target's does not divide it)
        st.caption(line[:1].upper() + line[1:] + ".")
    if res["acceptance"]:
        st.caption(common.clean_source(res["acceptance"]))

    left, right = st.columns(2)
    sp = res["speedup"]
    fig = go.Figure()
    palette = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf")
    for i, (b, sub) in enumerate(sp.groupby("batch")):
        color = palette[i % len(palette)]
        fig.add_trace(
            go.Scatter(
                x=sub["context"],
                y=sub["best_speedup"],
                mode="lines",
                name=f"batch {int(b):,}",
                line={"color": color},
                hovertemplate="context %{x:,} tokens: %{y:.2f}x<extra>%{fullData.name}</extra>",
            )
        )
        oom = sub[~sub["fits"]]
        if not oom.empty:
            fig.add_trace(
                go.Scatter(
                    x=oom["context"],
                    y=oom["best_speedup"],
                    mode="markers",
                    marker={"symbol": "x-thin-open", "color": color, "size": 7},
                    name=f"batch {int(b):,}: does not fit",
                    legendgroup="oom",
                    hovertemplate="context %{x:,} tokens: %{y:.2f}x, does not fit<extra></extra>",
                )
            )
    common.marker_line(fig, 1.0, "no speedup", "y", line={"dash": "dash"})
    finite = sp["best_speedup"][np.isfinite(sp["best_speedup"])]
    y_hi = max(float(finite.max()) if len(finite) else 1.0, 1.0) * 1.1
    fig.update_layout(
        title="Best speedup vs context length (modeled)",
        xaxis={
            "type": "log",
            "title": "context length (tokens)",
            "range": common.log_range(float(sp["context"].min()), float(sp["context"].max()), 1.1),
        },
        yaxis={"title": "speedup over plain decoding (x)", "range": [0, y_hi]},
        height=440,
    )
    common.chart(fig, sp.rename(columns={"context": "context_tokens"}), "speedup vs context", left)

    by_gpu = res["by_gpu"]
    lo, hi = float(by_gpu["batch"].min()), float(by_gpu["batch"].max())
    curve = go.Figure()
    for gpu, sub in by_gpu.groupby("gpu", sort=False):
        curve.add_trace(
            go.Scatter(
                x=sub["batch"],
                y=sub["critical_seq_len"],
                mode="lines+markers",
                name=gpu,
                hovertemplate="batch %{x:,}: %{y:,} tokens<extra>%{fullData.name}</extra>",
            )
        )
    # where speculation pays at every context (or at none) there is no length to plot: a
    # light band at that batch (data units: shapes on a log axis take data values), one
    # legend entry per set of GPUs, the exact words in the table below
    seen = set()
    for batch, sub in by_gpu[by_gpu["critical_seq_len"].isna()].groupby("batch"):
        for every, label, color in (
            (True, "pays at every context", "green"),
            (False, "never pays", "gray"),
        ):
            gpus_here = sub[sub["pays_at_every_context"] == every]["gpu"].tolist()
            if not gpus_here:
                continue
            name = f"{label}: {', '.join(gpus_here)}"
            curve.add_shape(
                type="rect", xref="x", yref="paper", x0=batch / 1.25, x1=batch * 1.25,
                y0=0, y1=1, fillcolor=color, opacity=0.10, line_width=0, layer="below",
                name=name, legendgroup=name, showlegend=name not in seen,
            )  # fmt: skip
            seen.add(name)
    lengths = by_gpu["critical_seq_len"].dropna()
    y_lo, y_hi = (
        (float(lengths.min()), float(lengths.max())) if len(lengths) else (1.0, res["max_len"])
    )
    curve.update_layout(
        title="Critical length vs batch, per GPU (modeled)",
        xaxis={"type": "log", "title": "batch size", "range": common.log_range(lo, hi)},
        yaxis={
            "type": "log",
            "title": "critical sequence length (tokens)",
            "range": common.log_range(y_lo, y_hi, 1.6),
            "dtick": "D2",  # 1, 2, 5 per decade: no overprinted minor labels
        },
        legend={"orientation": "h", "y": -0.25},
        height=480,
    )
    common.chart(
        curve,
        by_gpu[["gpu", "batch", "critical_seq_len", "pays_at_every_context", "text"]].rename(
            columns={"critical_seq_len": "critical_seq_len_tokens"}
        ),
        "critical length vs batch",
        right,
    )
    table = by_gpu.pivot(index="batch", columns="gpu", values="text").map(common.thousands)
    table.index = [f"{int(b):,}" for b in table.index]
    table.index.name = "batch"
    st.table(common.fmt_table(table, index=True, humanize=False))  # GPU names as they are

common.sync_query_params(KEYS)
