"""Measure the bias of the cross-GPU transfer rule per operator class, and correct it.

    python validation/fit_transfer.py        # prints the report, rewrites the YAML

Rule (core/optable/transfer.py): a kernel on a GPU without a table takes the time measured
on the nearest GPU of its architecture family; the part of it above a fixed latency t0 (per
framework and operator class) scales by the ratio of the two GPUs' datasheet rooflines for
that kernel, the latency does not:
    t_new = t0' + (t_meas - t0') * R_new / R_meas,  t0' = min(t0, t_meas),
    R = max(FLOPs / peak, bytes / bandwidth)
t0 = 0 is pure roofline scaling, which the H100/H200 pairs show is wrong for small kernels:
a single exponent on R_new / R_meas fitted per class is ~0.1 for kernels under 10 us and
~0.8-1.0 above 100 us, which a fixed latency describes and an exponent cannot. Where two GPUs
both have tables, t0 minimizes the squared log error over every kernel measured at the same
coordinates on both (scipy minimize_scalar, bounded to 0..50 us), fitted on the imported vLLM tables of
H100 SXM and H200 (both directions) for vLLM tables, and on our own H100 and H200 tables
(perfmodel profile --ops) for plain-PyTorch tables: in-sample both. A kernel compute-bound on
H100 and H200 share compute peaks: no pair here measures compute scaling, which stays the
datasheet ratio. Printed as well: the vLLM latencies applied to our own torch tables (never
fitted on them): they do not carry across frameworks for decode attention.
The H100 and H200 share compute peaks: b describes bandwidth scaling (and, through the
latency-bound small kernels, how little of it a launch-bound kernel sees).
Written: perfmodel/data/transfer_latency.yaml.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np
import yaml

from perfmodel.specs.hardware import resolve_gpu
from perfmodel.specs.optables import load_optable

OUT = Path(__file__).resolve().parent.parent / "perfmodel" / "data" / "transfer_latency.yaml"
# framework -> the table pair (both directions) its latencies are fitted on: the kernels
# differ per framework (vLLM's paged decode attention has a ~42 us part that does not speed
# up with bandwidth, plain PyTorch's SDPA decode ~8 us), so a latency fitted on one
# framework's tables is not used for another's (see CROSS below)
FIT_PAIRS = {
    "vllm": ("h100-sxm__vllm-0.24.0", "h200__vllm-0.24.0"),
    "torch-cudagraph": ("h100-sxm__torch-cudagraph", "h200__torch-cudagraph"),
}
CLASSES = ("gemm_small", "gemm_large", "attn_decode", "attn_prefill", "eltwise")
CROSS = ("vllm", "torch-cudagraph")  # vLLM's latencies applied to our torch tables
SMALL_M = 64  # GEMMs with at most this many tokens: GEMV-like, weight-streaming


def class_of(op: str, m: float) -> str | None:
    if op == "gemm":
        return "gemm_small" if m <= SMALL_M else "gemm_large"
    if op in ("attn_decode", "attn_prefill"):
        return op
    if op in ("rmsnorm", "silu_mul"):
        return "eltwise"
    return None


KEYS = ("m", "k", "n", "batch", "ctx", "heads", "kv_heads", "head_dim")


def _points(name: str) -> dict:
    """(class, dtype, coordinates) -> (time s, roofline s) of every row of a table."""
    t = load_optable(name)
    hw = resolve_gpu(t.gpu)
    v, out = t.values, {}
    for i in range(len(t.op)):
        cls = class_of(str(t.op[i]), v["m"][i])
        if cls is None:
            continue
        dtype = str(t.dtypes[i])
        flops = float(np.nan_to_num(v["flops"][i]))  # elementwise rows: bytes only
        roof = max(flops / hw.peak_flops(dtype), v["bytes"][i] / hw.hbm_bandwidth)
        if not np.isfinite(roof) or roof <= 0:
            continue
        key = (cls, dtype, *(round(float(np.nan_to_num(v[c][i], nan=-1.0)), 3) for c in KEYS))
        out[key] = (float(v["time_s"][i]), roof)
    return out


def matched(a: str, b: str) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per class: x = log(R_b / R_a), y = log(t_b / t_a), and t_a, at points in both."""
    pa, pb = _points(a), _points(b)
    out: dict[str, list] = {}
    for key in pa.keys() & pb.keys():
        (ta, ra), (tb, rb) = pa[key], pb[key]
        out.setdefault(key[0], []).append((np.log(rb / ra), np.log(tb / ta), ta))
    return {c: tuple(np.array(z) for z in zip(*rows, strict=True)) for c, rows in out.items()}


