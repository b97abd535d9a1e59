"""Convert perfmodel's own H100 profiler run into measurement CSVs for `perfmodel validate`
(reproducible; never edit the inputs or the outputs by hand).

    python validation/build_profiler_measured.py

Inputs: validation/measurements/profiler_h100_2026-11-26/torch_<model>_{decode,prefill}.csv,
written by `perfmodel profile --runner torch --no-rope` (CUDA-graph decode, eager prefill)
on one H100 SXM (README.md and fingerprint.json there: what, where, how).

Outputs (DESIGN.md measurement schema, as validation/build_measured.py writes the reference):
  validation/measurements/h100_torch_cudagraph_profiler.csv   Llama-3.1-8B and Llama-3.2-1B:
      the reference grid re-measured by our runner; never fitted on (the shipped profile is
      fitted on h100_torch_cudagraph.csv only): an independent re-measurement.
  validation/measurements/h100_torch_cudagraph_qwen2.5-7b.csv Qwen2.5-7B: held out from
      every fit (a model the profile never saw: the generalization check).
Row mapping, consistent with the reference conversion (context_len = tokens already in the
KV cache when the measured step runs):
  decode rows: the runner captured one step at position prompt_len + (output_len - 1) // 2 =
      prompt_len (output_len 2) that attends `decode_context` = prompt_len + 1 tokens
      (runner_settings); context_len = decode_context - 1, tpot_s = that step's time.
  prefill rows: one eager forward of batch_size x prompt_len tokens + the first-token pick;
      ttft_s as measured.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RAW = ROOT / "validation" / "measurements" / "profiler_h100_2026-11-26"
RAW_H200 = ROOT / "validation" / "measurements" / "profiler_h200_2026-11-26"
OUT = ROOT / "validation" / "measurements"
PROFILE = "torch-cudagraph-h100"
SETUP = (
    "1x H100 SXM (driver 580.159.04, 700 W, clocks not locked), plain PyTorch 2.11.0+cu130, "
    "bf16, random weights, TP1, perfmodel's own torch runner (repository commit 042d269, "
    "--no-rope): decode: one step in a CUDA graph (mean of 20 replays, 2 repeats), SDPA over "
    "the full GQA cache, greedy pick of the next token; prefill: eager forward, SDPA causal, "
    "K/V written, logits of the last token + greedy pick (mean of 3 after 1 warm-up)"
)
SETUP_H200 = SETUP.replace(
    "1x H100 SXM (driver 580.159.04, 700 W, clocks not locked)",
    "1x H200 (driver 580.159.04, 700 W, clocks not locked)",
).replace("repository commit 042d269", "repository commit 64ae245")
OUTPUTS = {
    "h100_torch_cudagraph_profiler.csv": (
        ("llama-3.1-8b", "llama-3.2-1b"),
        "re-measured (not fitted)",
    ),
    "h100_torch_cudagraph_qwen2.5-7b.csv": (("qwen2.5-7b",), "held-out model (never fitted)"),
    # H200: its own operator table (Llama-3.1-8B shapes) ships as h200__torch-cudagraph and
    # prices these points with torch-cudagraph-h200 (overheads of the H100 fit, not refitted):
    # in-sample for the kernels, no longer held out; Qwen2.5-7B prefill stopped at the run's
    # budget
    "h200_torch_cudagraph_profiler.csv": (
        ("llama-3.1-8b", "qwen2.5-7b"),
        "in-sample (H200 kernel table shipped; overheads not fitted on it)",
    ),
}
RAW_DIRS = {"h200_torch_cudagraph_profiler.csv": (RAW_H200, SETUP_H200)}
PROFILES = {"h200": "torch-cudagraph-h200"}  # a GPU with its own table: its own profile
COLUMNS = (
    "model,gpu,num_gpus,tp,weight_dtype,kv_dtype,batch_size,prompt_len,output_len,context_len,"
    "ttft_s,tpot_s,ttft_cv,tpot_cv,status,runner,runner_settings,framework_version,gpu_name,"
    "driver,timestamp,profile,fit,sample,setup,source"
).split(",")


def convert(path: Path, sample: str, setup: str = SETUP) -> list[dict]:
    """Rows of one raw profiler CSV in the measurement schema (see the module docstring)."""
    with path.open(newline="") as fh:
        raw = list(csv.DictReader(fh))
    out = []
    for r in raw:
        settings = json.loads(r["runner_settings"])
        row = {c: r.get(c, "") for c in COLUMNS}
        decode = r["ttft_s"] == "" and r["tpot_s"] != ""
        if decode:
            context = int(settings["decode_context"]) - 1
            if context != int(r["prompt_len"]) or int(r["output_len"]) != 2:
                raise ValueError(f"{path}: decode row is not one step at prompt_len: {r}")
            row["context_len"] = context
        row.update(
            profile=PROFILES.get(row["gpu"], PROFILE),
            fit="false",
            sample=sample,
            setup=setup,
            source=str(path.relative_to(ROOT)),
        )
        out.append(row)
    return out


def output_rows(name: str) -> list[dict]:
    """The rows of one output CSV (OUTPUTS), from its raw profiler files."""
    models, sample = OUTPUTS[name]
    raw, setup = RAW_DIRS.get(name, (RAW, SETUP))
    rows = []
    for model in models:
        for kind in ("decode", "prefill"):
            rows += convert(raw / f"torch_{model}_{kind}.csv", sample, setup)
    return rows


def main() -> None:
    for name in OUTPUTS:
        rows = output_rows(name)
        path = OUT / name
        with path.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=COLUMNS)
            w.writeheader()
            w.writerows(rows)
        print(f"wrote {path.relative_to(ROOT)} ({len(rows)} rows)")


if __name__ == "__main__":
    main()
