"""Shared pieces of the dashboard: the sidebar, session/URL state, error display, captions.

No model code lives in app/: every number comes from a perfmodel function (see compute.py).
State: every widget has a key in st.session_state; it starts from the URL query parameter
of the same name when there is one (so a URL reproduces a view), else from its default, and
`sync_query_params` writes the current values back to the URL after the page is drawn.
"""

from __future__ import annotations

import math
import re
import sys
from contextlib import contextmanager
from pathlib import Path

import streamlit as st

# `streamlit run app/Home.py` puts app/ on sys.path, not the repository root; make both
# `import perfmodel` and `import app.compute` work from a source checkout.
_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from perfmodel.errors import PerfModelError  # noqa: E402
from perfmodel.specs.dtypes import FP4_FORMATS, PRECISIONS  # noqa: E402

# bf16, fp8, int4, then the checkpoint formats a feasible default may pick (gpt-oss: mxfp4)
WEIGHT_DTYPES = tuple(dict.fromkeys((*(w for w, _ in PRECISIONS), "fp8-block", *FP4_FORMATS)))
KV_DTYPES = tuple(dict.fromkeys(k for _, k in PRECISIONS))  # bf16, fp8
MODES = ("auto", "roofline", "additive")
NUM_GPUS = (1, 2, 4, 8)

SIDEBAR_DEFAULTS = {
    "model": "Llama-3.1-8B",
    "gpu": "h100-sxm",
    "num_gpus": 1,
    "weight_dtype": "bf16",
    "kv_dtype": "bf16",
    "profile": "auto",
    "mode": "auto",
}
SIDEBAR_KEYS = tuple(SIDEBAR_DEFAULTS)


def _cast(raw: str, default):
    """A query-parameter string as the type of the default (None when it does not parse)."""
    try:
        if isinstance(default, bool):
            return raw.lower() in ("1", "true", "yes")
        if isinstance(default, int):
            return int(float(raw))
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, list | tuple):
            return [type(default[0])(x) if default else x for x in raw.split(",") if x]
        return raw
    except (TypeError, ValueError):
        return None


def init(key: str, default, options=None, lo=None, hi=None):
    """Give st.session_state[key] its first value: the URL's (if valid) or the default.

    An invalid URL value is not silently replaced: it is recorded (url_problems) and the
    page reports it in one warning line (report_url_problems)."""
    if key in st.session_state:
        return st.session_state[key]
    value = None
    if key in st.query_params:
        raw = st.query_params[key]
        why = ""
        if options is not None:  # by the option's text: options may mix types ('optimize', 512)
            by_text = {str(o): o for o in options}
            items = [x for x in raw.split(",") if x] if isinstance(default, list) else [raw]
            value = [by_text.get(x) for x in items]
            if not items or any(v is None for v in value):
                why, value = "not one of " + ", ".join(by_text), None
            elif not isinstance(default, list):
                value = value[0]
        else:
            value = _cast(raw, default)
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            why = (
                ""
                if value is not None
                else "not a number"
                if isinstance(default, int | float)
                else "not valid"
            )
        if value is not None and not isinstance(value, list):
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                why = (
                    f"outside {lo:g}..{hi:g}"
                    if lo is not None and hi is not None
                    else "out of range"
                )
                value = None
        if value is None:
            shown = default if not isinstance(default, list) else ",".join(map(str, default))
            st.session_state.setdefault(URL_PROBLEMS, []).append(
                f"{key}={raw!s} ({why}; using {shown})"
            )
    st.session_state[key] = default if value is None else value
    return st.session_state[key]


URL_PROBLEMS = "_url_problems"


def report_url_problems() -> None:
    """One warning line naming every URL value that was invalid and what replaced it."""
    problems = st.session_state.pop(URL_PROBLEMS, None)
    if problems:
        st.warning("Ignored in the URL: " + "; ".join(problems) + ".")


