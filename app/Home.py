"""perfmodel dashboard: home page (run with `perfmodel app`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import streamlit as st  # noqa: E402

from app import common  # noqa: E402

st.set_page_config(page_title="perfmodel", layout="wide")
common.sidebar()
common.page_header(
    "perfmodel dashboard",
    "Analytical performance model for LLM inference: every number here is modeled by "
    "perfmodel with the efficiency profile named beside it, unless it is marked measured.",
)
st.markdown(
    """
Pick the target model, GPU, precision and efficiency profile in the sidebar; they are shared
by every page, and the URL of a page reproduces what it shows.

| page | what it answers |
|---|---|
| **Critical sequence length** | from which context length MagicDec-style speculative decoding speeds up decoding, per batch size and GPU |
| **SpecPrefill planner** | TTFT vs keep rate, speculator/target split, quality constraint, recommended keep rate, break-even prompt length, QPS gain |
| **Speculative decoding planner** | speedup over (gamma, KV budget), best configuration, memory per GPU and OOM |
| **Recommend & capacity** | the joint recommendation for a workload, fleet sizing and cost, downloadable reports |
| **Model explorer & validation** | per-operator breakdown on a roofline; predicted vs measured for published tables and your own profiler CSV |

The same functions back the command-line tool (`perfmodel`): the app has no model of its own.
"""
)
common.sync_query_params(())
