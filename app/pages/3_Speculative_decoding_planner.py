"""Speculative decoding planner: speedup over (gamma, KV budget), best setting, memory."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import plotly.graph_objects as go  # noqa: E402
import streamlit as st  # noqa: E402

from app import common, compute  # noqa: E402

TITLE = "Speculative decoding planner"
view = st.cache_data(show_spinner=False, max_entries=256)(compute.specdecode_view)
status = st.cache_data(show_spinner=False, max_entries=128)(compute.acceptance_status)
smaller = st.cache_data(show_spinner=False)(compute.smaller_models)
KV_METHODS = ("streamingllm", "snapkv", "full")

st.set_page_config(page_title=TITLE, layout="wide")
cfg = common.sidebar()
common.page_header(
    TITLE,
    "MagicDec-style speculative decoding: a draft (a small model or the target itself) with a "
    "full or compressed KV cache proposes gamma tokens, the target verifies them in one pass.",
)
with common.guard():
    drafts = [*smaller(cfg["model"]), "self"]
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
    if best is None:
        m1.metric("Best speedup (modeled)", "out of memory")
        st.error("No configuration fits in GPU memory at this batch and context.")
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
    if res["acceptance"]:
        st.caption(res["acceptance"])

    heat, fits = res["heat"], res["fits"]
    text = [
        [f"{v:.2f}" + ("" if fits[row] else " OOM") for v in heat.loc[row]] for row in heat.index
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
            colorbar={"title": "speedup"},
            hovertemplate="KV %{y}, gamma %{x}: %{z:.3f}x<extra></extra>",
        )
    )
    fig.update_layout(
        title=f"Speedup over (gamma, draft KV budget), batch {st.session_state.sd_batch}, "
        f"context {st.session_state.sd_context} (modeled; OOM = does not fit)",
        xaxis_title="gamma (draft tokens per round)",
        yaxis_title="draft KV cache",
        height=440,
    )
    st.plotly_chart(fig)

    mem = res["memory"]
    mfig = go.Figure()
    for name, sub in mem.groupby("config", sort=False):
        mfig.add_trace(go.Scatter(x=sub["batch"], y=sub["total_gb"], mode="lines", name=name))
    cap = res["capacity_gb"]
    top = max(float(mem["total_gb"].max()), cap) * 1.1
    mfig.add_hrect(
        y0=cap,
        y1=top,
        fillcolor="red",
        opacity=0.12,
        line_width=0,
        annotation_text="out of memory",
        annotation_position="top left",
    )
    mfig.add_hline(y=cap, line_color="red", annotation_text=f"usable {cap:.1f} GB")
    mfig.add_vline(
        x=common.log_axis_x(st.session_state.sd_batch),
        line_dash="dot",
        annotation_text="this batch",
    )
    mfig.update_layout(
        title=f"Memory per GPU vs batch at context {st.session_state.sd_context} (modeled)",
        xaxis={"type": "log", "title": "batch size"},
        yaxis={"title": "GB per GPU", "range": [0, top]},
        height=420,
    )
    st.plotly_chart(mfig)
    st.subheader("Top configurations (that fit)")
    if not res["top"].empty:
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
        ms = {c: "{:.3f}" for c in cols if c.endswith("_ms")}
        st.dataframe(
            common.fmt_table(
                res["top"][cols], {**ms, "speedup": "{:.2f}x", "acceptance_len": "{:.2f}"}
            ),
            hide_index=True,
        )

common.sync_query_params(
    ("sd_draft", "sd_kv", "sd_batch", "sd_context", "sd_output_len", "sd_acceptance", "sd_rate")
)
