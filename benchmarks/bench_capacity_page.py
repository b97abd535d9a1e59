"""The two slow dashboard paths, timed as the page meets them: the Recommend & capacity page
with speculation (app.compute.capacity_view: planners.capacity.plan_capacity) and the
published validation (app.compute.published_validation).

Run: PYTHONPATH=. python benchmarks/bench_capacity_page.py
Point PYTHONPATH at another checkout to time that code (e.g. main before a change): the script
only calls app.compute, and reads a fresh pricing memo where the code has one.

Each row: the median of REPEAT runs in seconds, and the same divided by a fixed numpy
reference workload timed in the same run (a ratio, so runs under different machine load
compare). Rows:
- capacity + speculation, first ask: a new question (empty pricing memo, no Streamlit cache);
- capacity + speculation, ticked after the plain view: the page's order (the plain fleets are
  drawn first, then the box is ticked: the plain rows are priced already);
- capacity + speculation, new QPS: the same page after moving the QPS slider (the page's
  pricing memo is warm; st.cache_data misses: the QPS is part of its key);
- capacity, no speculation, first ask;
- validation, first ask in a process (reads and builds the published tables), and after a
  profile change (same process).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from app import compute  # noqa: E402
from app.common import SIDEBAR_DEFAULTS  # noqa: E402

REPEAT = 3
CFG = dict(SIDEBAR_DEFAULTS)  # the sidebar at its defaults: Llama-3.1-8B on one H100, bf16
GPUS = ("h100-sxm", "a100-80gb", "h200")


def reference() -> float:
    """A fixed single-threaded workload of small numpy operations, like the planners' (seconds):
    the unit of the ratio column, so that runs under different machine load compare."""
    x, xp = np.linspace(1.0, 2.0, 17), np.linspace(0.0, 3.0, 50)
    fp = np.sqrt(xp)
    t0 = time.perf_counter()
    for _ in range(20_000):
        np.interp(x, xp, fp) * 1.5 + np.maximum(x, 1.2)
    return time.perf_counter() - t0


def fresh_memo() -> None:
    if hasattr(compute, "PRICING"):
        compute.PRICING = type(compute.PRICING)()


def capacity(qps: float, spec: bool):
    return compute.capacity_view(CFG, qps, 32768, 512, 10.0, 0.1, GPUS, spec)


def timed(fn, before=None) -> list[float]:
    out = []
    for i in range(REPEAT):
        if before:
            before(i)
        t0 = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t0)
    return out


def validation_first_ask() -> float:
    """Seconds of the first published validation in a new process (imports excluded)."""
    code = (
        f"import sys,time; sys.path.insert(0, {str(ROOT)!r}); from app import compute; "
        "t=time.perf_counter(); compute.published_validation('auto'); "
        "print(time.perf_counter()-t)"
    )
    env = {**os.environ}
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return float(res.stdout.strip().splitlines()[-1])


def main() -> int:
    capacity(1.0, True)  # warm-up: imports, specs, operator tables
    compute.published_validation("auto")
    rows = [
        (
            "capacity + speculation, first ask",
            timed(lambda i: capacity(1.0 + i, True), lambda i: fresh_memo()),
        ),
        (
            "capacity + speculation, ticked after the plain view",
            timed(
                lambda i: capacity(1.0 + i, True),
                lambda i: (fresh_memo(), capacity(1.0 + i, False)),
            ),
        ),
        (
            "capacity + speculation, new QPS (memo warm)",
            timed(lambda i: capacity(1.5 + i, True), lambda i: capacity(1.0 + i, True)),
        ),
        (
            "capacity, no speculation, first ask",
            timed(lambda i: capacity(1.0 + i, False), lambda i: fresh_memo()),
        ),
        ("validation, first ask in a process", [validation_first_ask() for _ in range(REPEAT)]),
        (
            "validation, profile change",
            timed(lambda i: compute.published_validation(("ideal", "auto", "vllm-0.6.3-h100")[i])),
        ),
    ]
    ref = statistics.median(reference() for _ in range(5))
    print(f"reference numpy workload: {ref * 1e3:.1f} ms; load average {os.getloadavg()[0]:.1f}")
    print(f"{'path':<46} {'median s':>9} {'min s':>7} {'ratio':>7}")
    for name, times in rows:
        med = statistics.median(times)
        print(f"{name:<46} {med:>9.2f} {min(times):>7.2f} {med / ref:>7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
