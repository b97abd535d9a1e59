"""Shared pieces of the dashboard: the sidebar, session/URL state, error display, captions.

No model code lives in app/: every number comes from a perfmodel function (see compute.py).
State: every widget has a key in st.session_state; it starts from the URL query parameter
of the same name when there is one (so a URL reproduces a view), else from its default, and
`sync_query_params` writes the current values back to the URL after the page is drawn.
"""

from __future__ import annotations

import math
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
from perfmodel.specs.dtypes import PRECISIONS  # noqa: E402

WEIGHT_DTYPES = tuple(dict.fromkeys(w for w, _ in PRECISIONS))  # bf16, fp8, int4
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
    """Give st.session_state[key] its first value: the URL's (if valid) or the default."""
    if key in st.session_state:
        return st.session_state[key]
    value = None
    if key in st.query_params:
        value = _cast(st.query_params[key], default)
        if value is not None and options is not None:
            items = value if isinstance(value, list) else [value]
            if not items or any(v not in options for v in items):
                value = None
        if value is not None and not isinstance(value, list):
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                value = None
    st.session_state[key] = default if value is None else value
    return st.session_state[key]


def sync_query_params(keys) -> None:
    """Write the current values of `keys` (and the sidebar) to the URL."""
    wanted = {}
    for key in (*SIDEBAR_KEYS, *keys):
        if key in st.session_state:
            value = st.session_state[key]
            wanted[key] = (
                ",".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)
            )
    if {k: st.query_params.get(k) for k in wanted} != wanted:
        st.query_params.update(wanted)


def sidebar() -> dict:
    """Model, GPU, GPUs per replica, precision, profile and cost mode, shared across pages.

    Returns the deployment settings as plain values (hashable, cacheable).
    """
    from perfmodel.specs.hardware import list_gpus
    from perfmodel.specs.models import list_models
    from perfmodel.specs.profile import list_profiles

    models, gpus = list_models(), [g for g in list_gpus() if g != "cpu-generic"]
    profiles = ["auto", *list_profiles()]
    # widget state is dropped when a page does not draw the widget; re-assigning it at the
    # top of every page keeps the sidebar choice when the user switches pages
    for key in SIDEBAR_KEYS:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]
    init("model", SIDEBAR_DEFAULTS["model"], models)
    init("gpu", SIDEBAR_DEFAULTS["gpu"], gpus)
    init("num_gpus", SIDEBAR_DEFAULTS["num_gpus"], NUM_GPUS)
    init("weight_dtype", SIDEBAR_DEFAULTS["weight_dtype"], WEIGHT_DTYPES)
    init("kv_dtype", SIDEBAR_DEFAULTS["kv_dtype"], KV_DTYPES)
    init("profile", SIDEBAR_DEFAULTS["profile"], profiles)
    init("mode", SIDEBAR_DEFAULTS["mode"], MODES)
    with st.sidebar:
        st.header("Deployment")
        st.selectbox("Model (target)", models, key="model")
        st.selectbox("GPU", gpus, key="gpu")
        st.selectbox("GPUs per replica (TP)", NUM_GPUS, key="num_gpus")
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
    """A duration for display: milliseconds below one second, else seconds."""
    return f"{seconds * 1e3:.2f} ms" if seconds < 1 else f"{seconds:.3f} s"


def page_header(title: str, intro: str) -> None:
    st.title(title)
    st.caption(intro)


@contextmanager
def guard():
    """Bad input shows one red line (st.error), never a traceback."""
    try:
        yield
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


def log_paper_x(value: float, lo: float, hi: float) -> float:
    """Where `value` sits on a log axis whose range is [lo, hi] (data units), as a fraction
    of the plot width (xref='paper'): shapes and notes placed this way cannot be misread
    as log10 units or data units."""
    import math

    return (math.log10(value) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))


def modeled(basis: str) -> None:
    """The provenance line under a number or chart."""
    st.caption(f"Modeled — {basis}")


def log_axis_x(value: float) -> float:
    """Where to put a shape or annotation (add_vline) at `value` on a log x axis: plotly
    places them in log10 units there, so x=32 would be drawn at 10^32."""
    return math.log10(value)


def fmt_table(frame, formats: dict[str, str] | None = None):
    """A table for display (pandas Styler): the given per-column formats, other float columns
    to 4 significant digits, booleans as yes/no, missing values as a dash, never 'nan'."""
    formats = dict(formats or {})
    for col in frame.columns:
        if col in formats:
            continue
        kind = frame[col].dtype.kind
        if kind == "f":
            formats[col] = "{:.4g}"
        elif kind == "b":
            formats[col] = lambda v: "yes" if v else "no"
    return frame.style.format(formats, na_rep="–")
