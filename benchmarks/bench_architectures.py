"""Sweep speed of the new architectures against a dense model: 1,000,000 configurations
(batch, prompt, output) through perfmodel.predict in one vectorized call each.

    PYTHONPATH=. python benchmarks/bench_architectures.py

Targets (issue 25): dense <= 0.5 s on the reference machine; MoE, MLA and sliding-window
models within 2x of dense. Absolute times depend on the machine and its load: the ratio to
dense, measured interleaved in the same run (best of 3), is what to read.
"""

from __future__ import annotations

import numpy as np

from benchmarks.bench_sweep import best_of  # one timing rule: best of 3 wall-clock runs

CASES = (  # (label, model, gpu, num_gpus, weight dtype)
    ("dense Llama-3.1-70B", "70b", "h100", 8, "bf16"),
    ("MoE Qwen3-235B-A22B", "qwen3-235b-a22b", "h100", 8, "fp8"),
    ("MLA+MoE DeepSeek-V3", "deepseek-v3", "h200", 8, "fp8-block"),
    ("sliding+MoE gpt-oss-120b", "gpt-oss-120b", "h100", 1, "mxfp4"),
    ("interleaved Llama-4-Scout", "scout", "h100", 8, "bf16"),
)


def main(n: int = 1_000_000) -> None:
    from perfmodel import predict

    rng = np.random.default_rng(0)
    batch, prompt, output = (
        rng.integers(lo, hi, n) for lo, hi in ((1, 257), (128, 32_768), (16, 1024))
    )
    times = {}
    for label, model, gpu, gpus, w in CASES:
        predict(model, gpu, gpus, batch[:10], prompt[:10], output[:10], weight_dtype=w)  # warm

        def run(m=model, g=gpu, k=gpus, dt=w):
            return predict(m, g, k, batch, prompt, output, weight_dtype=dt)

        times[label] = best_of(run)
    dense = times[CASES[0][0]]
    for label, seconds in times.items():
        print(f"{label:28s} {n:,} configurations: {seconds:.3f} s ({seconds / dense:.2f}x dense)")


if __name__ == "__main__":
    main()
