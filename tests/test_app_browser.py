"""End to end: `perfmodel app --headless` serves every page, headless Chromium draws it, and
the test reads what the user sees back from the live page (tests/chromium.py):

- every page renders (title, charts, no traceback, no error), its text and tables hold no
  'nan', 'None' or e-notation, and a full-page screenshot is taken (PERFMODEL_SAVE_SCREENSHOTS=1
  writes them to docs/screenshots/, the README links them);
- marker lines sit at their data value on log and on linear axes, read from the drawn figure
  (pixel position of the line -> the axis' own pixel-to-data map), with their label beside
  them, and the axis ranges span what matters, also after the viewport is resized;
- at 1280x800 no headline (metric value or label, title) overflows its box;
- switching the model keeps a valid page (drafts re-derived) and its URL, and switching back
  restores the page and its URL.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.chromium import CHROMIUM, Browser

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "docs" / "screenshots"
PAGES = (  # (url path, title, charts drawn at the defaults, screenshot name)
    ("", "perfmodel dashboard", 0, "home"),
    ("Critical_sequence_length", "Critical sequence length", 2, "critical_length"),
    ("SpecPrefill_planner", "SpecPrefill planner", 3, "specprefill"),
    ("Speculative_decoding_planner", "Speculative decoding planner", 2, "specdecode"),
    ("Recommend_and_capacity", "Recommend & capacity", 3, "recommend_capacity"),
    ("Model_explorer_and_validation", "Model explorer & validation", 3, "model_explorer"),
)
E_NOTATION = re.compile(r"\d\.?\d*e[-+]?\d+\b", re.IGNORECASE)
RAW_MISSING = re.compile(r"\b(nan|NaN|None|<NA>|NaNx)\b")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)"
)

# Everything a test needs to know about a drawn plotly figure, read in the page: axis types
# and ranges (data units), and for every named shape (the marker lines and bands, see
# app.common.marker_line) its drawn position converted back to data units with the axis' own
# pixel map, and where its label was drawn.
READ_FIGURE = """(title) => {
  const gd = [...document.querySelectorAll('.js-plotly-plot')]
    .find(g => g._fullLayout &&
      (g._fullLayout.title.text || '').replace(/<[^>]+>/g, '').startsWith(title));
  if (!gd) return null;
  const L = gd._fullLayout, svg = gd.querySelector('.main-svg').getBoundingClientRect();
  const toData = (ax, px) => { const v = ax.p2l(px - ax._offset); return ax.type === 'log' ? 10 ** v : v; };
  const axis = ax => ({type: ax.type, range: ax.range.map(v => ax.type === 'log' ? 10 ** v : v),
                       offset: ax._offset, length: ax._length});
  const shapes = L.shapes.map((s, i) => {
    const el = gd.querySelector(`.shapelayer path[data-index="${i}"]`);
    if (!el) return {name: s.name, drawn: false};
    const b = el.getBBox();
    const out = {name: s.name, drawn: true, xref: s.xref, yref: s.yref};
    if (s.xref === 'x') { out.x0 = toData(L.xaxis, b.x); out.x1 = toData(L.xaxis, b.x + b.width); out.px = b.x; }
    if (s.yref === 'y') { out.y0 = toData(L.yaxis, b.y + b.height); out.y1 = toData(L.yaxis, b.y); out.py = b.y; }
    return out;
  });
  const notes = [...gd.querySelectorAll('.annotation')].map(el => {
    const r = el.getBoundingClientRect();
    return {text: el.textContent, left: r.left - svg.left, right: r.right - svg.left,
            top: r.top - svg.top, bottom: r.bottom - svg.top};
  });
  return {x: axis(L.xaxis), y: axis(L.yaxis), shapes, notes, width: svg.width};
}"""

# Elements that overflow their own box (text cut off or spilling): metric values and labels,
# page titles, chart titles wider than their figure.
OVERFLOWING = """(() => {
  const out = [];
  const sel = '[data-testid="stMetricValue"], [data-testid="stMetricLabel"], h1';
  for (const el of document.querySelectorAll(sel)) {
    for (const e of [el, ...el.querySelectorAll('*')]) {
      if (e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'visible')
        out.push(el.innerText);
    }
    const box = el.getBoundingClientRect(), col = el.closest('[data-testid="stColumn"]');
    if (col && box.right > col.getBoundingClientRect().right + 1) out.push(el.innerText);
  }
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const t = gd.querySelector('.gtitle'), svg = gd.querySelector('.main-svg');
    if (t && t.getBoundingClientRect().right > svg.getBoundingClientRect().right + 1)
      out.push(t.textContent);
  }
  return [...new Set(out)];
})()"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    code = "import sys; from perfmodel.cli import main; sys.exit(main(sys.argv[1:]))"
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, "app", "--headless", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300  # safety net on a loaded machine
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"perfmodel app exited early:\n{log.read_text()}")
            time.sleep(0.3)
    else:
        os.killpg(proc.pid, 9)
        pytest.fail(f"streamlit did not come up on {base}:\n{log.read_text()}")
    yield base
    os.killpg(proc.pid, 15)  # the CLI and the streamlit child it started (own session)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
    assert "Traceback" not in log.read_text(), log.read_text()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = Browser(tmp_path_factory.mktemp("chromium"))
    yield b
    b.close()


