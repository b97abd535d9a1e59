"""Operator microbenchmarks: the cost model's operators timed on the local device.

``perfmodel profile --ops`` measures, for one model's shapes (at tensor-parallel degree t):
- the GEMMs of ``perfmodel.core.ops`` (qkv_proj, o_proj, mlp_gate_up, mlp_down, lm_head), y = x @ W
  with W [K, N] split as ops.py splits it (column-parallel N/t, row-parallel K/t), over a grid
  of token counts M; FLOPs 2*M*K*N, bytes (K*N + M*K + M*N) * dtype bytes;
- attention decode: SDPA with one query token over batch x context cached tokens (GQA,
  ``enable_gqa``); FLOPs 4*B*h*C*hd, bytes K+V read + q in + o out;
- causal prefill attention over lengths S; FLOPs 4*B*h*S*S*hd/2 (causal half), bytes q,k,v,o;
- RMSNorm (``F.rms_norm``, bytes read+write of [M, d]) and SiLU*mul (read 2, write 1 of
  [M, f/t]): the parts of the cost model's ``norm_rope_act``;
- a device copy over sizes (bytes counted read + write);
- NCCL all-reduce over message sizes when more than one GPU is visible (``profiler.ops_comm``).

Timing follows ../shared/reference/measured/bench_ops.py: on CUDA each point is ``reps``
back-to-back launches captured in one CUDA graph, replayed once to warm up, then timed over two
replays with CUDA events; time = elapsed / (2 * reps) (kernel time without launch gaps). On CPU
the same launches run eagerly after one warm-up, timed with perf_counter (``timing`` column).

Rows are appended and fsynced one by one; ``resume`` skips rows whose key is already in the file.
torch is imported inside functions only.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from perfmodel.errors import PerfModelError
from perfmodel.specs.dtypes import KV_BYTES
from perfmodel.specs.units import plural
from profiler import fingerprint
from profiler.ops_comm import allreduce_ms
from profiler.runner import is_oom
from profiler.timer import time_graph, time_wall
from profiler.torch_runner import torch_dtype

COLUMNS = (
    "model", "tp", "op", "kernel", "shape", "m", "k", "n", "batch", "context", "heads",
    "kv_heads", "head_dim", "bytes", "flops", "time_ms", "tflops", "tbps", "reps", "timing",
    "status", "note", "dtype", "device", "gpu", "gpu_name", "gpu_count", "driver",
    "framework_version", "torch_version", "cpu_model", "sm_clock_mhz", "mem_clock_mhz",
    "power_limit_w", "timestamp",
)  # fmt: skip
KEY_COLUMNS = (
    "model", "tp", "op", "kernel", "m", "k", "n", "batch", "context", "heads", "kv_heads",
    "head_dim", "bytes", "dtype", "device",
)  # fmt: skip
# element sizes of the dtypes a microbenchmark runs in: specs.dtypes, the one table
DTYPE_BYTES = {d: int(KV_BYTES[d]) for d in ("bf16", "fp16", "fp32")}


@dataclass(frozen=True)
class OpsGrid:
    """Which points to measure; ``for_device`` gives the GPU or the tiny CPU grid."""

    m: tuple[int, ...]
    decode_batch: tuple[int, ...]
    decode_context: tuple[int, ...]
    prefill: tuple[tuple[int, int], ...]  # (batch, length)
    copy_bytes: tuple[int, ...]
    allreduce_bytes: tuple[int, ...]
    reps: int = 20
    long_reps: int = 5  # prefill attention and big copies (bench_ops.py uses 5)
    max_bytes: float = 40e9  # skip attention points whose K+V exceed this

    @classmethod
    def for_device(cls, device: str, max_m: int | None = None) -> OpsGrid:
        if device.startswith("cuda"):
            grid = cls(
                m=tuple(2**i for i in range(15)),  # 1 .. 16384
                decode_batch=(1, 4, 16, 64, 256),
                decode_context=(512, 2048, 8192, 32768),
                prefill=((1, 512), (1, 2048), (1, 8192), (1, 32768), (4, 8192), (16, 2048)),
                copy_bytes=(*(2**i for i in range(20, 32, 2)), 2**31),  # 1 MiB .. 2 GiB
                allreduce_bytes=tuple(2**i for i in range(12, 29, 2)),  # 4 KiB .. 256 MiB
            )
        else:
            grid = cls(
                m=(1, 2, 4),
                decode_batch=(1, 2),
                decode_context=(16, 64),
                prefill=((1, 16), (1, 64)),
                copy_bytes=(2**16, 2**20),
                allreduce_bytes=(2**12, 2**16),
                reps=3,
                long_reps=2,
                max_bytes=2e8,
            )
        if max_m:
            grid = replace(grid, m=tuple(x for x in grid.m if x <= max_m) or (1,))
        return grid


@dataclass(frozen=True)
class OpPoint:
    """One microbenchmark: what is run (``kernel``) and its natural variables."""

    op: str  # the cost model's operator name (perfmodel.core.ops) or copy / rmsnorm / silu_mul
    kernel: str  # gemm | attn_decode | attn_prefill | rmsnorm | silu_mul | copy | allreduce
    shape: str
    m: int | None = None  # GEMM / elementwise rows (tokens)
    k: int | None = None
    n: int | None = None  # GEMM output width; elementwise row width
    batch: int | None = None
    context: int | None = None  # cached tokens (decode) or prompt length (prefill)
    heads: int | None = None
    kv_heads: int | None = None
    head_dim: int | None = None
    bytes: float = 0.0
    flops: float | None = None
    extra: dict = field(default_factory=dict, compare=False)

    def key(self, model: str, tp: int, dtype: str, device: str) -> tuple[str, ...]:
        row = {**asdict(self), "model": model, "tp": tp, "dtype": dtype, "device": device}
        return tuple(_fmt(row[c]) for c in KEY_COLUMNS)


def gemm_shapes(spec, tp: int) -> list[tuple[str, int, int]]:
    """(op, K, N) of y[M, N] = x[M, K] @ W[K, N] per GPU, split as perfmodel.core.ops._linear."""
    d, q, kv, f = spec.hidden_size, spec.q_dim, spec.kv_dim, spec.intermediate_size
    return [
        ("qkv_proj", d, (q + 2 * kv) // tp),
        ("o_proj", q // tp, d),
        ("mlp_gate_up", d, 2 * f // tp),
        ("mlp_down", f // tp, d),
        ("lm_head", d, spec.vocab_size // tp),
    ]


def plan(spec, tp: int, dtype: str, grid: OpsGrid, multi_gpu: bool) -> list[OpPoint]:
    """Every point for one model at TP degree tp, most useful first (GEMMs, attention, ...)."""
    e = DTYPE_BYTES[dtype]
    points: list[OpPoint] = []
    for op, K, N in gemm_shapes(spec, tp):
        for M in grid.m:
            points.append(
                OpPoint(op, "gemm", f"{op}:{K}x{N}", m=M, k=K, n=N,
                        bytes=float((K * N + M * K + M * N) * e), flops=2.0 * M * K * N)
            )  # fmt: skip
    h = max(spec.num_heads // tp, 1)
    kvh = max(math.ceil(spec.num_kv_heads / tp), 1)
    hd = spec.head_dim
    tag = f"h{h}kv{kvh}d{hd}"
    for B in grid.decode_batch:
        for C in grid.decode_context:
            kv_bytes = 2.0 * B * kvh * C * hd * e
            if kv_bytes > grid.max_bytes:
                continue
            points.append(
                OpPoint("attention", "attn_decode", tag, batch=B, context=C, heads=h,
                        kv_heads=kvh, head_dim=hd, bytes=kv_bytes + 2.0 * B * h * hd * e,
                        flops=4.0 * B * h * C * hd)
            )  # fmt: skip
    for B, S in grid.prefill:
        if 2.0 * B * (h + kvh) * S * hd * e > grid.max_bytes:
            continue
        points.append(
            OpPoint("attention", "attn_prefill", tag, batch=B, context=S, heads=h, kv_heads=kvh,
                    head_dim=hd, bytes=2.0 * B * (h + kvh) * S * hd * e,
                    flops=4.0 * B * h * S * S * hd / 2)
        )  # fmt: skip
    d, f = spec.hidden_size, spec.intermediate_size // tp
    for M in grid.m:
        points.append(
            OpPoint("norm_rope_act", "rmsnorm", f"d{d}", m=M, n=d, bytes=float((2 * M + 1) * d * e))
        )
        points.append(
            OpPoint("norm_rope_act", "silu_mul", f"f{f}", m=M, n=f, bytes=3.0 * M * f * e)
        )
    for size in grid.copy_bytes:
        points.append(OpPoint("copy", "copy", "d2d", bytes=2.0 * size, extra={"size": size}))
    if multi_gpu:
        for size in grid.allreduce_bytes:
            points.append(OpPoint("allreduce", "allreduce", "nccl", bytes=float(size)))
    return points


def _kernel(point: OpPoint, device: str, dtype) -> Callable[[], object]:
    """Allocate the tensors of one point and return the call to time."""
    import torch
    import torch.nn.functional as F

    def rnd(*shape):
        return torch.randn(*shape, device=device, dtype=dtype)

    if point.kernel == "gemm":
        W, x = rnd(point.k, point.n), rnd(point.m, point.k)
        y = torch.empty(point.m, point.n, device=device, dtype=dtype)
        return lambda: torch.matmul(x, W, out=y)
    if point.kernel in ("attn_decode", "attn_prefill"):
        B, h, kvh, hd, C = point.batch, point.heads, point.kv_heads, point.head_dim, point.context
        S = 1 if point.kernel == "attn_decode" else C
        q, k, v = rnd(B, h, S, hd), rnd(B, kvh, C, hd), rnd(B, kvh, C, hd)
        causal = point.kernel == "attn_prefill"
        return lambda: F.scaled_dot_product_attention(
            q, k, v, is_causal=causal, enable_gqa=h != kvh
        )
    if point.kernel == "rmsnorm":
        x, w = rnd(point.m, point.n), torch.ones(point.n, device=device, dtype=dtype)
        return lambda: F.rms_norm(x, (point.n,), w, 1e-5)
    if point.kernel == "silu_mul":
        a, b = rnd(point.m, point.n), rnd(point.m, point.n)
        return lambda: F.silu(a) * b
    if point.kernel == "copy":
        src = torch.empty(int(point.extra["size"]), dtype=torch.uint8, device=device)
        dst = torch.empty_like(src)
        return lambda: dst.copy_(src)
    raise PerfModelError(f"unknown kernel {point.kernel}")


def measure(point: OpPoint, device: str, dtype_name: str, grid: OpsGrid) -> tuple[float, int, str]:
    """(ms per launch, reps, timing) of one point on ``device``."""
    import torch

    long = point.kernel == "attn_prefill" or (point.kernel == "copy" and point.bytes > 2e8)
    reps = grid.long_reps if long else grid.reps
    fn = _kernel(point, device, torch_dtype(dtype_name))
    with torch.inference_mode():
        if device.startswith("cuda"):
            return time_graph(fn, reps), reps, "cuda_graph"
        return time_wall(fn, reps), reps, "wall"


# ---- the table file -----------------------------------------------------------------------
def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        return str(int(value)) if value.is_integer() and abs(value) < 1e18 else format(value, ".7g")
    return str(value)


class OpsTable:
    """The operator CSV: header check, resume keys, one fsynced append per row."""

    def __init__(self, path: str | Path, resume: bool):
        self.path = Path(path)
        self.done: set[tuple[str, ...]] = set()
        rows = self._existing()
        if rows and not resume:
            raise PerfModelError(
                f"{self.path} already holds {len(rows)} rows; pass --resume to continue, "
                "or choose another --out"
            )
        self.done = {tuple(_norm(r.get(c, "")) for c in KEY_COLUMNS) for r in rows}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a" if rows else "w", newline="", encoding="utf-8")
        except OSError as exc:
            raise PerfModelError(f"cannot write {self.path}: {exc.strerror}") from exc
        if not rows:
            self._write(list(COLUMNS))

    def _existing(self) -> list[dict[str, str]]:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return []
        raw = self.path.read_bytes()
        if not raw.endswith(b"\n"):  # a torn last line from a killed run
            raw = raw[: raw.rfind(b"\n") + 1]
            with open(self.path, "r+b") as fh:
                fh.truncate(len(raw))
        reader = csv.DictReader(io.StringIO(raw.decode("utf-8", errors="replace")))
        missing = [c for c in KEY_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise PerfModelError(
                f"{self.path} is not an operator table (missing columns: {', '.join(missing)})"
            )
        return list(reader)

    def _write(self, values: list[str]) -> None:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(values)
        self._fh.write(buf.getvalue())
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def append(self, row: dict[str, object]) -> None:
        self._write([_fmt(row.get(c)) for c in COLUMNS])

    def close(self) -> None:
        self._fh.close()


def _norm(text: str) -> str:
    try:
        return _fmt(float(text)) if text.strip() else ""
    except ValueError:
        return text.strip()


@dataclass
class OpsSummary:
    out: str
    written: int = 0
    skipped: int = 0
    failed: int = 0
    rows: list[dict[str, object]] = field(default_factory=list)


def run_ops(
    spec,
    model_name: str,
    out: str | Path,
    device: str = "auto",
    dtype: str | None = None,
    tp: int = 1,
    gpu_index: int | None = None,
    resume: bool = False,
    max_m: int | None = None,
    on_row: Callable[[dict[str, object]], None] | None = None,
) -> OpsSummary:
    """Measure every planned point not yet in ``out``; returns counts (rows are in the file)."""
    import torch

    device = resolve_device(device, gpu_index)
    dtype = dtype or ("bf16" if device.startswith("cuda") else "fp32")
    if dtype not in DTYPE_BYTES:
        raise PerfModelError(f"--dtype '{dtype}' is not one of {', '.join(DTYPE_BYTES)}")
    if tp < 1:
        raise PerfModelError("--tp must be >= 1")
    index = (torch.device(device).index or 0) if device.startswith("cuda") else None
    multi = device.startswith("cuda") and torch.cuda.device_count() > 1
    grid = OpsGrid.for_device(device, max_m)
    points = plan(spec, tp, dtype, grid, multi)
    table = OpsTable(out, resume)
    summary = OpsSummary(out=str(table.path))
    fp = fingerprint.collect(use_gpu=device.startswith("cuda"), gpu_index=index)
    base = {
        **fp.as_row(),
        "model": model_name,
        "tp": tp,
        "dtype": dtype,
        "device": device,
        "framework_version": f"torch {torch.__version__}",
    }
    try:
        for point in points:
            if point.key(model_name, tp, dtype, device) in table.done:
                summary.skipped += 1
                continue
            row = {**base, **{k: v for k, v in asdict(point).items() if k != "extra"}}
            try:
                if point.kernel == "allreduce":
                    ms, reps, timing = allreduce_ms(int(point.bytes), dtype, grid.reps)
                else:
                    ms, reps, timing = measure(point, device, dtype, grid)
                row.update(time_ms=ms, reps=reps, timing=timing, status="ok")
                if ms > 0:
                    row["tflops"] = point.flops / ms / 1e9 if point.flops else None
                    row["tbps"] = point.bytes / ms / 1e9
            except Exception as exc:  # one failed point (OOM ...) must not end the table
                row.update(status="oom" if is_oom(exc) else "error", note=str(exc)[:200])
                summary.failed += 1
            finally:
                if device.startswith("cuda"):
                    torch.cuda.empty_cache()
            row["timestamp"] = datetime.now(UTC).isoformat(timespec="seconds")
            table.append(row)
            summary.written += 1
            summary.rows.append(row)
            if on_row is not None:
                on_row(row)
    finally:
        table.close()
    return summary


def resolve_device(device: str, gpu_index: int | None = None) -> str:
    """'auto' -> cuda when torch sees a GPU, else cpu; cuda + gpu_index -> cuda:i."""
    import torch

    if device not in ("auto", "cpu") and not device.startswith("cuda"):
        raise PerfModelError(f"--device must be auto, cpu or cuda, not '{device}'")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise PerfModelError("--device cuda: torch sees no CUDA GPU")
        if gpu_index is not None:
            if not 0 <= gpu_index < torch.cuda.device_count():
                raise PerfModelError(
                    f"--gpu-index {gpu_index}: torch sees "
                    f"{plural(torch.cuda.device_count(), 'GPU')}"
                )
            device = f"cuda:{gpu_index}"
            torch.cuda.set_device(gpu_index)
    elif gpu_index is not None:
        raise PerfModelError("--gpu-index needs --device cuda")
    return device


def iter_rows(path: str | Path) -> Iterator[dict[str, str]]:
    """The rows of an operator table (for readers and tests)."""
    with open(path, newline="", encoding="utf-8") as fh:
        yield from csv.DictReader(fh)
