"""Speculative decoding planner: speedup over (gamma, KV budget), best setting, memory."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import plotly.graph_objects as go  # noqa: E402
import streamlit as st  # noqa: E402

from app import common, compute, feasibility  # noqa: E402

TITLE = "Speculative decoding planner"
view = st.cache_data(show_spinner=False, max_entries=256)(compute.specdecode_view)
status = st.cache_data(show_spinner=False, max_entries=128)(compute.acceptance_status)
verdict = st.cache_data(show_spinner=False, max_entries=256)(feasibility.verdict)
helpers = st.cache_data(show_spinner=False, max_entries=256)(feasibility.helper_options)
KV_METHODS = ("streamingllm", "snapkv", "full")
KEYS = ("sd_draft", "sd_kv", "sd_batch", "sd_context", "sd_output_len", "sd_acceptance", "sd_rate")

st.set_page_config(page_title=TITLE, layout="wide")
cfg = common.sidebar()
common.page_header(
    TITLE,
    "MagicDec-style speculative decoding: a draft (a small model or the target itself) with a "
    "full or compressed KV cache proposes gamma tokens, the target verifies them in one pass.",
)
with common.guard():
    options = helpers(cfg, "draft")
    drafts = [*options["usable"], "self"]
    common.init("sd_draft", drafts[0], drafts)
    common.init("sd_kv", "streamingllm", KV_METHODS)
    common.init("sd_batch", 32, lo=1, hi=4096)
    common.init("sd_context", 8192, lo=1, hi=1_048_576)
    common.init("sd_output_len", 256, lo=0, hi=131_072)
    common.init("sd_acceptance", "published", ("published", "rate"))
    common.init("sd_rate", 0.8, lo=0.0, hi=0.99)
    c1, c2, c3, c4 = st.columns(4)
    c1.selectbox("Draft", drafts, key="sd_draft", help="self = self-speculation")
    c1.selectbox("Draft KV cache", KV_METHODS, key="sd_kv")
    c2.number_input("Batch", min_value=1, max_value=4096, step=1, key="sd_batch")
    c2.number_input(
        "Context (prompt) length", min_value=1, max_value=1_048_576, step=1024, key="sd_context"
    )
    c3.number_input(
        "Output length (memory)", min_value=0, max_value=131_072, step=64, key="sd_output_len"
    )
    if options["excluded"]:
        c1.caption("Not offered: " + "; ".join(options["excluded"]) + ".")
    common.sync_query_params(KEYS)
    if st.session_state.sd_draft == "self" and st.session_state.sd_kv == "full":
        st.warning("Self-speculation needs a compressed KV cache: pick streamingllm or snapkv.")
        st.stop()
    kv_choice = st.session_state.sd_kv
    rate, assumed = common.acceptance_control(
        c4,
        "sd",
        status(
            cfg,
            (st.session_state.sd_draft,),
            kv_choice if kv_choice == "full" else f"{kv_choice},full",
        ),
    )
    common.require_feasible(
        verdict(
            cfg,
            int(st.session_state.sd_batch),
            int(st.session_state.sd_context),
            max(int(st.session_state.sd_output_len), 1),
        ),
        "Best speedup (modeled)",
        "Lower the batch or the context, or raise the GPUs per replica in the sidebar.",
    )
    res = view(
        cfg,
        st.session_state.sd_draft,
        st.session_state.sd_kv,
        int(st.session_state.sd_batch),
        int(st.session_state.sd_context),
        int(st.session_state.sd_output_len),
        rate,
        assumed,
    )
    best = res["best"]
    m1, m2, m3, m4 = st.columns(4)
    if best is None:  # the target alone fits (checked above): its draft does not
        m1.metric("Best speedup (modeled)", "does not fit")
        st.error(
            "No draft configuration fits in GPU memory beside the target at this batch and "
            "context (the target alone fits)."
        )
    else:
        m1.metric("Best speedup (modeled)", f"{best['speedup']:.2f}x")
        m2.metric("Best configuration", f"{best['draft_kv']}, gamma {best['gamma']}")
        m3.metric(
            "Time per token (modeled)",
            f"{best['t_sd_ms']:.2f} ms",
            f"{best['t_sd_ms'] - best['t_autoregressive_ms']:+.2f} ms vs autoregressive",
            delta_color="inverse",
        )
        m4.metric(
            "Memory per GPU (modeled)",
            f"{best['memory']['total_gb']:.1f} / {res['capacity_gb']:.1f} GB",
        )
    if best is not None and not res["pays"]:
        st.info(
            f"Speculative decoding does not pay here: the best configuration is "
            f"{best['speedup']:.2f}x plain decoding, so decode without a draft at this batch "
            "and context (try a longer context, a larger batch or a smaller KV budget)."
        )
    common.modeled(f"target {res['describe']}, draft {st.session_state.sd_draft}; {res['basis']}")
    for line in res["placement"]:  # a draft at its own TP (the target's does not divide it)
        st.caption(line[:1].upper() + line[1:] + ".")
    if res["acceptance"]:
        st.caption(common.clean_source(res["acceptance"]))

    heat, fits = res["heat"], res["fits"]
    no_data = [row for row in heat.index if heat.loc[row].isna().all()]
    heat = heat.drop(index=no_data)  # no acceptance rate: no speedup to show
    if no_data:
        st.caption(
            "Not in the heatmap, for lack of a published acceptance rate: KV "
            + ", ".join(no_data)
            + ". Choose 'rate' under Acceptance to give one and see them."
        )
    text = [
        [("–" if v != v else f"{v:.2f}x") + ("" if fits[row] else " OOM") for v in heat.loc[row]]
        for row in heat.index
    ]
    fig = go.Figure(
        go.Heatmap(
            z=heat.values,
            x=[str(g) for g in heat.columns],
            y=list(heat.index),
            text=text,
            texttemplate="%{text}",
            colorscale="RdYlGn",
            zmid=1.0,
            colorbar={"title": "speedup (x)"},
            hovertemplate="KV %{y}, gamma %{x}: %{text} speedup over plain decoding<extra></extra>",
        )
    )
    fig.update_layout(
        title="Speedup by gamma and draft KV cache (modeled)",
        xaxis_title="gamma (draft tokens per round)",
        yaxis_title="draft KV cache",
        height=160 + 40 * max(len(heat.index), 3),
    )
    st.caption(
        f"Batch {int(st.session_state.sd_batch):,}, context "
        f"{int(st.session_state.sd_context):,} tokens; OOM = does not fit in GPU memory; "
        "– = no acceptance rate for that cell."
    )
    heat_rows = heat.reset_index(names="draft_kv").melt(
        id_vars="draft_kv", var_name="gamma", value_name="speedup_x"
    )
    common.chart(fig, heat_rows, "speedup heatmap")

    mem = res["memory"]
    batch = int(st.session_state.sd_batch)
    mfig = go.Figure()
    for name, sub in mem.groupby("config", sort=False):
        mfig.add_trace(
            go.Scatter(
                x=sub["batch"],
                y=sub["total_gb"],
                mode="lines",
                name=name,
                hovertemplate="batch %{x:,}: %{y:,.1f} GB per GPU<extra>%{fullData.name}</extra>",
            )
        )
    cap = res["capacity_gb"]
    top = cap * 1.5  # the axis ends a little above the usable memory: what matters is the line
    mfig.add_hrect(
        y0=cap,
        y1=top,
        fillcolor="red",
        opacity=0.12,
        line_width=0,
        annotation_text="out of memory",
        annotation_position="top left",
    )
    common.marker_line(mfig, cap, f"usable {cap:,.1f} GB", "y", line={"color": "red"})
    common.marker_line(mfig, batch, f"this batch ({batch:,})", "x", log=True)
    mfig.update_layout(
        title=f"Memory per GPU vs batch, context {int(st.session_state.sd_context):,} (modeled)",
        xaxis={
            "type": "log",
            "title": "batch size",
            "range": common.log_range(
                min(mem["batch"].min(), batch), max(mem["batch"].max(), batch)
            ),
        },
        yaxis={"title": "GB per GPU", "range": [0, top]},
        height=420,
    )
    common.chart(mfig, mem.rename(columns={"total_gb": "memory_per_gpu_gb"}), "memory vs batch")
    if not res["top"].empty:
        st.subheader("Top configurations (that fit)")
        cols = [
            "draft",
            "draft_kv",
            "gamma",
            "speedup",
            "t_draft_ms",
            "t_verify_ms",
            "t_sd_ms",
            "t_autoregressive_ms",
            "acceptance_len",
            "fits",
        ]
        ms = {c: "{:,.3f}" for c in cols if c.endswith("_ms")}
        st.table(
            common.fmt_table(
                res["top"][cols], {**ms, "speedup": "{:.2f}x", "acceptance_len": "{:.2f}"}
            ),
        )

common.sync_query_params(KEYS)
