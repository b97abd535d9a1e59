"""Wall time of `perfmodel validate` and `perfmodel calibrate` on a large measurement CSV.

    python benchmarks/bench_accuracy.py [--rows 400000] [--keep DIR]

The CSV is SYNTHETIC: every row's ttft_s and tpot_s are perfmodel's own prediction (profile
`vllm-0.6.3-h100`, the deployment of the row) times log-normal noise (sigma 5%), with
runner = 'synthetic-benchmark'. It exercises the code path of a long profiler sweep and says
nothing about accuracy; it is written to a temporary directory and never committed as a
measurement. Prints rows, file size, and seconds for validate and calibrate, each run once
through the real entry point (perfmodel.cli.main.main) in this process.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEPLOYMENTS = (  # (model, gpu, num_gpus)
    ("Llama-3.1-8B", "h100", 1),
    ("Llama-3.1-8B", "a100", 1),
    ("Llama-3.1-70B", "h100", 4),
    ("Llama-3.1-70B", "h100", 8),
    ("Llama-3.2-1B", "h100", 1),
)


def synthetic_csv(path: Path, rows: int, seed: int = 0) -> None:
    """Write `rows` synthetic measurement rows (model prediction x noise) to `path`."""
    import pandas as pd

    from perfmodel.core.deployment import make_deployment
    from perfmodel.core.inference import decode_step_time, mean_decode_context, prefill_time

    rng = np.random.default_rng(seed)
    which = rng.integers(0, len(DEPLOYMENTS), rows)
    batch = 2 ** rng.integers(0, 8, rows)
    prompt = 2 ** rng.integers(7, 14, rows)
    output = 2 ** rng.integers(4, 10, rows)
    ttft = np.empty(rows)
    tpot = np.empty(rows)
    for k, (model, gpu, n) in enumerate(DEPLOYMENTS):
        sel = which == k
        dep = make_deployment(model, gpu, n, profile="vllm-0.6.3-h100")
        ttft[sel] = prefill_time(dep, batch[sel], prompt[sel])
        tpot[sel] = decode_step_time(dep, batch[sel], mean_decode_context(prompt[sel], output[sel]))
    noise = rng.lognormal(0.0, 0.05, (2, rows))
    frame = pd.DataFrame(
        {
            "model": [DEPLOYMENTS[k][0] for k in which],
            "gpu": [DEPLOYMENTS[k][1] for k in which],
            "num_gpus": [DEPLOYMENTS[k][2] for k in which],
            "tp": [DEPLOYMENTS[k][2] for k in which],
            "weight_dtype": "bf16",
            "kv_dtype": "bf16",
            "batch_size": batch,
            "prompt_len": prompt,
            "output_len": output,
            "ttft_s": ttft * noise[0],
            "tpot_s": tpot * noise[1],
            "status": "ok",
            "runner": "synthetic-benchmark",
        }
    )
    frame.to_csv(path, index=False)


def timed(argv: list[str]) -> float:
    from perfmodel.cli.main import main

    sink = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sink):
        code = main(argv)
    seconds = time.perf_counter() - t0
    if code != 0:
        sys.exit(f"perfmodel {' '.join(argv)} exited {code}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--keep", type=Path, help="write the CSV here instead of a temp dir")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        csv = folder / "synthetic_measurements.csv"
        synthetic_csv(csv, args.rows)
        size_mb = csv.stat().st_size / 1e6
        t_val = timed(["validate", "--measurements", str(csv), "--json"])
        t_cal = timed(["calibrate", "--measurements", str(csv), "--json"])
    print(f"rows {args.rows}, CSV {size_mb:.1f} MB (synthetic: model x noise)")
    print(f"validate  {t_val:.2f} s")
    print(f"calibrate {t_cal:.2f} s")


if __name__ == "__main__":
    main()