def sync_query_params(keys) -> None:
    """Write the current values of `keys` (and the sidebar) to the URL, and report URL
    values that were invalid. Pages call it right after drawing their widgets (before any
    computation or st.stop), so the URL always encodes what the page shows."""
    report_url_problems()
    wanted = {}
    for key in (*SIDEBAR_KEYS, *keys):
        if key in st.session_state:
            value = st.session_state[key]
            wanted[key] = (
                ",".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)
            )
    if {k: st.query_params.get(k) for k in wanted} != wanted:
        st.query_params.update(wanted)


# what depends on the target model: remembered per model (switching back restores it) and
# re-derived for a model seen the first time (feasible TP and precision, valid drafts)
MODEL_SCOPED = (
    "num_gpus", "weight_dtype", "kv_dtype", "cl_drafts", "sp_speculator", "sp_batch", "sd_draft",
)  # fmt: skip
_PER_MODEL = "_per_model"
_DEPLOYMENT_KEYS = ("num_gpus", "weight_dtype", "kv_dtype")


def _feasible_default(model: str, gpu: str, weight_dtype: str, kv_dtype: str) -> dict:
    from app.feasibility import feasible_default

    return st.cache_data(show_spinner=False, max_entries=256)(feasible_default)(
        model, gpu, weight_dtype, kv_dtype
    )


def _apply_default(model: str, gpu: str) -> None:
    d = _feasible_default(
        model,
        gpu,
        st.session_state.get("weight_dtype", "bf16"),
        st.session_state.get("kv_dtype", "bf16"),
    )
    for key in _DEPLOYMENT_KEYS:
        st.session_state[key] = d[key]


def _on_model_change() -> None:
    """Remember the old model's choices; restore the new model's, or derive them."""
    ss = st.session_state
    memory = ss.setdefault(_PER_MODEL, {})
    old = ss.get("_model_prev")
    if old:
        memory[old] = {k: ss[k] for k in MODEL_SCOPED if k in ss}
    new = ss["model"]
    for key in MODEL_SCOPED:  # the URL held the old model's values
        if key in st.query_params:
            del st.query_params[key]
        if key not in _DEPLOYMENT_KEYS:
            ss.pop(key, None)  # the page derives it again (init) unless remembered
    if new in memory:
        ss.update(memory[new])
    else:
        _apply_default(new, ss["gpu"])
    ss["_model_prev"] = new


def _on_gpu_change() -> None:
    """A GPU with less memory may need more of them: raise TP to the smallest that fits."""
    ss = st.session_state
    d = _feasible_default(ss["model"], ss["gpu"], ss["weight_dtype"], ss["kv_dtype"])
    if d["weight_dtype"] == ss["weight_dtype"] and d["kv_dtype"] == ss["kv_dtype"]:
        ss["num_gpus"] = max(int(ss["num_gpus"]), d["num_gpus"])


