"""The Python API: `predict` answers for scalars or whole numpy sweeps at once."""

from __future__ import annotations

import numpy as np

from perfmodel.core.deployment import Deployment, make_deployment
from perfmodel.core.inference import request_times
from perfmodel.core.memory import memory_report
from perfmodel.errors import PerfModelError


def check_positive(name: str, values) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise PerfModelError(f"{name} must be positive, got {values!r}")
    return arr


def predict_arrays(dep: Deployment, batch, prompt_len, output_len) -> dict[str, np.ndarray]:
    """Column arrays of predict() for one deployment (no pandas; used by the CLI)."""
    b = check_positive("batch", batch)
    p = check_positive("prompt_len", prompt_len)
    o = check_positive("output_len", output_len)
    b, p, o = np.broadcast_arrays(b, p, o)
    times = request_times(dep, b, p, o)
    mem = memory_report(dep, b, p, o)
    return {
        "batch": b,
        "prompt_len": p,
        "output_len": o,
        "ttft_s": times.ttft_s,
        "tpot_s": times.tpot_s,
        "e2e_s": times.e2e_s,
        "throughput_tok_s": times.throughput_tok_s,
        "weights_gb": mem.weights_gb,
        "kv_cache_gb": mem.kv_cache_gb,
        "total_gb": mem.total_gb,
        "capacity_gb": np.full(b.shape, mem.capacity_gb),
        "fits": mem.fits,
    }


def predict(
    model,
    gpu="h100",
    num_gpus: int = 1,
    batch=1,
    prompt_len=1024,
    output_len=128,
    *,
    tp: int | None = None,
    weight_dtype: str = "bf16",
    kv_dtype: str = "bf16",
    mode: str | None = None,
    profile=None,
    pp: int = 1,
):
    """Predict TTFT, TPOT, end-to-end latency, throughput and memory per GPU.

    `batch`, `prompt_len` and `output_len` are scalars or numpy arrays that broadcast
    together; the result is a pandas DataFrame with one row per configuration, plus the
    columns model, gpu, num_gpus, tp, pp, weight_dtype, kv_dtype, mode and profile (the basis
    of every number: a fitted profile name, or 'ideal'). `pp` pipeline stages per replica.
    """
    import pandas as pd

    dep = make_deployment(model, gpu, num_gpus, tp, weight_dtype, kv_dtype, mode, profile, pp=pp)
    cols = predict_arrays(dep, batch, prompt_len, output_len)
    frame = pd.DataFrame({k: np.ravel(v) for k, v in cols.items()})
    for key, value in (
        ("model", dep.model.name),
        ("gpu", dep.gpu.name),
        ("num_gpus", dep.num_gpus),
        ("tp", dep.tp),
        ("pp", dep.pp),
        ("weight_dtype", dep.weight_dtype),
        ("kv_dtype", dep.kv_dtype),
        ("mode", dep.mode),
        ("profile", dep.profile.name),
    ):
        frame[key] = value
    return frame
