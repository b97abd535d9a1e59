"""Operator-table rows (perfmodel/specs/optables.py format) from `perfmodel profile --ops`
CSVs, with the byte counts of validation/build_measured.py so that tables built from the
reference benchmark and from our profiler price the same kernels alike (reproducible; never
edit the inputs or outputs by hand).

    python validation/build_profiler_optable.py              # the shipped H100 table
    python validation/build_profiler_optable.py --h200       # the shipped H200 table
    python validation/build_profiler_optable.py OUT.csv [MODEL ...]

MODEL: file stems under validation/measurements/profiler_h100_2026-11-26/ (ops_<MODEL>.csv;
default: llama-3.1-8b llama-3.2-1b llama-3.1-70b_tp8). The shipped table
perfmodel/optables/h100-sxm__torch-cudagraph.csv is built from these three: our profiler's
tables cover 15 token counts (vs 8) and 15 GEMM shapes, and transfer better to shapes never
measured (Qwen2.5-7B's GEMMs held out: MAPE 3.1% vs 4.5% at M <= 16 with the reference
jsonl, validation/compare_optables.py). Qwen2.5-7B's table is left out on purpose: its
end-to-end points are the held-out generalization check, shapes included. Byte counts per op (bf16, e = 2):
GEMM (K*N + M*K + M*N) e; decode attention K+V read 2 B C kv hd e; causal prefill
attention 4 B S h hd e; RMSNorm read + write 2 M d e; SiLU*mul (two kernels) 5 M f e; copy
read + write. Rows whose status is not ok are left out.

perfmodel/optables/h200__torch-cudagraph.csv is our own H200 run
(validation/measurements/profiler_h200_2026-11-26/ops_llama-3.1-8b.csv, Llama-3.1-8B shapes):
once shipped, the H200 end-to-end points it prices are in-sample, not held out.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from perfmodel.specs.optables import TABLE_COLUMNS, from_profiler_rows

ROOT = Path(__file__).resolve().parent.parent
RAW = ROOT / "validation" / "measurements" / "profiler_h100_2026-11-26"
SHIPPED = ROOT / "perfmodel" / "optables" / "h100-sxm__torch-cudagraph.csv"
DEFAULT_MODELS = ("llama-3.1-8b", "llama-3.2-1b", "llama-3.1-70b_tp8")
RAW_H200 = ROOT / "validation" / "measurements" / "profiler_h200_2026-11-26"
SHIPPED_H200 = ROOT / "perfmodel" / "optables" / "h200__torch-cudagraph.csv"
H200_MODELS = ("llama-3.1-8b",)


def optable_rows(path: Path) -> list[dict]:
    """One optable row per ok microbenchmark of a `profile --ops` CSV (the conversion lives
    in perfmodel.specs.optables, which also reads such a CSV directly)."""
    with path.open(newline="") as fh:
        raw = list(csv.DictReader(fh))
    return from_profiler_rows(raw, str(path.relative_to(ROOT)))


def write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=TABLE_COLUMNS)
        w.writeheader()
        w.writerows(rows)


def main(argv: list[str]) -> None:
    if argv == ["--h200"]:
        out = SHIPPED_H200
        rows = [row for m in H200_MODELS for row in optable_rows(RAW_H200 / f"ops_{m}.csv")]
        write(out, rows)
        print(f"wrote {out} ({len(rows)} rows)")
        return
    out, models = (Path(argv[0]), argv[1:]) if argv else (SHIPPED, ())
    rows = [row for m in models or DEFAULT_MODELS for row in optable_rows(RAW / f"ops_{m}.csv")]
    write(out, rows)
    print(f"wrote {out} ({len(rows)} rows)")


if __name__ == "__main__":
    main(sys.argv[1:])