def sidebar() -> dict:
    """Model, GPU, GPUs per replica, precision, profile and cost mode, shared across pages.

    Defaults are feasible: TP (and, where nothing fits at bf16, the precision) is the smallest
    that serves one 32k-token request of the model on that GPU (app.feasibility). Returns the
    deployment settings as plain values (hashable, cacheable).
    """
    from perfmodel.specs.hardware import list_gpus
    from perfmodel.specs.models import list_models
    from perfmodel.specs.profile import list_profiles

    models, gpus = list_models(), [g for g in list_gpus() if g != "cpu-generic"]
    profiles = ["auto", *list_profiles()]
    # widget state is dropped when a page does not draw the widget; re-assigning it at the
    # top of every page keeps the sidebar choice when the user switches pages
    for key in (*SIDEBAR_KEYS, *MODEL_SCOPED):
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]
    model = init("model", SIDEBAR_DEFAULTS["model"], models)
    gpu = init("gpu", SIDEBAR_DEFAULTS["gpu"], gpus)
    if "num_gpus" not in st.session_state and not any(
        k in st.query_params for k in _DEPLOYMENT_KEYS
    ):
        _apply_default(model, gpu)
    init("num_gpus", SIDEBAR_DEFAULTS["num_gpus"], NUM_GPUS)
    init("weight_dtype", SIDEBAR_DEFAULTS["weight_dtype"], WEIGHT_DTYPES)
    init("kv_dtype", SIDEBAR_DEFAULTS["kv_dtype"], KV_DTYPES)
    init("profile", SIDEBAR_DEFAULTS["profile"], profiles)
    init("mode", SIDEBAR_DEFAULTS["mode"], MODES)
    st.session_state.setdefault("_model_prev", model)
    with st.sidebar:
        st.header("Deployment")
        st.selectbox("Model (target)", models, key="model", on_change=_on_model_change)
        st.selectbox("GPU", gpus, key="gpu", on_change=_on_gpu_change)
        st.selectbox(
            "GPUs per replica (TP)",
            NUM_GPUS,
            key="num_gpus",
            help="Default: the smallest TP that holds the model and one 32k-token request.",
        )
        st.selectbox("Weight dtype", WEIGHT_DTYPES, key="weight_dtype")
        st.selectbox("KV-cache dtype", KV_DTYPES, key="kv_dtype")
        st.selectbox(
            "Efficiency profile",
            profiles,
            key="profile",
            help="auto = the profile fitted for the GPU; ideal = datasheet peaks.",
        )
        st.selectbox("Cost mode", MODES, key="mode", help="auto = the profile's mode.")
        st.caption("All numbers on these pages are modeled by perfmodel unless marked measured.")
    return settings()


def settings() -> dict:
    return {k: st.session_state.get(k, SIDEBAR_DEFAULTS[k]) for k in SIDEBAR_KEYS}


def fmt_s(seconds: float) -> str:
    """A duration for display: milliseconds below one second, else seconds (thousands
    separated)."""
    return f"{seconds * 1e3:.2f} ms" if seconds < 1 else f"{seconds:,.3f} s"


# Headline metrics wrap instead of being cut with an ellipsis (1280x800 and narrower), at a
# size that fits four to a row; labels wrap too.
_CSS = """<style>
[data-testid="stMetricValue"], [data-testid="stMetricValue"] * {
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important;
  overflow-wrap: anywhere; }
[data-testid="stMetricValue"] { font-size: 1.6rem; line-height: 1.25; }
[data-testid="stMetricLabel"], [data-testid="stMetricLabel"] *,
[data-testid="stMetricDelta"], [data-testid="stMetricDelta"] * {
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important; }
</style>"""


def page_header(title: str, intro: str) -> None:
    st.html(_CSS)
    st.title(title)
    st.caption(intro)


class SkipSection(Exception):
    """Ends the `with guard():` section it is raised in, silently (the rest of the page runs)."""


def require_feasible(verdict: dict, label: str, hint: str = "", stop: bool = True) -> None:
    """The headline of a page whose deployment cannot serve the request: `label` reads
    "does not fit" (never a number) and one red line says what does not fit and by how much
    (app.feasibility.verdict: the feasibility layer's reasons); the page stops there (with
    stop=False only the enclosing `with guard():` section ends). Labels
    of what runs only because it was asked for are shown as a caption when it does fit."""
    if verdict["ok"]:
        if verdict["labels"]:
            st.caption("; ".join(verdict["labels"]))
        return
    st.metric(label, "does not fit")
    st.error(
        f"{verdict['describe']} does not fit: {verdict['why']}." + (f" {hint}" if hint else "")
    )
    if stop:
        st.stop()
    raise SkipSection  # only this section: the page's other sections still run


def infeasible(exc: PerfModelError, label: str) -> None:
    """A planner's refusal (InfeasibleError: the feasibility layer's Verdict) as a headline:
    `label` reads "not feasible" and every reason is listed."""
    from perfmodel.planners.feasibility import InfeasibleError

    st.metric(label, "not feasible")
    if isinstance(exc, InfeasibleError):
        st.error("; ".join(r.message for r in exc.verdict.reasons) + ".")
    else:
        st.error(str(exc))