def figure(browser: Browser, title: str) -> dict:
    fig = browser.eval(f"({READ_FIGURE})({json.dumps(title)})")
    assert fig, f"no drawn figure titled {title!r}"
    return fig


def marker(fig: dict, prefix: str) -> dict:
    (shape,) = [s for s in fig["shapes"] if (s.get("name") or "").startswith(prefix)]
    assert shape["drawn"], shape
    (note,) = [n for n in fig["notes"] if n["text"] == shape["name"]]
    return {**shape, "note": note}


def assert_vline(fig: dict, prefix: str, value: float) -> None:
    """The vertical marker is drawn at `value` (data units) with its label beside it."""
    m = marker(fig, prefix)
    assert m["x0"] == pytest.approx(value, rel=0.02), (prefix, m, fig["x"])
    assert abs(m["note"]["left"] - m["px"]) < 12, (prefix, m)  # label starts at the line
    lo, hi = fig["x"]["range"]
    assert lo < value < hi


def assert_hline(fig: dict, prefix: str, value: float) -> None:
    m = marker(fig, prefix)
    assert m["y0"] == pytest.approx(value, rel=0.02), (prefix, m, fig["y"])
    assert abs(m["note"]["bottom"] - m["py"]) < 12, (prefix, m)  # label sits on the line
    lo, hi = fig["y"]["range"]
    assert lo < value < hi


def page_text_problems(browser: Browser) -> list[str]:
    text = browser.text()
    cells = browser.eval(
        "[...document.querySelectorAll('[data-testid=stTable] td, [data-testid=stTable] th')]"
        ".map(c => c.innerText)"
    )
    found = [t for t in cells if RAW_MISSING.search(t) or E_NOTATION.search(t)]
    for line in text.splitlines():
        if RAW_MISSING.search(line) or E_NOTATION.search(line):
            found.append(line)
    return found


def test_every_page_renders_reads_clean_and_fits_1280x800(server, browser, tmp_path):
    save = os.environ.get("PERFMODEL_SAVE_SCREENSHOTS") == "1"
    browser.viewport(1280, 800)
    for path, title, charts, name in PAGES:
        url = f"{server}/{path}"
        browser.open(url, title, charts)
        html = browser.html()
        assert "Traceback" not in html, f"{url}: a traceback in the page"
        for prefix in ("Input error:", "Could not compute this view"):  # app.common.guard
            assert prefix not in html, f"{url}: an error on the page"
        assert not page_text_problems(browser), (url, page_text_problems(browser))
        assert browser.eval(OVERFLOWING) == [], f"{url}: overflowing at 1280x800"
        assert browser.eval(
            "!document.querySelector('[data-testid=stAppDeployButton], .stAppDeployButton')"
        ), "no Deploy button: the toolbar is in viewer mode"
        png = tmp_path / f"{name}.png"
        browser.screenshot(png, full_height=True)
        assert png.stat().st_size > 40_000, f"{url}: blank screenshot"
        if save:
            SHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(png, SHOTS / f"{name}.png")


