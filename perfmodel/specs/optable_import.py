"""Import NVIDIA aiconfigurator-core's measured tables into operator tables (optables.py).

aiconfigurator-core (Apache-2.0, https://github.com/ai-dynamo/aiconfigurator) ships kernel
times measured per GPU and framework version under
`aiconfigurator_core/systems/data/<system>/<op>/<framework>/<version>/<table>.parquet`
(older releases: the same columns as CSV `<table>.txt`; both are read here). Meaning of the
columns, from its own code (v0.12.0):
- gemm/gemm_perf: `latency` (ms) of one GEMM y[m, n] = x[m, k] W[n, k]^T (`torch.nn.functional
  .linear` for bfloat16, `CutlassFP8ScaledMMLinearKernel` for per-tensor fp8), queried by
  `ops.GEMM(name, layers, n, k, quant)` with m = tokens (sdk/models/llama.py). Our (k, n) are
  the weight K x N of y = x @ W, the same numbers.
- attention/context_attention_perf: one causal prefill attention kernel of `batch_size`
  sequences of `isl` tokens with `num_heads` query and `num_key_value_heads` KV heads per GPU
  (llama.py passes num_heads // tp_size), `head_dim`, KV cache dtype `kv_cache_dtype`.
- attention/generation_attention_perf: one decode step (isl = 1 query token) over a KV cache;
  the table is keyed by `isl + step` (the sequence length incl. the new token), our `ctx`.
- comm/<framework>/custom_allreduce_perf: one all-reduce of `message_size` ELEMENTS of
  `allreduce_dtype` over `num_gpus` GPUs of one node (collector/collect_all_reduce.py:
  `torch.ones(shape)` of `size` elements; `latency` = cuda-event time / runs, ms);
  `backend` vllm_graph = inside a CUDA graph (what vLLM's decode runs), vllm_eager = outside.
Where a table has several kernels (`kernel_source`: e.g. FlashAttention 3 and 4 on Hopper),
the one with the most measured rows is taken, as aiconfigurator ranks its donor lanes
(sdk/operations/attention.py, lane_walk_order: by coverage, then rows). A collective table
missing for the requested version falls back to the newest earlier version of the same
framework, as aiconfigurator does ("framework-versioned comm tables may fill from strictly
earlier versions", sdk/operations/communication.py); the row says which version it is.

Every row carries its provenance: source package and version, framework and version, GPU,
license, and the file it came from. Bad input (a table of another GPU, missing columns, NaN
or negative times, an unknown system or framework version) is one PerfModelError line.
pandas and pyarrow are imported inside the functions that read parquet (optional extra
`perfmodel[aiconfigurator]`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from perfmodel.errors import PerfModelError
from perfmodel.specs.optables import IMPORT_COLUMNS, op_counts

SOURCE_PACKAGE = "aiconfigurator-core"
LICENSE = "Apache-2.0"
# perfmodel GPU key -> aiconfigurator system name and the device name its tables record
SYSTEMS: dict[str, str] = {
    "a100-80gb": "a100_sxm",
    "h100-sxm": "h100_sxm",
    "h200": "h200_sxm",
    "l40s": "l40s",
    "b200": "b200_sxm",
}
DEVICE_NAMES: dict[str, str] = {
    "a100_sxm": "NVIDIA A100-SXM4-80GB",
    "h100_sxm": "NVIDIA H100 80GB HBM3",
    "h200_sxm": "NVIDIA H200",
    "l40s": "NVIDIA L40S",
    "b200_sxm": "NVIDIA B200",
}
GEMM_DTYPES = {"bfloat16": "bf16", "fp8": "fp8"}  # fp8 = per-tensor scaled (not fp8_block)
ALLREDUCE_BACKEND = "vllm_graph"
# columns each source table must have
COLUMNS = {
    "gemm_perf": ("device", "gemm_dtype", "kernel_source", "m", "n", "k", "latency"),
    "context_attention_perf": (
        "device",
        "kernel_source",
        "batch_size",
        "isl",
        "num_heads",
        "num_key_value_heads",
        "head_dim",
        "kv_cache_dtype",
        "latency",
    ),
    "generation_attention_perf": (
        "device",
        "kernel_source",
        "batch_size",
        "isl",
        "step",
        "num_heads",
        "num_key_value_heads",
        "head_dim",
        "kv_cache_dtype",
        "latency",
    ),
    "custom_allreduce_perf": (
        "device",
        "allreduce_dtype",
        "num_gpus",
        "message_size",
        "latency",
        "backend",
    ),
}
_ELEMENT_BYTES = {"bfloat16": 2, "float16": 2}  # 16-bit all-reduces only


@dataclass(frozen=True)
class Needs:
    """Which rows to keep (None: all). gemm_shapes: weight (K, N) per GPU; the rows kept are
    those of the measured (k, n) grid points around each; attn: (heads, kv heads, head_dim)
    per GPU; m_values: token counts kept."""

    gemm_shapes: frozenset | None = None
    attn: frozenset | None = None
    m_values: frozenset | None = None
    max_batch: int | None = None


def resolve_system(name: str) -> str:
    """An aiconfigurator system name from itself or a perfmodel GPU name or alias."""
    if name in DEVICE_NAMES:
        return name
    from perfmodel.specs.hardware import resolve_gpu

    try:
        gpu = resolve_gpu(name).name
    except PerfModelError:
        gpu = name
    if gpu not in SYSTEMS:
        raise PerfModelError(
            f"--system '{name}': no aiconfigurator tables are imported for it (known: "
            f"{', '.join(sorted(DEVICE_NAMES))}, or {', '.join(sorted(SYSTEMS))})"
        )
    return SYSTEMS[gpu]


def write_table(rows: list[dict], path: Path) -> None:
    """Rows as CSV (IMPORT_COLUMNS); `.csv.gz`: gzip-compressed, byte-reproducible (no file
    name or time in the gzip header)."""
    import csv
    import gzip
    import io

    path = Path(path)
    with path.open("wb") as raw:
        gz = (
            gzip.GzipFile(fileobj=raw, mode="wb", filename="", mtime=0)
            if path.suffix == ".gz"
            else None
        )
        with io.TextIOWrapper(gz or raw, newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=IMPORT_COLUMNS, lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
        if gz is not None:
            gz.close()


def package_data_dir() -> Path:
    """systems/data of the installed aiconfigurator-core (optional extra)."""
    try:
        import aiconfigurator_core  # optional extra: pip install 'perfmodel[aiconfigurator]'
    except ImportError:
        raise PerfModelError(
            "aiconfigurator-core is not installed: pip install 'perfmodel[aiconfigurator]', "
            "or give --source DIR (its systems/data folder)"
        ) from None
    return Path(aiconfigurator_core.__file__).parent / "systems" / "data"


def package_version(data: Path | None = None) -> str:
    """Version of the aiconfigurator-core whose systems/data folder is `data`: the
    dist-info beside an unpacked wheel, else the installed package's, else 'unknown'."""
    if data is not None:
        for info in sorted(Path(data).resolve().parents[2].glob("aiconfigurator_core-*.dist-info")):
            return info.name.removesuffix(".dist-info").split("-")[1]
    try:
        from importlib.metadata import version

        return version("aiconfigurator-core")
    except Exception:  # noqa: BLE001 - not installed: a source folder given by path
        return "unknown"


