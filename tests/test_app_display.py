"""Dashboard display fixes, through streamlit.testing.v1.AppTest: SLO defaults equal the
CLI's, vertical markers on log axes sit at their value (not 10^value), seconds and
milliseconds never share an axis, and tables show formatted values (no raw floats, no nan)."""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("streamlit")
import pyarrow as pa  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from perfmodel.planners.slo import DEFAULT_SLO_TPOT_S, DEFAULT_SLO_TTFT_S  # noqa: E402

PAGES = Path(__file__).resolve().parent.parent / "app" / "pages"
RECOMMEND = PAGES / "4_Recommend_and_capacity.py"
SPECDECODE = PAGES / "3_Speculative_decoding_planner.py"
SAFETY_S = 300  # AppTest's per-run limit: a safety net, not a speed budget
NUMBER = re.compile(r"^[-+$]?([\d,]*\.?\d+)(e[-+]?\d+)?[%x]?$")


def raw_float(cell: str) -> bool:
    """A number printed unformatted: 6+ decimals (pandas' default precision) carrying 5+
    significant digits; '0.0003151' ({:.4g}) and '$1,234.56' are formatted."""
    match = NUMBER.match(cell.strip())
    if not match or "." not in match.group(1):
        return False
    decimals = len(match.group(1).split(".")[1])
    significant = len(re.sub(r"\D", "", match.group(1)).lstrip("0"))
    return decimals >= 6 and significant >= 5


def run(page: Path, **query) -> AppTest:
    at = AppTest.from_file(str(page), default_timeout=SAFETY_S)
    for key, value in query.items():
        at.query_params[key] = str(value)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def figures(at: AppTest) -> dict[str, dict]:
    out = {}
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        out[spec["layout"]["title"]["text"]] = spec
    return out


def values(data) -> list[float]:
    """A trace's coordinates: a list, or plotly's typed array {'dtype', 'bdata' (base64)}."""
    if isinstance(data, dict):
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"]).tolist()
    return list(data)


def vline_x(fig: dict, text: str) -> float:
    """The x of the vertical marker whose label starts with `text`, in data units. plotly.js
    reads a shape's x on a log axis in data units and an annotation's in log10 units (the
    browser test reads both back from the drawn figure): each must use its own."""
    (note,) = [a for a in fig["layout"]["annotations"] if a.get("text", "").startswith(text)]
    (shape,) = [s for s in fig["layout"]["shapes"] if s.get("name") == note["text"]]
    assert shape["xref"] == "x" and shape["x0"] == shape["x1"]
    log = fig["layout"]["xaxis"].get("type") == "log"
    assert note["x"] == pytest.approx(math.log10(shape["x0"]) if log else shape["x0"])
    return shape["x0"]


def test_capacity_slo_defaults_are_the_clis():
    assert (DEFAULT_SLO_TTFT_S, DEFAULT_SLO_TPOT_S) == (2.0, 0.05)  # DESIGN / README values
    at = run(RECOMMEND)
    captions = " ".join(c.value for c in at.caption)
    assert "SLOs TTFT 2 s, TPOT 0.05 s (defaults where none given)" in captions


@pytest.mark.parametrize("qps", [1, 100])
def test_this_load_marker_sits_at_the_load(qps):
    fig = figures(run(RECOMMEND, rc_qps=qps))["Fleet cost per hour vs load (modeled)"]
    assert fig["layout"]["xaxis"]["type"] == "log"
    assert vline_x(fig, "this load") == pytest.approx(qps)
    lo, hi = (10**v for v in fig["layout"]["xaxis"]["range"])  # set, not autoscaled
    assert lo <= qps <= hi and hi / lo < 1e3


def test_memory_chart_batch_marker_on_the_batch_axis():
    at = run(SPECDECODE, sd_batch=32)
    (fig,) = [f for t, f in figures(at).items() if t.startswith("Memory per GPU vs batch")]
    assert fig["layout"]["xaxis"]["type"] == "log"
    x = vline_x(fig, "this batch")
    assert x == pytest.approx(32)
    batches = [b for trace in fig["data"] for b in values(trace["x"])]
    assert min(batches) <= x <= max(batches)
    # the memory axis ends just above the usable memory, whatever the largest batch needs
    usable = [s for s in fig["layout"]["shapes"] if s.get("name", "").startswith("usable")]
    assert fig["layout"]["yaxis"]["range"][1] == pytest.approx(1.5 * usable[0]["y0"])


def test_seconds_and_milliseconds_on_separate_axes():
    fig = figures(run(RECOMMEND))["Baseline vs recommended configuration (modeled)"]
    titles = {
        k: v.get("title", {}).get("text") for k, v in fig["layout"].items() if k.startswith("yaxis")
    }
    assert sorted(titles.values()) == ["milliseconds", "seconds"]
    axes = {trace.get("yaxis", "y") for trace in fig["data"]}
    assert axes == {"y", "y2"}


def display_cells(frame_element) -> list[str]:
    raw = frame_element.proto.arrow_data
    if raw.HasField("styler") and raw.styler.display_values:
        shown = pa.ipc.open_stream(raw.styler.display_values).read_pandas()
    else:
        shown = frame_element.value
        assert not any(k == "f" for k in shown.dtypes.map(lambda d: d.kind)), shown.dtypes
    return [str(v) for v in shown.to_numpy().ravel()]


@pytest.mark.parametrize("page", sorted(PAGES.glob("[1-5]_*.py")), ids=lambda p: p.stem)
def test_tables_are_formatted(page):
    at = run(page)
    assert not at.dataframe, "pages show st.table: its DOM text is what the user reads"
    for frame in at.table:
        cells = display_cells(frame)
        assert cells
        assert not [c for c in cells if c.lower() in ("nan", "none", "<na>")], cells
        assert not [c for c in cells if raw_float(c)], cells
        assert not [c for c in cells if re.search(r"\de[-+]?\d", c)], cells  # e-notation