def test_markers_sit_at_their_data_values_also_after_a_resize(server, browser):
    browser.viewport(1400, 1000)
    load = 10.0
    browser.open(f"{server}/Speculative_decoding_planner?sd_batch=32", "Speculative", 2)
    checks = []

    def specdecode():
        fig = figure(browser, "Memory per GPU vs batch")
        assert fig["x"]["type"] == "log" and fig["y"]["type"] == "linear"
        assert_vline(fig, "this batch", 32)  # log axis
        usable = float(marker(fig, "usable")["name"].split()[1])
        assert_hline(fig, "usable", usable)  # linear axis
        assert fig["y"]["range"] == pytest.approx([0, 1.5 * usable], rel=0.01)
        lo, hi = fig["x"]["range"]
        assert 0.5 <= lo <= 1 and 2048 <= hi <= 4096  # the batch sweep, not autoscaled
        checks.append("specdecode")

    def recommend():
        fig = figure(browser, "Fleet cost per hour vs load")
        assert fig["x"]["type"] == "log" and fig["y"]["type"] == "log"
        assert_vline(fig, "this load", load)
        lo, hi = fig["x"]["range"]
        assert load / 20 <= lo and hi <= load * 20  # the curves' span (load/10 .. load*10)
        ylo, yhi = fig["y"]["range"]
        assert 0 < ylo < yhi < 1e7
        checks.append("recommend")

    specdecode()
    browser.viewport(1280, 800)  # a resize must not move a marker or rescale an axis
    time.sleep(1.0)  # plotly relayouts on the window's resize event
    browser.settle("Speculative decoding planner", 2)
    specdecode()
    browser.open(f"{server}/Recommend_and_capacity?rc_qps={load:g}", "Recommend & capacity", 3)
    recommend()
    browser.viewport(1400, 1000)
    time.sleep(1.0)
    browser.settle("Recommend & capacity", 3)
    recommend()

    browser.open(f"{server}/SpecPrefill_planner", "SpecPrefill planner", 3)
    fig = figure(browser, "TTFT vs keep rate")
    assert fig["x"]["type"] == "linear"
    (base,) = [s for s in fig["shapes"] if (s.get("name") or "").startswith("baseline")]
    ttft = browser.eval(
        "[...document.querySelectorAll('[data-testid=stMetric]')]"
        ".find(m => m.innerText.includes('Baseline TTFT')).querySelector("
        "'[data-testid=stMetricValue]').innerText"
    )
    seconds = float(ttft.split()[0].replace(",", "")) * (1e-3 if "ms" in ttft else 1.0)
    assert_hline(fig, "baseline", seconds)  # linear y: the headline's TTFT
    assert base["drawn"]
    rec = [s for s in fig["shapes"] if s.get("name") == "recommended"]
    if rec:
        keep = browser.eval(
            "document.querySelector('[data-testid=stMetricValue]').innerText"
        ).rstrip("%")
        assert_vline(fig, "recommended", float(keep) / 100)
    assert checks == ["specdecode", "specdecode", "recommend", "recommend"]


def query(url: str) -> dict:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def select(browser: Browser, label: str, option: str) -> None:
    """Pick `option` in the selectbox labelled `label`, as a user does: click its box, type
    the option's name over the current one, press Enter."""
    box = browser.eval(
        f"""(() => {{
          const w = [...document.querySelectorAll('[data-testid=stSelectbox]')]
            .find(e => e.innerText.startsWith({json.dumps(label)}));
          const r = w.querySelector('input').getBoundingClientRect();
          return [r.left + r.width / 2, r.top + r.height / 2];
        }})()"""
    )
    for kind in ("mousePressed", "mouseReleased"):
        browser.call(
            "Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1
        )
    time.sleep(0.3)
    browser.eval("document.activeElement.select()")
    browser.call("Input.insertText", text=option)
    time.sleep(0.5)
    for kind in ("keyDown", "keyUp"):
        browser.call(
            "Input.dispatchKeyEvent", type=kind, key="Enter", code="Enter", windowsVirtualKeyCode=13
        )


def chips(browser: Browser, label: str) -> list[str]:
    """The values chosen in the multiselect labelled `label`."""
    return browser.eval(
        f"""(() => {{
          const w = [...document.querySelectorAll('[data-testid=stMultiSelect]')]
            .find(e => e.innerText.startsWith({json.dumps(label)}));
          return [...w.querySelectorAll('[data-tag]')].map(t => t.getAttribute('aria-label'));
        }})()"""
    )


def headline(browser: Browser) -> str:
    return browser.eval("document.querySelector('[data-testid=stMetricValue]').innerText")