@contextmanager
def guard():
    """Bad input shows one red line (st.error), never a traceback."""
    try:
        yield
    except SkipSection:
        pass
    except PerfModelError as exc:
        st.error(f"Input error: {exc}")
    except Exception as exc:  # a bug or an unexpected input: still no traceback in the page
        st.error(f"Could not compute this view ({type(exc).__name__}): {exc}")


def acceptance_control(col, prefix: str, status: dict) -> tuple[float | None, float | None]:
    """The acceptance control of the speculative-decoding pages: (given rate, assumed rate).

    Where published data covers the chosen target and drafts, a choice between it and a rate
    the user gives; where it does not, a slider for the assumed rate, labeled as assumed (the
    same default as the recommend and capacity planners use). Keys: <prefix>_acceptance,
    <prefix>_rate.
    """
    mode_key, rate_key = f"{prefix}_acceptance", f"{prefix}_rate"
    if status["published"]:
        col.radio("Acceptance", ("published", "rate"), key=mode_key, horizontal=True)
        if st.session_state[mode_key] == "rate":
            col.slider("Per-token acceptance rate", 0.0, 0.99, step=0.01, key=rate_key)
            return float(st.session_state[rate_key]), None
        return None, None
    col.slider(
        "Assumed acceptance rate (per token)",
        0.0,
        0.99,
        step=0.01,
        key=rate_key,
        help="No published acceptance data for this target and draft: every number on this "
        "page rests on this assumed rate.",
    )
    col.caption(
        f"No published acceptance data for {status['target']} with these drafts: the rate "
        f"above is assumed (default {status['assumed_default']:g}, as the recommendation uses)."
    )
    return None, float(st.session_state[rate_key])


_PAPER_TEXT = re.compile(r"\b\d{3}_[0-9a-f]{16}\.txt")


def clean_source(text: str) -> str:
    """A provenance line for display: the paper's extracted-text files are named by a hash
    in validation/published/; the page says what they are instead."""
    return _PAPER_TEXT.sub("the paper's text", text)


def thousands(text: str) -> str:
    """Thousands separators in the whole numbers of a planner's text ('2458 tokens' ->
    '2,458 tokens'), so every page writes numbers one way."""
    return re.sub(r"(?<![\d.,])\d{4,}(?![\d.])", lambda m: f"{int(m.group()):,}", text)


def modeled(basis: str) -> None:
    """The provenance line under a number or chart."""
    st.caption(f"Modeled — {basis}")


def marker_line(
    fig, value: float, text: str, axis: str = "x", log: bool = False, line: dict | None = None
):
    """A vertical (axis='x') or horizontal (axis='y') line at `value`, in data units, with
    its label. plotly.js places a shape on a log axis in data units but an annotation in
    log10 units (read back from the rendered figure by tests/test_app_browser.py), so each
    gets its own coordinate; both carry name=text for that test."""
    at = math.log10(value) if log else value
    style = {"dash": "dot", "color": "#444", "width": 1.5, **(line or {})}
    if axis == "x":
        fig.add_shape(
            type="line", xref="x", yref="paper", x0=value, x1=value, y0=0, y1=1,
            line=style, name=text,
        )  # fmt: skip
        fig.add_annotation(
            xref="x", yref="paper", x=at, y=1, text=text, showarrow=False, xanchor="left",
            yanchor="top", name=text, bgcolor="rgba(255,255,255,0.7)",
        )  # fmt: skip
    else:
        fig.add_shape(
            type="line", xref="paper", yref="y", x0=0, x1=1, y0=value, y1=value,
            line=style, name=text,
        )  # fmt: skip
        fig.add_annotation(
            xref="paper", yref="y", x=1, y=at, text=text, showarrow=False, xanchor="right",
            yanchor="bottom", name=text, bgcolor="rgba(255,255,255,0.7)",
        )  # fmt: skip
    return fig


