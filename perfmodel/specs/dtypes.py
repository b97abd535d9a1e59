"""Bytes per element of weight, KV-cache and activation dtypes, and the matmul compute dtype.

int4 is weight-only (W4A16, e.g. AWQ/GPTQ): 0.5 byte per weight plus one 16-bit scale per
group of 128 weights (0.5 + 2/128 bytes), dequantized into BF16 matmuls. fp8 is W8A8 (FP8
tensor cores on Hopper/Ada/Blackwell/MI300; GPUs without them run BF16 matmuls). fp32 is
for CPU measurements of the torch runner.

Block-scaled and micro-scaled formats (bytes per weight include the scales):
- fp8-block: FP8 E4M3 with one fp32 scale per 128x128 block (DeepSeek-V3, Kimi-K2
  `weight_block_size: [128, 128]`): 1 + 4/16384 bytes.
- mxfp4: OCP Microscaling FP4 (E2M1) with one E8M0 (1-byte) scale per 32 weights (gpt-oss):
  0.5 + 1/32 bytes (OCP MX spec v1.0).
- nvfp4: FP4 (E2M1) with one FP8 E4M3 scale per 16 weights, plus an fp32 scale per tensor
  (negligible): 0.5 + 1/16 bytes (NVIDIA Blackwell NVFP4).
Their matmuls run on FP4 tensor cores where the GPU has them (a dense fp4 peak in its YAML,
Blackwell); elsewhere the weights are dequantized into BF16 matmuls (W4A16, as vLLM's Marlin
MXFP4 path on Hopper).
"""

from __future__ import annotations

from perfmodel.errors import PerfModelError

WEIGHT_BYTES = {
    "fp32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 0.5 + 2.0 / 128,
    "fp8-block": 1.0 + 4.0 / (128 * 128),
    "mxfp4": 0.5 + 1.0 / 32,
    "nvfp4": 0.5 + 1.0 / 16,
}
FP4_FORMATS = ("mxfp4", "nvfp4")
NOMINAL_BITS = {  # bits of a weight element, scales aside (for ordering formats)
    "fp32": 32,
    "bf16": 16,
    "fp16": 16,
    "fp8": 8,
    "fp8-block": 8,
    "int8": 8,
    "int4": 4,
    "mxfp4": 4,
    "nvfp4": 4,
}
KV_BYTES = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0}
COMPUTE_DTYPE = {
    "fp32": "fp32",
    "bf16": "bf16",
    "fp16": "fp16",
    "fp8": "fp8",
    "int8": "int8",
    "int4": "bf16",
    "fp8-block": "fp8",
    "mxfp4": "fp4",
    "nvfp4": "fp4",
}
ACT_BYTES = 2.0  # activations stay in BF16

# (weight, KV) precisions the planners try, best quality first (recommend, capacity)
PRECISIONS: tuple[tuple[str, str], ...] = (
    ("bf16", "bf16"),
    ("fp8", "bf16"),
    ("fp8", "fp8"),
    ("int4", "fp8"),
)


# compute dtypes a GPU datasheet may give a dense peak for (hardware_specs/*.yaml)
PEAK_DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "int4", "fp4")
# other spellings (torch, Hugging Face) of the names above
DTYPE_ALIASES = {
    "bfloat16": "bf16",
    "float16": "fp16",
    "half": "fp16",
    "float32": "fp32",
    "float": "fp32",
}


def canonical_dtype(name: str, what: str = "dtype", allowed=tuple(WEIGHT_BYTES)) -> str:
    """'bfloat16' -> 'bf16', 'half' -> 'fp16', ...; PerfModelError unless in `allowed`."""
    key = str(name).strip().lower()
    value = DTYPE_ALIASES.get(key, key)
    if value not in allowed:
        raise PerfModelError(f"{what} '{name}' is not one of {', '.join(allowed)}")
    return value


def weight_bytes(dtype: str) -> float:
    try:
        return WEIGHT_BYTES[dtype.lower()]
    except KeyError:
        raise PerfModelError(
            f"unknown weight dtype '{dtype}'; use one of {', '.join(WEIGHT_BYTES)}"
        ) from None


def kv_bytes(dtype: str) -> float:
    try:
        return KV_BYTES[dtype.lower()]
    except KeyError:
        raise PerfModelError(
            f"unknown KV dtype '{dtype}'; use one of {', '.join(KV_BYTES)}"
        ) from None


def compute_dtype(weight_dtype: str, native: tuple[str, ...] | None = None) -> str:
    """The matmul dtype of a weight dtype; with `native` (the dtypes a GPU has a peak for),
    FP4 weights on a GPU without FP4 tensor cores are dequantized into BF16 matmuls."""
    weight_bytes(weight_dtype)  # validates
    dtype = COMPUTE_DTYPE[weight_dtype.lower()]
    if native is not None and dtype == "fp4" and "fp4" not in native:
        return "bf16"
    return dtype


def precisions_for(checkpoint_format: str, precisions) -> tuple[tuple[str, str], ...]:
    """The (weights, KV) pairs a planner tries for a model whose checkpoint is published in
    `checkpoint_format` (quantization_config): it is served in that format, never upcast
    (gpt-oss exists only in MXFP4, DeepSeek-V3 in block-scaled FP8), so each weight dtype of
    `precisions` storing more bytes than the format becomes the format (order kept, repeats
    dropped); leaner dtypes (int4 for an FP8 checkpoint) stay. Unquantized: unchanged."""
    if not checkpoint_format:
        return tuple(precisions)
    native = NOMINAL_BITS[checkpoint_format]
    out: list[tuple[str, str]] = []
    for w, k in precisions:
        pair = (checkpoint_format, k) if NOMINAL_BITS[w] >= native else (w, k)
        if pair not in out:
            out.append(pair)
    return tuple(out)