@pytest.mark.parametrize(
    ("path", "title", "charts", "other", "label"),
    [
        ("Critical_sequence_length", "Critical sequence length", 2, "Qwen2.5-72B", "Draft(s)"),
        ("SpecPrefill_planner", "SpecPrefill planner", 3, "Llama-3.1-405B", None),
    ],
)
def test_model_switch_and_back_restores_the_page_and_its_url(
    server, browser, path, title, charts, other, label
):
    browser.viewport(1400, 1000)
    browser.open(f"{server}/{path}", title, charts)
    before_url, before_head = query(browser.url()), headline(browser)
    before_chips = chips(browser, label) if label else None
    assert before_url["model"] == "Llama-3.1-8B"
    assert before_chips != []

    select(browser, "Model (target)", other)
    browser.wait_for(f"window.location.href.includes('model={other}')", "the URL to follow")
    browser.settle(title, charts)
    after = query(browser.url())
    assert after["model"] == other
    assert "Pick at least one draft" not in browser.text()
    assert not page_text_problems(browser)
    if label:  # drafts re-derived for the new target, and in the URL
        now = chips(browser, label)
        assert now and all(d.startswith("Qwen") or d == "self" for d in now), now
        assert after["cl_drafts"] == ",".join(now)
    if other == "Llama-3.1-405B":  # the feasible default: not TP1 for 405B
        assert int(after["num_gpus"]) == 8 and after["weight_dtype"] == "fp8"
        assert "does not fit" not in headline(browser)

    select(browser, "Model (target)", "Llama-3.1-8B")
    browser.wait_for("window.location.href.includes('model=Llama-3.1-8B')", "the URL to return")
    browser.settle(title, charts)
    assert query(browser.url()) == before_url
    assert headline(browser) == before_head
    if label:
        assert chips(browser, label) == before_chips


def test_invalid_url_values_are_reported(server, browser):
    browser.open(
        f"{server}/Speculative_decoding_planner?gpu=tpu-v9&sd_batch=-3",
        "Speculative decoding planner",
        2,
    )
    text = browser.text()
    assert "Ignored in the URL" in text and "gpu=tpu-v9" in text and "sd_batch=-3" in text
    assert query(browser.url())["gpu"] == "h100-sxm"  # the URL says what the page shows
    assert math.isfinite(float(query(browser.url())["sd_batch"]))


def test_an_infeasible_choice_names_what_does_not_fit_in_the_headline(server, browser):
    """70B bf16 on one RTX 4090: the headline says 'does not fit' (no number), the red line
    under it says what and by how much (the feasibility layer's GB), with no CLI option."""
    browser.viewport(1280, 800)
    browser.open(
        f"{server}/Speculative_decoding_planner?model=Llama-3.1-70B&gpu=rtx4090&num_gpus=1"
        "&weight_dtype=bf16",
        "Speculative decoding planner",
    )
    assert headline(browser) == "does not fit"
    errors = browser.text().splitlines()
    (err,) = [e for e in errors if "does not fit:" in e]
    short = re.search(
        r"([\d,.]+) GB per GPU needed, 23\.2 GB usable on rtx4090 \(([\d,.]+) GB", err
    )
    assert short and float(short.group(1).replace(",", "")) > 140, err
    assert "--" not in err
    assert browser.eval(OVERFLOWING) == []
    assert not browser.eval("document.querySelectorAll('.js-plotly-plot').length")


def test_a_draft_the_target_tp_does_not_divide_renders_a_result(server, browser):
    """Qwen2.5-72B at TP8 with a Qwen2.5-7B draft (28 heads): the draft runs at TP4, the page
    gives a critical length and says where the draft runs."""
    browser.viewport(1400, 1000)
    browser.open(
        f"{server}/Critical_sequence_length?model=Qwen2.5-72B&num_gpus=8&cl_drafts=Qwen2.5-7B",
        "Critical sequence length",
        2,
    )
    assert chips(browser, "Draft(s)") == ["Qwen2.5-7B"]
    assert headline(browser) not in ("does not fit", "")
    text = browser.text()
    assert "runs on 4 of the target's 8 GPUs per TP group (TP4" in text
    assert "does not divide the 28 attention heads" not in text
    assert not page_text_problems(browser)
