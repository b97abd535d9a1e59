"""Our profiler's operator tables vs the reference microbenchmarks, per operator class.

    python validation/compare_optables.py

Points measured by both (same op, shape and natural variables) on the same H100 model:
perfmodel `profile --ops` (profiler_h100_2026-11-26/ops_*.csv, build_profiler_optable.py)
vs bench_ops.py (reference_h100/h100_ops.jsonl, build_measured.py). Per class: MAPE, bias
(ours / reference - 1) and max APE. GEMMs are split at M <= 64 (weight streaming) and
M >= 128 (compute). Also the HBM weight-streaming rate each table's large GEMVs reach
(core/optable/load.py stream_bandwidth) and the GEMVs that run faster than it (L2-resident weights).
"""

from __future__ import annotations

import numpy as np

from perfmodel.core.optable.load import stream_bandwidth
from validation.build_measured import reference_op_rows
from validation.build_profiler_optable import DEFAULT_MODELS, RAW, optable_rows

KEY = ("op", "m", "k", "n", "batch", "ctx", "heads", "kv_heads", "head_dim")


def _key(r: dict) -> tuple:
    return tuple(float(r[c]) if r[c] not in ("", None) else 0.0 for c in KEY[1:]) + (r["op"],)


def _cls(r: dict) -> str:
    if r["op"] == "gemm":
        return "gemm M<=64" if float(r["m"]) <= 64 else "gemm M>=128"
    return r["op"]


def compare(ours: list[dict], ref: list[dict]) -> dict[str, dict]:
    by_key = {}
    for r in ours:
        by_key.setdefault(_key(r), []).append(float(r["time_ms"]))
    errs: dict[str, list[float]] = {}
    for r in ref:
        if r["op"] != "copy" and _key(r) in by_key:
            errs.setdefault(_cls(r), []).append(
                np.mean(by_key[_key(r)]) / float(r["time_ms"]) - 1.0
            )
    return {
        c: {
            "points": len(e),
            "mape": float(np.mean(np.abs(e))),
            "bias": float(np.mean(e)),
            "max_ape": float(np.max(np.abs(e))),
        }
        for c, e in sorted(errs.items())
    }


def _stream(rows: list[dict]) -> tuple[float, list[str]]:
    g = [r for r in rows if r["op"] == "gemm"]
    m, k, n, t = (np.array([float(r[c]) for r in g]) for c in ("m", "k", "n", "time_ms"))
    bw = stream_bandwidth(m, k, n, t * 1e-3)
    fast = k * n * 2.0 / (t * 1e-3) > bw
    over = sorted(
        {
            f"{r['shape']} {int(float(r['k']))}x{int(float(r['n']))}"
            for r, f in zip(g, fast, strict=True)
            if f
        }
    )
    return bw, over


def main() -> None:
    ours = [row for m in DEFAULT_MODELS for row in optable_rows(RAW / f"ops_{m}.csv")]
    ref = reference_op_rows()
    for c, s in compare(ours, ref).items():
        print(
            f"{c:13s} {s['points']:3d} points  MAPE {s['mape']:6.2%}  bias {s['bias']:+6.2%}  "
            f"max {s['max_ape']:6.2%}"
        )
    for name, rows in (("ours", ours), ("reference", ref)):
        bw, over = _stream(rows)
        print(f"{name}: HBM weight streaming {bw / 1e12:.2f} TB/s; faster GEMMs: {', '.join(over)}")


if __name__ == "__main__":
    main()
