"""The types of an operator table's curves: Curves (one table's curves, built by load.py or
decoded from the table's binary copy by stored.py) and Lazy (a mapping built per key on first
access)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from perfmodel.specs.optables import OpTable


class Lazy(Mapping):
    """A mapping whose keys are known up front and whose values are built on first access
    (then kept): a table measures attention for a dozen (heads, kv heads, head_dim)
    configurations, and a deployment prices one or two of them. `ordered`: a function giving
    the keys as iteration yields them, where `keys` holds equal keys that are cheaper to
    make (Python floats for numpy float64s: equal, with equal hashes), called when the
    mapping is first iterated (a deployment's pricing looks keys up; few iterate them)."""

    def __init__(self, keys, build: Callable, ordered: Callable | None = None):
        self._keys = keys if isinstance(keys, dict) else dict.fromkeys(keys)  # hashed
        self._build = build
        self._built: dict = {}
        self._ordered = ordered  # the keys as iterated, made when first asked for (None: keys)

    def __getitem__(self, key):
        if key not in self._built:
            if key not in self._keys:
                raise KeyError(key)
            self._built[key] = self._build(key)
        return self._built[key]

    def __contains__(self, key) -> bool:
        return key in self._keys

    def __iter__(self):
        if self._ordered is not None:
            self._keys = dict.fromkeys(self._ordered())
            self._ordered = None
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


@dataclass(eq=False)
class Curves:
    """Curves of one table; `flops` and `bw`: peaks of the table's GPU, for the ratios."""

    table: OpTable
    flops: float
    bw: float
    gemm: dict = field(default_factory=dict)  # (K, N) -> (Curve log t, Curve log r)
    gemm_grid: np.ndarray | None = None  # common log M grid
    gemm_ratio_by_size: tuple = ()  # (log K*N sorted, ratio rows on gemm_grid)
    gemm_floor_s: float = 0.0  # smallest measured GEMM time: the launch floor of any GEMM
    stream_bw: float = np.inf  # HBM weight-streaming rate of the table's largest GEMVs, B/s
    # (h, kv, hd) -> (log b, log c, log t grid, log ratio grid, log ratio vs log KV bytes)
    attn_decode: Mapping = field(default_factory=dict)  # Lazy: built per configuration
    attn_prefill: Mapping = field(default_factory=dict)  # (h, kv, hd) -> (Curve t, Curve r)
    eltwise: dict = field(default_factory=dict)  # 'rmsnorm' | 'kernel' -> (Curve t, Curve r)
    rmsnorm_by_width: dict = field(default_factory=dict)  # row width d -> (Curve t, Curve r)
    w_bytes: float = 2.0  # bytes per weight element of the GEMM rows
    fp8: Curves | None = None  # the table's FP8 GEMM rows, when it has them
