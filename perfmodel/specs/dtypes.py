"""Bytes per element of weight, KV-cache and activation dtypes, and the matmul compute dtype.

int4 is weight-only (W4A16, e.g. AWQ/GPTQ): 0.5 byte per weight plus one 16-bit scale per
group of 128 weights (0.5 + 2/128 bytes), dequantized into BF16 matmuls. fp8 is W8A8 (FP8
tensor cores on Hopper/Ada/Blackwell/MI300; GPUs without them run BF16 matmuls). fp32 is
for CPU measurements of the torch runner.
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
}
KV_BYTES = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0}
COMPUTE_DTYPE = {
    "fp32": "fp32",
    "bf16": "bf16",
    "fp16": "fp16",
    "fp8": "fp8",
    "int8": "int8",
    "int4": "bf16",
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


def compute_dtype(weight_dtype: str) -> str:
    weight_bytes(weight_dtype)  # validates
    return COMPUTE_DTYPE[weight_dtype.lower()]
