"""The measurement plan of measure_h100.sh: one model's torch sweeps, in one process.

    python profiler/gpu/sweeps.py MODEL OUT_PREFIX decode|prefill|eager [--small]

decode:  CUDA-graph decode steps at the shapes of ../shared/reference/measured/
         h100_torch_cudagraph.csv: batch 1..256 x context 512..32768, kept where the KV cache
         fits (batch * context * kv_bytes_per_token < 58 GB, the reference's rule for 8B; 70 GB
         for the 1B); KV cache filled with random values (--decode-only), the step at position
         context - 1, so it attends exactly `context` tokens (prompt_len = context - 1,
         output_len = 2). Writes OUT_PREFIX_decode.csv.
prefill: one eager forward of batch x length (batch 1..16 for 7-8B, 1/4/16 for 1B; batch *
         length <= 131072), mean of 3 after a warm-up (1 after a warm-up when a point takes
         ~1 s or more: batch * length >= 32768). Writes OUT_PREFIX_prefill.csv.
eager:   the decode step without a graph at a few points (the reference's eager_time_ms).
--small: tiny shapes for a CPU rehearsal (no GPU), same code paths.

Each point is a durable CSV row (the sweep's fsync per row); --resume on every call, so a rerun
continues where a timeout stopped. Each sweep runs `python -m perfmodel profile ...` in a child
process: this script drives the CLI as a user would and imports none of it.
"""

from __future__ import annotations

import subprocess
import sys

from perfmodel.specs.models import load_model

BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
CONTEXTS = (512, 2048, 8192, 32768)
PREFILL_LENGTHS = (512, 2048, 8192, 32768)


def kv_bytes_per_token(spec, dtype_bytes: int = 2) -> int:
    """K and V of every layer for one token: 2 * layers * kv_heads * head_dim * bytes."""
    return 2 * spec.num_layers * spec.num_kv_heads * spec.head_dim * dtype_bytes


def decode_grid(spec, small: bool) -> list[tuple[int, list[int]]]:
    """(context, batches) pairs, the reference's rule: batch * context * kv/token < free."""
    if small:
        return [(16, [1, 2]), (64, [1, 2])]
    free_gb = 70 if spec.num_layers <= 16 else 58
    per_token = kv_bytes_per_token(spec)
    return [(c, [b for b in BATCHES if b * c * per_token < free_gb * 1e9]) for c in CONTEXTS]


def prefill_grid(spec, small: bool) -> list[tuple[int, list[int], int]]:
    """(length, batches, repeats) triples: long points are timed once after a warm-up."""
    if small:
        return [(16, [1, 2], 3), (32, [1], 1)]
    batches = (1, 4, 16) if spec.num_layers <= 16 else (1, 2, 4, 8, 16)
    out = []
    for s in PREFILL_LENGTHS:
        fits = [b for b in batches if b * s <= 131072]
        short = [b for b in fits if b * s < 32768]
        long = [b for b in fits if b * s >= 32768]
        out += [(s, short, 3)] if short else []
        out += [(s, long, 1)] if long else []
    return out


def run(args: list[str]) -> None:
    print("+ perfmodel " + " ".join(args), flush=True)
    rc = subprocess.run([sys.executable, "-m", "perfmodel", *args], check=False).returncode
    if rc:
        print(f"  (exit {rc})", flush=True)


def sweep(model: str, prefix: str, what: str, small: bool) -> None:
    spec = load_model(model)
    # --no-rope: measured like the reference set (../shared/reference/measured), so the two compare
    common = ["profile", "--runner", "torch", "--model", model, "--no-progress", "--resume",
              "--no-rope"]  # fmt: skip
    if what == "decode":
        for context, batches in decode_grid(spec, small):
            if batches:
                run(common + ["--out", f"{prefix}_decode.csv", "--decode-only",
                              "--batch", ",".join(map(str, batches)),
                              "--prompt-len", str(context - 1), "--output-len", "2",
                              "--repeats", "2", "--warmup", "1"])  # fmt: skip
    elif what == "prefill":
        for length, batches, repeats in prefill_grid(spec, small):
            run(common + ["--out", f"{prefix}_prefill.csv",
                          "--batch", ",".join(map(str, batches)), "--prompt-len", str(length),
                          "--output-len", "1", "--repeats", str(repeats), "--warmup", "1"])  # fmt: skip
    elif what == "eager":
        contexts = "15,63" if small else "511,8191"
        run(common + ["--out", f"{prefix}_eager_decode.csv", "--decode-only", "--no-cuda-graph",
                      "--batch", "1,16" if not small else "1", "--prompt-len", contexts,
                      "--output-len", "9", "--repeats", "2", "--warmup", "1"])  # fmt: skip
    else:
        raise SystemExit(f"unknown sweep '{what}' (decode, prefill or eager)")


if __name__ == "__main__":
    argv = [a for a in sys.argv[1:] if a != "--small"]
    if len(argv) != 3:
        raise SystemExit(__doc__)
    sweep(argv[0], argv[1], argv[2], "--small" in sys.argv)
