"""Our torch runner vs the reference benchmark, point for point (issue 12, item 2).

    python validation/compare_runner_reference.py

Both tables measure the same grid on the same H100 model (SXM, driver 580.159.04, torch
2.11.0+cu130): validation/measurements/h100_torch_cudagraph_profiler.csv (perfmodel's runner,
build_profiler_measured.py) and h100_torch_cudagraph.csv (bench_torch_cudagraph.py,
build_measured.py). Prints MAPE, bias (ours / reference - 1) and the worst point per model
and quantity.
"""

from __future__ import annotations

from perfmodel.accuracy.measured import compare_measurements
from perfmodel.accuracy.observations import build_table
from perfmodel.paths import MEASUREMENTS_DIR


def main() -> None:
    ours = build_table(MEASUREMENTS_DIR / "h100_torch_cudagraph_profiler.csv")
    ref = build_table(MEASUREMENTS_DIR / "h100_torch_cudagraph.csv")
    for r in compare_measurements(ours, ref):
        kind = "decode " if r["quantity"] == "tpot_s" else "prefill"
        print(
            f"{r['model']:13s} {kind} {r['rows']:3d} points  MAPE {r['mape']:6.2%}  "
            f"bias {r['bias']:+6.2%}  max {r['max_ape']:6.2%}  worst {r['worst']}"
        )


if __name__ == "__main__":
    main()
