"""Convert the raw H100 reference measurements into a measurement CSV, and its operator
benchmarks into operator-table rows (reproducible; never edit the outputs by hand).

    python validation/build_measured.py

Inputs (copied verbatim from the project's shared reference folder, with their README and
the two benchmark scripts that produced them, so the repository is self-contained):
  validation/measurements/reference_h100/h100_ops.jsonl            204 operator points
  validation/measurements/reference_h100/h100_torch_cudagraph.csv  90 end-to-end points
What, where, how: one NVIDIA H100 80GB HBM3 (SXM, driver 580.159.04, 700 W), torch
2.11.0+cu130, bf16, random weights; operators timed as the mean of 20 back-to-back launches
inside one CUDA graph (bench_ops.py); decode steps captured in one CUDA graph and replayed
20 times, prefill forwards eager, mean of 3 (bench_torch_cudagraph.py). Clocks not locked.

Outputs:
  validation/measurements/h100_torch_cudagraph.csv    measurement CSV (DESIGN.md schema):
    decode rows: one decode step with `context_len` tokens already in the KV cache
      (the benchmark's cache holds ctx tokens including the one written by the step, so
      context_len = ctx - 1), tpot_s = the step time;
    prefill rows: one forward over batch_size prompts of prompt_len tokens (logits of the
      last token, no sampling), ttft_s = the forward time.
The operator rows (`op_rows`, optables.py format) are no longer the shipped table: that is
built from perfmodel's own `profile --ops` run (build_profiler_optable.py);
compare_optables.py compares the two per operator class.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from perfmodel.specs.optables import op_counts

ROOT = Path(__file__).resolve().parent.parent
RAW = ROOT / "validation" / "measurements" / "reference_h100"
MEASURED = ROOT / "validation" / "measurements" / "h100_torch_cudagraph.csv"

GPU, GPU_NAME, FRAMEWORK = "h100-sxm", "NVIDIA H100 80GB HBM3", "torch-cudagraph"
VERSION, DRIVER, WHEN = "torch 2.11.0+cu130", "580.159.04", "2026-11"
SOURCE = "validation/measurements/reference_h100/h100_ops.jsonl (bench_ops.py, CUDA graph x20)"
COLUMNS = (
    "op,shape,m,k,n,batch,ctx,heads,kv_heads,head_dim,bytes,flops,time_ms,dtype,gpu,"
    "gpu_name,framework,framework_version,driver,timestamp,source"
).split(",")
BF16 = 2


def op_rows(records: list[dict]) -> list[dict]:
    """One optable row per benchmark record; bytes and FLOPs as the benchmark counts them."""
    out = []
    for r in records:
        row = dict.fromkeys(COLUMNS, "")
        op = r["op"]
        if op == "done":
            continue
        row.update(op=op, time_ms=repr(r["ms"]), dtype="bf16")
        if op == "gemm":
            row.update(shape=r["shape"].split(".")[-1])
            row.update(op_counts(op, BF16, m=r["M"], k=r["K"], n=r["N"]))
        elif op in ("attn_decode", "attn_prefill"):
            dims = {c: r[c] for c in ("batch", "ctx", "heads", "kv_heads", "head_dim")}
            row.update(op_counts(op, BF16, **dims))
        elif op in ("rmsnorm", "silu_mul"):  # silu_mul: two kernels, silu(a) then * b
            row.update(op_counts(op, BF16, m=r["M"], n=r["d"]))
        elif op == "copy":
            row.update(bytes=r["bytes_rw"])
        row.update(
            gpu=GPU,
            gpu_name=GPU_NAME,
            framework=FRAMEWORK,
            framework_version=VERSION,
            driver=DRIVER,
            timestamp=WHEN,
            source=SOURCE,
        )
        out.append(row)
    return out


MODELS = {"Llama-3.1-8B": "Llama-3.1-8B", "Llama-3.2-1B": "Llama-3.2-1B"}
SETUP = (
    "1x H100 SXM (driver 580.159.04, 700 W, clocks not locked), plain PyTorch 2.11.0+cu130, "
    "bf16, random weights, TP1; decode: the whole step in one CUDA graph, SDPA over the full "
    "GQA cache, no sampling, RoPE left out; prefill: eager forward, SDPA causal, no KV "
    "written, logits of the last token (bench_torch_cudagraph.py)"
)


def measurement_rows(path: Path) -> list[dict]:
    with path.open(newline="") as fh:
        src = list(csv.DictReader(fh))
    out = []
    for r in src:
        decode = r["kind"] == "decode"
        ctx = int(r["context_len"])
        t_s = float(r["time_ms"]) / 1e3
        out.append(
            {
                "model": MODELS[r["model"]],
                "gpu": r["gpu"],
                "num_gpus": r["num_gpus"],
                "tp": 1,
                "weight_dtype": r["dtype"],
                "kv_dtype": r["dtype"],
                "batch_size": r["batch_size"],
                "prompt_len": ctx - 1 if decode else ctx,
                "output_len": 1,
                "context_len": ctx - 1 if decode else "",
                "ttft_s": "" if decode else repr(t_s),
                "tpot_s": repr(t_s) if decode else "",
                "status": "ok",
                "runner": "torch",
                "runner_settings": json.dumps({"cuda_graph": decode, "attention": "sdpa"}),
                "framework_version": VERSION,
                "gpu_name": GPU_NAME,
                "driver": DRIVER,
                "timestamp": WHEN,
                "profile": "torch-cudagraph-h100",
                "setup": SETUP,
                "source": "validation/measurements/reference_h100/h100_torch_cudagraph.csv",
            }
        )
    return out


def reference_op_rows() -> list[dict]:
    """The reference operator benchmarks (h100_ops.jsonl) as operator-table rows."""
    text = (RAW / "h100_ops.jsonl").read_text()
    return op_rows([json.loads(line) for line in text.splitlines()])


def write(path: Path, rows: list[dict], columns) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns))
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {path.relative_to(ROOT)} ({len(rows)} rows)")


def main() -> None:
    rows = measurement_rows(RAW / "h100_torch_cudagraph.csv")
    write(MEASURED, rows, rows[0].keys())


if __name__ == "__main__":
    main()
