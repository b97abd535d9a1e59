"""How long one dashboard interaction computes: the compute part of each page (app/compute.py,
the functions the pages wrap in st.cache_data), uncached, after one warm-up call.

Run: PYTHONPATH=. python benchmarks/bench_app.py   (target: <= 300 ms per interaction)
Each row is one widget change on a page: the median of REPEAT fresh calls (no Streamlit
cache: a cache hit, e.g. going back to a previous value, costs well under 1 ms).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app import compute  # noqa: E402
from app.common import SIDEBAR_DEFAULTS  # noqa: E402

REPEAT = 5
BUDGET_MS = 300.0
CFG = dict(SIDEBAR_DEFAULTS)  # the sidebar at its defaults: Llama-3.1-8B on one H100, bf16
CFG70 = {**CFG, "model": "Llama-3.1-70B", "num_gpus": 8}
CL_ARGS = (
    ("Llama-3.2-1B",),
    "streamingllm:512",
    None,
    None,
    (1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
    256,
    (16, 64, 256),
)

CASES = [
    (
        "critical length: defaults (3 GPUs x 10 batches, speedup curves)",
        lambda: compute.critical_length_view(CFG, *CL_ARGS, ("h100-sxm", "a100-80gb", "rtx4090")),
    ),
    (
        "critical length: acceptance rate 0.7",
        lambda: compute.critical_length_view(
            CFG,
            ("Llama-3.2-1B",),
            "streamingllm:512",
            None,
            0.7,
            *CL_ARGS[4:],
            ("h100-sxm", "a100-80gb", "rtx4090"),
        ),
    ),
    (
        "critical length: optimize the KV budget (7 budgets)",
        lambda: compute.critical_length_view(
            CFG, ("Llama-3.2-1B",), "streamingllm", None, None, *CL_ARGS[4:], ("h100-sxm",)
        ),
    ),
    (
        "SpecPrefill: 70B on 8xH100, batch 16, 32k",
        lambda: compute.specprefill(CFG70, "Llama-3.1-8B", 16, 32768, 1.0),
    ),
    (
        "spec decoding: heatmap + memory sweep",
        lambda: compute.specdecode_view(CFG, "Llama-3.2-1B", "streamingllm", 32, 8192, 256, None),
    ),
    (
        "recommend: 8B, batch 16, 32k + 512",
        lambda: compute.recommend_view(CFG, 16, 32768, 512, None, None, 1.0, None),
    ),
    (
        "capacity: 3 GPU types, no speculation",
        lambda: compute.capacity_view(
            CFG, 1.0, 32768, 512, 10.0, 0.1, ("h100-sxm", "a100-80gb", "h200")
        ),
    ),
    (
        "capacity: 3 GPU types, with speculation (opt-in checkbox)",
        lambda: compute.capacity_view(
            CFG, 1.0, 32768, 512, 10.0, 0.1, ("h100-sxm", "a100-80gb", "h200"), True
        ),
    ),
    ("explorer: breakdown + roofline", lambda: compute.explorer(CFG, 16, 4096, 256)),
    ("validation: all published tables", lambda: compute.published_validation("auto")),
]


def main() -> int:
    print(f"{'interaction':<62} {'median ms':>10} {'min ms':>8}")
    slow = []
    for name, fn in CASES:
        fn()  # warm-up: imports, lru caches of specs and profiles
        times = []
        for _ in range(REPEAT):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
        med = statistics.median(times)
        flag = "" if med <= BUDGET_MS else "  > budget"
        if med > BUDGET_MS:
            slow.append(name)
        print(f"{name:<62} {med:>10.1f} {min(times):>8.1f}{flag}")
    print(f"budget {BUDGET_MS:.0f} ms per interaction; over budget: {', '.join(slow) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