T0_MAX_S = 50e-6


def rule_errors(x, y, ta, t0: float) -> np.ndarray:
    """predicted / measured - 1 of the rule at matched points (x = log R ratio, y = log t
    ratio, ta = measured time on the source GPU)."""
    lat = np.minimum(t0, ta)
    pred = lat + (ta - lat) * np.exp(x)
    return pred / (ta * np.exp(y)) - 1.0


def fit_latency(x, y, ta) -> float:
    from scipy.optimize import minimize_scalar

    def loss(t0):
        return float(np.sum(np.log1p(rule_errors(x, y, ta, t0)) ** 2))

    return float(minimize_scalar(loss, bounds=(0.0, T0_MAX_S), method="bounded").x)


def fit_all() -> dict:
    """framework -> class -> latency, points and the rule's errors before/after (in-sample:
    the pair the latency is fitted on)."""
    result: dict = {}
    for framework, (a, b) in FIT_PAIRS.items():
        both = [matched(a, b), matched(b, a)]
        result[framework] = {}
        for cls in CLASSES:
            parts = [m[cls] for m in both if cls in m]
            if not parts:
                continue
            x = np.concatenate([p[0] for p in parts])
            y = np.concatenate([p[1] for p in parts])
            ta = np.concatenate([p[2] for p in parts])
            t0 = fit_latency(x, y, ta)
            result[framework][cls] = {
                "latency_us": round(t0 * 1e6, 3),
                "points": int(len(x)),
                "fitted_on": f"{a} <-> {b} (in-sample)",
                "roofline": _summary(rule_errors(x, y, ta, 0.0)),
                "corrected": _summary(rule_errors(x, y, ta, t0)),
            }
            for (src, dst), m in zip(((a, b), (b, a)), both, strict=True):
                if cls in m:
                    gpus = f"{load_optable(src).gpu}_to_{load_optable(dst).gpu}"
                    xx, yy, tt = m[cls]
                    result[framework][cls][gpus] = {
                        "roofline": _summary(rule_errors(xx, yy, tt, 0.0)),
                        "corrected": _summary(rule_errors(xx, yy, tt, t0)),
                    }
    return result


def cross_check(fitted: dict) -> dict:
    """The vLLM latencies on our own H100 -> H200 torch tables (never fitted on them)."""
    src, dst = CROSS
    out = {}
    for cls, (x, y, ta) in matched(*FIT_PAIRS[dst]).items():
        if cls not in fitted[src]:
            continue
        t0 = fitted[src][cls]["latency_us"] * 1e-6
        out[cls] = {
            "points": int(len(x)),
            "roofline": _summary(rule_errors(x, y, ta, 0.0)),
            f"with_{src}_latency": _summary(rule_errors(x, y, ta, t0)),
        }
    return out


def _summary(e: np.ndarray) -> dict:
    return {
        "bias": round(float(e.mean()), 4),
        "mape": round(float(np.abs(e).mean()), 4),
        "worst": round(float(e[np.argmax(np.abs(e))]), 4),
    }


def main() -> None:
    fitted = fit_all()
    for framework, classes in fitted.items():
        for cls, r in classes.items():
            print(f"{framework:16s} {cls:13s} t0={r['latency_us']:.2f}us n={r['points']:5d} "
                  f"roofline {r['roofline']} -> corrected {r['corrected']}")  # fmt: skip
            for key, d in r.items():
                if "_to_" in key:
                    print(f"    {key}: bias {d['roofline']['bias']:+.3f} -> "
                          f"{d['corrected']['bias']:+.3f}, MAPE {d['roofline']['mape']:.3f} -> "
                          f"{d['corrected']['mape']:.3f}")  # fmt: skip
    crossed = cross_check(fitted)
    for cls, r in crossed.items():
        print(f"vllm latencies on torch H100->H200 {cls:13s} n={r['points']}: roofline "
              f"{r['roofline']} -> {r['with_vllm_latency']}")  # fmt: skip
    doc = {
        "description": "cross-GPU transfer per framework and operator class: t_new = t0' + "
        "(t_meas - t0') * roofline_new / roofline_meas, t0' = min(latency, t_meas) "
        "(validation/fit_transfer.py)",
        "small_gemm_max_tokens": SMALL_M,
        "date": _dt.date.today().isoformat(),
        "frameworks": fitted,
        "cross_check_vllm_latencies_on_torch_tables": crossed,
    }
    OUT.write_text(
        "# Written by validation/fit_transfer.py; do not edit by hand.\n"
        + yaml.safe_dump(doc, sort_keys=False, width=100)
    )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