def log_range(lo: float, hi: float, pad: float = 1.3) -> list[float]:
    """A log axis' range (plotly wants log10 units there) spanning [lo, hi] data units with
    a margin: set explicitly, so a resize cannot autoscale it into something else."""
    return [math.log10(lo / pad), math.log10(hi * pad)]


def chart(fig, data, name: str, where=None) -> None:
    """Draw a figure and offer the data behind it as CSV (column names carry the units)."""
    where = where or st
    where.plotly_chart(fig)
    where.download_button(
        f"Data (CSV): {name}",
        data.to_csv(index=False).encode(),
        file_name=f"{name.lower().replace(' ', '_').replace('/', '_')}.csv",
        mime="text/csv",
        key=f"dl_{name}",
    )


def fmt_int(n) -> str:
    return f"{int(n):,}"


def plural(n: int, word: str) -> str:
    """specs.units.plural's rule with a thousands separator, as every number on the pages."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


_UNITS = (
    ("_tok_s", "tok/s"), ("_flop_s", "FLOP/s"), ("_flop_per_byte", "FLOP/B"), ("_ms", "ms"),
    ("_s", "s"), ("_gb", "GB"), ("_bytes", "bytes"), ("_usd", "USD"),
)  # fmt: skip
_WORDS = {
    "ttft": "TTFT", "tpot": "TPOT", "tp": "TP", "pp": "PP", "dp": "DP", "gpu": "GPU",
    "gpus": "GPUs", "kv": "KV", "qps": "QPS", "mape": "MAPE", "ape": "APE", "sd": "SD",
    "slo": "SLO", "flops": "FLOPs", "mtok": "M tokens", "e2e": "e2e", "oom": "OOM",
}  # fmt: skip


def header(column: str) -> str:
    """A column name for display: words, acronyms in capitals, the unit in parentheses
    ('ttft_s' -> 'TTFT (s)', 'cost_per_mtok' -> 'cost per M tokens')."""
    name, unit = str(column), ""
    for suffix, text in _UNITS:
        if name.endswith(suffix) and len(name) > len(suffix):
            name, unit = name[: -len(suffix)], text
            break
    words = [_WORDS.get(w, w) for w in name.split("_") if w]
    if words:
        words[0] = words[0][:1].upper() + words[0][1:]
    return " ".join(words) + (f" ({unit})" if unit else "")


def fmt_num(value) -> str:
    """A number with 4 significant digits, thousands separated, never in e-notation."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    v = float(value)
    if v == 0 or abs(v) >= 1000:
        return f"{v:,.0f}"
    decimals = max(0, 3 - math.floor(math.log10(abs(v))))
    return f"{v:,.{decimals}f}"


def fmt_si(value) -> str:
    """A large count (FLOPs, bytes) with an SI prefix: 8.597 T, 1.20 G."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    v = float(value)
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= factor:
            return f"{fmt_num(v / factor)} {prefix}"
    return fmt_num(v)


def fmt_table(
    frame, formats: dict[str, str] | None = None, index: bool = False, humanize: bool = True
):
    """A table for display (pandas Styler): the given per-column formats, other numbers with
    4 significant digits and thousands separators (never e-notation), booleans as yes/no,
    missing values as a dash (never 'nan' or 'None'), headers in words with units."""
    formats = dict(formats or {})
    for col in frame.columns:
        if col in formats:
            continue
        kind = frame[col].dtype.kind
        if kind == "f":
            formats[col] = fmt_num
        elif kind in "iu":
            formats[col] = "{:,}"
        elif kind == "b":
            formats[col] = lambda v: "yes" if v else "no"
        elif kind == "O":
            formats[col] = lambda v: "–" if v is None or v != v else str(v)
    name = header if humanize else str
    shown = frame.rename(columns=name)
    styler = shown.style.format({name(k): v for k, v in formats.items()}, na_rep="–")
    return styler if index else styler.hide(axis="index")