def _version_key(text: str) -> tuple:
    return tuple(int(x) if x.isdigit() else -1 for x in re.split(r"[.\-+]", text))


def versions(data: Path, system: str, op: str, framework: str) -> list[str]:
    folder = data / system / op / framework
    if not folder.is_dir():
        return []
    return sorted(
        (p.name for p in folder.iterdir() if p.is_dir() and _has_table(p)), key=_version_key
    )


def _has_table(folder: Path) -> bool:
    return any(p.suffix in (".parquet", ".txt", ".csv") for p in folder.iterdir())


def _read(folder: Path, stem: str) -> tuple[list[dict], Path]:
    """Rows of `<stem>.parquet` (pandas + pyarrow) or `<stem>.txt`/`.csv` (csv module)."""
    for suffix in (".parquet", ".txt", ".csv"):
        path = folder / f"{stem}{suffix}"
        if path.is_file():
            break
    else:
        raise PerfModelError(f"{folder}: no {stem}.parquet (or .txt/.csv) table")
    if path.suffix == ".parquet":
        try:
            import pandas as pd  # heavy: only when importing tables

            frame = pd.read_parquet(path)
        except ImportError:
            raise PerfModelError(
                f"{path}: reading parquet needs pyarrow: pip install 'perfmodel[aiconfigurator]'"
            ) from None
        except Exception as exc:  # noqa: BLE001 - a corrupt file: one line
            raise PerfModelError(f"{path}: not a readable parquet table ({exc})") from None
        header, rows = list(frame.columns), frame.to_dict("records")
    else:
        import csv

        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            header, rows = list(reader.fieldnames or []), list(reader)
    missing = [c for c in COLUMNS[stem] if c not in header]
    if missing:
        raise PerfModelError(
            f"{path}: missing column(s) {', '.join(missing)} (aiconfigurator {stem} has "
            f"{', '.join(COLUMNS[stem])})"
        )
    return rows, path


