"""Sweep throughput of perfmodel.predict (vectorized) vs a Python loop over configurations.

    python benchmarks/bench_sweep.py

Prints seconds for 100,000 and 1,000,000 configurations through perfmodel.predict (one call,
numpy arrays), the per-configuration cost of calling it in a Python loop (timed on 2,000
configurations, extrapolated), and the ratio. Also the cold-start wall time of
`perfmodel predict --json` and `perfmodel recommend` in a fresh process. Ratios are what
matter: absolute times depend on the machine.
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np


def best_of(fn, repeats=3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    from perfmodel import predict

    rng = np.random.default_rng(0)
    results = {}
    for n in (100_000, 1_000_000):
        batch = rng.integers(1, 257, n)
        prompt = rng.integers(128, 32_768, n)
        output = rng.integers(16, 1024, n)
        results[n] = best_of(lambda b=batch, p=prompt, o=output: predict("70b", "h100", 8, b, p, o))
        print(
            f"predict over {n:>9,} configurations: {results[n]:.3f} s ({results[n] / n * 1e6:.2f} us each)"
        )
    # the same sweep priced by the measured H100 operator table (torch-cudagraph-h100)
    # against the roofline profile, interleaved so both see the same machine load
    n = 1_000_000
    batch, prompt, output = (
        rng.integers(lo, hi, n) for lo, hi in ((1, 257), (128, 32_768), (16, 1024))
    )
    for model, gpus in (("70b", 8), ("8b", 1)):
        base = best_of(lambda m=model, g=gpus: predict(m, "h100", g, batch, prompt, output), 5)
        table = best_of(
            lambda m=model, g=gpus: predict(
                m, "h100", g, batch, prompt, output, profile="torch-cudagraph-h100"
            ),
            5,
        )
        print(
            f"{model} over {n:,}: roofline profile {base:.3f} s, operator table {table:.3f} s "
            f"(ratio {table / base:.2f})"
        )
    loop_n = 2_000
    batch = rng.integers(1, 257, loop_n)
    prompt = rng.integers(128, 32_768, loop_n)

    def loop():
        for b, p in zip(batch, prompt, strict=True):
            predict("70b", "h100", 8, int(b), int(p), 256)

    per_config = best_of(loop, 1) / loop_n
    print(f"python loop over predict(): {per_config * 1e6:.1f} us per configuration")
    print(f"vectorized speed-up at 100k: {per_config * 100_000 / results[100_000]:.0f}x")

    from perfmodel.core.api import predict_arrays
    from perfmodel.core.deployment import make_deployment

    dep = make_deployment("70b", "h100", 8)

    def core_loop():  # the numpy core called once per configuration (no DataFrame)
        for b, p in zip(batch, prompt, strict=True):
            predict_arrays(dep, int(b), int(p), 256)

    per_core = best_of(core_loop, 1) / loop_n
    print(
        f"python loop over the numpy core: {per_core * 1e6:.1f} us per configuration "
        f"-> vectorized is {per_core * 100_000 / results[100_000]:.0f}x faster at 100k"
    )
    print(
        "reference: the fastest established peer needs ~43 us per configuration (~4.3 s per 100k)"
    )

    cli = [
        sys.executable,
        "-c",
        "import sys; from perfmodel.cli import main; sys.exit(main(sys.argv[1:]))",
    ]
    for args in (
        [
            "predict",
            "--model",
            "70b",
            "--gpu",
            "h100",
            "--num-gpus",
            "8",
            "--batch",
            "128",
            "--prompt-len",
            "4k",
            "--json",
        ],
        ["recommend", "--model", "405b", "--bsz", "64", "--json"],
        [
            "recommend",
            "--model",
            "8b",
            "--bsz",
            "64",
            "--profile",
            "torch-cudagraph-h100",
            "--json",
        ],
    ):
        t0 = time.perf_counter()
        proc = subprocess.run(cli + args, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        status = (
            "ok" if proc.returncode == 0 else f"exit {proc.returncode}: {proc.stderr.strip()[:80]}"
        )
        print(f"cold `perfmodel {' '.join(args[:3])} ...`: {wall:.3f} s wall ({status})")


if __name__ == "__main__":
    main()
