"""Compare perfmodel end-to-end with NVIDIA aiconfigurator on the same configurations.

    python benchmarks/compare_aiconfigurator.py --aic-python /path/to/venv/bin/python

A benchmark, not a test: aiconfigurator-core is not a dependency. It runs in its own Python
(a virtual environment with `pip install aiconfigurator-core`), called as a subprocess that
prints its estimates as JSON; perfmodel runs here with the default vLLM profile of each GPU
(the same measured kernel tables aiconfigurator uses, imported by `perfmodel tables import`).
Both predict, for dense Llama-3.1 models in BF16: TTFT = prefill of `batch` prompts of `isl`
tokens (aiconfigurator: predict_prefill_latency) and TPOT = one decode step at batch `batch`
and context isl + osl/2 (aiconfigurator: run_static's generation time / osl). Printed: both
values and perfmodel/aiconfigurator - 1 per configuration, then the MAPE and bias per quantity.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np

from perfmodel.core.api import predict

# (perfmodel model, aiconfigurator model, gpu, aiconfigurator system, vLLM version, TP)
CONFIGS = [
    ("8b", "meta-llama/Meta-Llama-3.1-8B", "h100", "h100_sxm", "0.24.0", 1),
    ("70b", "meta-llama/Meta-Llama-3.1-70B", "h100", "h100_sxm", "0.24.0", 4),
    ("70b", "meta-llama/Meta-Llama-3.1-70B", "h100", "h100_sxm", "0.24.0", 8),
    ("8b", "meta-llama/Meta-Llama-3.1-8B", "h200", "h200_sxm", "0.24.0", 1),
    ("70b", "meta-llama/Meta-Llama-3.1-70B", "h200", "h200_sxm", "0.24.0", 8),
    ("8b", "meta-llama/Meta-Llama-3.1-8B", "a100", "a100_sxm", "0.14.0", 1),
    ("70b", "meta-llama/Meta-Llama-3.1-70B", "a100", "a100_sxm", "0.14.0", 8),
    ("8b", "meta-llama/Meta-Llama-3.1-8B", "l40s", "l40s", "0.24.0", 1),
    ("8b", "meta-llama/Meta-Llama-3.1-8B", "b200", "b200_sxm", "0.24.0", 1),
    ("70b", "meta-llama/Meta-Llama-3.1-70B", "b200", "b200_sxm", "0.24.0", 8),
]
BATCHES = (1, 8, 64)
ISL, OSL = 2048, 256

AIC_SCRIPT = r"""
import json, sys, logging
logging.disable(logging.WARNING)
from aiconfigurator_core.sdk.engine import EngineHandle
out = []
for model, system, version, tp, batches, isl, osl in json.loads(sys.argv[1]):
    h = EngineHandle.compile(model, system, "vllm", backend_version=version, tp_size=tp)
    for b in batches:
        ctx, gen, _ = h.run_static(batch_size=b, isl=isl, osl=osl)
        out.append({"ttft_s": h.predict_prefill_latency(b, isl) / 1e3,
                    "tpot_s": gen / osl / 1e3, "context_ms": ctx})
print(json.dumps(out))
"""


def aiconfigurator(python: str) -> list[dict]:
    jobs = [[m, s, v, tp, list(BATCHES), ISL, OSL] for _, m, _, s, v, tp in CONFIGS]
    proc = subprocess.run(
        [python, "-c", AIC_SCRIPT, json.dumps(jobs)], capture_output=True, text=True, check=True
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def perfmodel_rows() -> list[dict]:
    out = []
    for model, _, gpu, _, _, tp in CONFIGS:
        frame = predict(model, gpu, tp, batch=np.array(BATCHES), prompt_len=ISL, output_len=OSL)
        for _, r in frame.iterrows():
            out.append({"ttft_s": float(r["ttft_s"]), "tpot_s": float(r["tpot_s"]),
                        "profile": r["profile"]})  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--aic-python", required=True, help="python with aiconfigurator-core")
    args = ap.parse_args()
    theirs, ours = aiconfigurator(args.aic_python), perfmodel_rows()
    errors: dict[str, list[float]] = {"ttft_s": [], "tpot_s": []}
    keys = [(c, b) for c in CONFIGS for b in BATCHES]
    print(f"{'config':34s} {'batch':>5s} {'TTFT ms ours/aic':>20s} {'diff':>7s} "
          f"{'TPOT ms ours/aic':>18s} {'diff':>7s}")  # fmt: skip
    for ((model, _, gpu, _, version, tp), b), a, p in zip(keys, theirs, ours, strict=True):
        line = f"{model} {gpu} TP{tp} vLLM {version} ({p['profile']})"
        cells = []
        for q in ("ttft_s", "tpot_s"):
            d = p[q] / a[q] - 1
            errors[q].append(d)
            cells.append(f"{p[q] * 1e3:9.2f}/{a[q] * 1e3:8.2f} {d:+7.1%}")
        print(f"{line:34s} {b:5d} {cells[0]:>28s} {cells[1]:>26s}")
    for q, e in errors.items():
        e = np.array(e)
        print(f"{q}: perfmodel vs aiconfigurator MAPE {np.abs(e).mean():.1%}, bias "
              f"{e.mean():+.1%}, worst {e[np.argmax(np.abs(e))]:+.1%} over {len(e)} points")  # fmt: skip
    sys.stdout.flush()


if __name__ == "__main__":
    main()