def _checked(rows: list[dict], path: Path, system: str) -> list[dict]:
    """Device must be the system's GPU; latency finite and > 0 (one line per problem)."""
    device = DEVICE_NAMES.get(system)
    for i, r in enumerate(rows):
        if device is not None and str(r["device"]) != device:
            raise PerfModelError(
                f"{path}: row {i + 1} measured on '{r['device']}', not on {system} ('{device}')"
            )
        try:
            t = float(r["latency"])
        except (TypeError, ValueError):
            t = math.nan
        if not math.isfinite(t) or t <= 0:
            raise PerfModelError(
                f"{path}: row {i + 1}: latency must be a positive finite number (ms), "
                f"got '{r['latency']}'"
            )
    return rows


def _densest(rows: list[dict]) -> str:
    """The kernel_source with the most rows (aiconfigurator's donor-lane ranking)."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[str(r["kernel_source"])] = counts.get(str(r["kernel_source"]), 0) + 1
    return max(sorted(counts), key=lambda k: counts[k])


def _bracket(grid: list[int], value: float) -> set[int]:
    """The measured grid points at and around `value` (exact: itself)."""
    if value in grid:
        return {int(value)}
    lo = [g for g in grid if g < value]
    hi = [g for g in grid if g > value]
    return {x for x in ((lo[-1] if lo else None), (hi[0] if hi else None)) if x is not None}


def _gemm_keep(rows: list[dict], needs: Needs):
    if needs.gemm_shapes is None:
        return None
    ks = sorted({int(r["k"]) for r in rows})
    ns = sorted({int(r["n"]) for r in rows})
    keep = set()
    for k, n in needs.gemm_shapes:
        keep |= {(a, b) for a in _bracket(ks, k) for b in _bracket(ns, n)}
    return keep


def import_tables(
    system: str,
    framework: str,
    version: str,
    data: Path,
    needs: Needs = Needs(),
    package_version_text: str | None = None,
) -> list[dict]:
    """Operator-table rows (optables.IMPORT_COLUMNS) of one
    aiconfigurator system, framework and version: GEMM bf16 and fp8, context and generation
    attention with a BF16 KV cache (densest kernel), intra-node custom all-reduce (CUDA graph)."""
    gpu = {v: k for k, v in SYSTEMS.items()}.get(system)
    if gpu is None:
        raise PerfModelError(
            f"unknown aiconfigurator system '{system}' (known: {', '.join(sorted(DEVICE_NAMES))})"
        )
    if not (data / system).is_dir():
        raise PerfModelError(f"{data}: no data for system '{system}'")
    known = versions(data, system, "gemm", framework)
    if version not in known:
        raise PerfModelError(
            f"unknown {framework} version '{version}' for {system} in {data} (available: "
            f"{', '.join(known) or 'none'})"
        )
    pkg = package_version_text or package_version(data)
    out: list[dict] = []

    def base(path: Path, ver: str) -> dict:
        row = dict.fromkeys(IMPORT_COLUMNS, "")
        rel = path.relative_to(data).as_posix()
        row.update(
            gpu=gpu,
            gpu_name=DEVICE_NAMES[system],
            framework=framework,
            framework_version=ver,
            source=f"{SOURCE_PACKAGE} {pkg}: systems/data/{rel}",
            license=LICENSE,
            source_package=f"{SOURCE_PACKAGE} {pkg}",
        )
        return row

    # GEMM
    rows, path = _read(data / system / "gemm" / framework / version, "gemm_perf")
    rows = _checked(rows, path, system)
    keep = _gemm_keep(rows, needs)
    for src_dtype, dtype in GEMM_DTYPES.items():
        sel = [r for r in rows if r["gemm_dtype"] == src_dtype]
        if not sel:
            continue
        kernel = _densest(sel)
        e = 1 if dtype == "fp8" else 2
        for r in sel:
            m, k, n = int(r["m"]), int(r["k"]), int(r["n"])
            if r["kernel_source"] != kernel or (keep is not None and (k, n) not in keep):
                continue
            if needs.m_values is not None and m not in needs.m_values:
                continue
            row = base(path, version)
            row.update(op="gemm", dtype=dtype, time_ms=float(r["latency"]))
            row.update(op_counts("gemm", e, m=m, k=k, n=n))
            out.append(row)
    # attention (BF16 KV cache; no sliding window)
    folder = data / system / "attention" / framework / version
    for stem, op in (
        ("context_attention_perf", "attn_prefill"),
        ("generation_attention_perf", "attn_decode"),
    ):
        if not folder.is_dir():
            break
        rows, path = _read(folder, stem)
        rows = _checked(rows, path, system)
        sel = [
            r
            for r in rows
            if r["kv_cache_dtype"] == "bfloat16"
            and int(r.get("window_size", 0) or 0) == 0
            and int(r.get("beam_width", 1) or 1) == 1
        ]
        if not sel:
            continue
        kernel = _densest(sel)
        for r in sel:
            h, kv, hd = int(r["num_heads"]), int(r["num_key_value_heads"]), int(r["head_dim"])
            b = int(r["batch_size"])
            if r["kernel_source"] != kernel:
                continue
            if needs.attn is not None and (h, kv, hd) not in needs.attn:
                continue
            if needs.max_batch is not None and b > needs.max_batch:
                continue
            ctx = int(r["isl"]) + (int(r["step"]) if op == "attn_decode" else 0)
            row = base(path, version)
            row.update(op=op, dtype="bf16", time_ms=float(r["latency"]))
            row.update(op_counts(op, 2, batch=b, ctx=ctx, heads=h, kv_heads=kv, head_dim=hd))
            out.append(row)
    # all-reduce inside one node (this version, else the newest earlier one)
    comm = [
        v
        for v in versions(data, system, "comm", framework)
        if _version_key(v) <= _version_key(version)
    ]
    if comm:
        rows, path = _read(data / system / "comm" / framework / comm[-1], "custom_allreduce_perf")
        rows = _checked(rows, path, system)
        for r in rows:
            if r["backend"] != ALLREDUCE_BACKEND or r["allreduce_dtype"] not in _ELEMENT_BYTES:
                continue
            row = base(path, comm[-1])
            size = int(r["message_size"]) * _ELEMENT_BYTES[r["allreduce_dtype"]]
            row.update(
                op="allreduce",
                dtype="bf16",
                time_ms=float(r["latency"]),
                num_gpus=int(r["num_gpus"]),
                bytes=size,
            )
            out.append(row)
    return out
