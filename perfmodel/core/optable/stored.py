"""An operator table's curves (core/optable/curves.Curves) as flat arrays, stored in the
table's binary copy (specs/optable_store.py) so that a cold start does not rebuild them.

Building the curves of the five tables `recommend` prices took ~11 ms (GEMM: a sort and a
bincount per table, an interpolation per weight shape; attention: a grid per configuration
priced). `encode` writes every curve, the attention configurations' included (built for all
of them, where a cold run builds those it prices), as sections of float64 arrays:

- a section is one mapping of Curves (`gemm`: (K, N) -> (exact, ratio) curves; `attn_decode`,
  `attn_prefill`: (heads, kv heads, head_dim) -> curves or grids; `eltwise`;
  `rmsnorm_by_width`): NAME.data (each key's arrays back to back, raveled), NAME.dims (per
  key and array: ndim, then the shape) and, for the three keyed by numbers, NAME.keys (one
  row per key; the few text or width keys of the other two are in `meta`);
- `gemm_grid` and `gemm_ratio_by_size`'s two arrays as they are;
- `meta`: the scalars (peaks, floors, rates) and which parts exist; the FP8 curves as the
  same again under the prefix `fp8.`;
- the table's all-reduce curves (core/collective.py: `meta["allreduce"]`, the measured GPU
  counts, and allreduce.G.x, allreduce.G.y), read by collective._table_curves.

`decode` gives them back as views of those arrays, the same values to the last bit and the
same key and scalar types as load.build_curves gives; the three large mappings are Lazy, a
key's views made when it is first priced (a deployment prices a few of 125 GEMM shapes).

The curves depend on the table and on its GPU's peaks (the roofline ratios): `decode` returns
None when the GPU's figures are not those the curves were built with (a hardware YAML edited
since), and the caller builds them. tests/test_optable_store.py rebuilds every shipped copy
and compares the decoded curves with built ones, field by field.
"""

from __future__ import annotations

import numpy as np

from perfmodel.core.collective import encode_allreduce
from perfmodel.core.optable.curves import Curves, Lazy
from perfmodel.core.optable.interpolate import Curve
from perfmodel.specs.hardware import HardwareSpec
from perfmodel.specs.optables import OpTable

LAZY = ("gemm", "attn_decode", "attn_prefill")  # sections decoded per key on first access
EAGER = ("eltwise", "rmsnorm_by_width")  # a handful of keys, text or float: keys in meta


def encode(cv: Curves) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, arrays) of `cv` (every attention configuration built)."""
    arrays: dict[str, np.ndarray] = {}
    meta = _encode(cv, "", arrays)
    meta["allreduce"], allreduce = encode_allreduce(cv.table)  # core/collective.py reads them
    arrays.update(allreduce)
    return meta, arrays


def _encode(cv: Curves, prefix: str, arrays: dict) -> dict:
    meta = {
        "flops": cv.flops,
        "bw": cv.bw,
        "w_bytes": cv.w_bytes,
        "gemm_floor_s": cv.gemm_floor_s,
        "stream_bw": cv.stream_bw,
        "gemm_grid": cv.gemm_grid is not None,
        "by_size": len(cv.gemm_ratio_by_size) > 0,
        "eltwise": list(cv.eltwise),
        "rmsnorm_by_width": list(cv.rmsnorm_by_width),
    }
    for exact, ratio in cv.gemm.values():
        if ratio.x is not exact.x:  # one x array per weight shape (sorted_curves_by_key)
            raise ValueError("GEMM curves of one shape with two x arrays")
    sections = {
        "gemm": {k: (e.x, e.y, r.y) for k, (e, r) in cv.gemm.items()},
        "attn_decode": {
            k: (lb, lc, t, r, by.x, by.y) for k, (lb, lc, t, r, by) in cv.attn_decode.items()
        },
        "attn_prefill": {k: (e.x, e.y, r.x, r.y) for k, (e, r) in cv.attn_prefill.items()},
        "eltwise": {k: (e.x, e.y, r.x, r.y) for k, (e, r) in cv.eltwise.items()},
        "rmsnorm_by_width": {k: (e.x, e.y, r.x, r.y) for k, (e, r) in cv.rmsnorm_by_width.items()},
    }
    for name, entries in sections.items():
        _put_section(arrays, prefix + name, entries, keyed=name in LAZY)
    if cv.gemm_grid is not None:
        arrays[prefix + "gemm_grid"] = cv.gemm_grid
    for i, a in enumerate(cv.gemm_ratio_by_size):
        arrays[f"{prefix}by_size.{i}"] = a
    meta["fp8"] = None if cv.fp8 is None else _encode(cv.fp8, prefix + "fp8.", arrays)
    for name, a in arrays.items():
        if a.dtype != np.float64:
            raise TypeError(f"curve array '{name}' of dtype {a.dtype}, not float64")
    return meta


def _put_section(arrays: dict, name: str, entries: dict, keyed: bool) -> None:
    parts = [a for values in entries.values() for a in values]
    width = len(next(iter(entries.values()))) if entries else 0
    dims = np.zeros((len(entries), width, 3))
    for i, values in enumerate(entries.values()):
        for j, a in enumerate(values):
            dims[i, j, : 1 + a.ndim] = (a.ndim, *a.shape)
    arrays[name + ".data"] = np.concatenate([a.ravel() for a in parts]) if parts else np.zeros(0)
    arrays[name + ".dims"] = dims
    if keyed:
        keys = [[float(c) for c in key] for key in entries]
        arrays[name + ".keys"] = np.array(keys) if keys else np.zeros((0, 1))


def decode(meta: dict, arrays: dict, table: OpTable, hw: HardwareSpec) -> Curves | None:
    """The Curves of `table` from encode's output; None when `hw`'s peaks are not those the
    curves were built with."""
    fp8 = meta["fp8"]
    if (
        meta["flops"] != hw.peak_flops(table.dtype)
        or meta["bw"] != hw.hbm_bandwidth
        or (fp8 is not None and (fp8["flops"] != hw.peak_flops("fp8") or fp8["bw"] != meta["bw"]))
    ):
        return None
    return _decode(meta, "", arrays, table)


def _decode(meta: dict, prefix: str, arrays: dict, table: OpTable) -> Curves:
    cv = Curves(
        table,
        meta["flops"],
        meta["bw"],
        w_bytes=meta["w_bytes"],
        gemm_floor_s=meta["gemm_floor_s"],
        stream_bw=meta["stream_bw"],
    )
    cv.gemm = _lazy(arrays, prefix + "gemm", lambda x, ey, ry: (Curve(x, ey), Curve(x, ry)))
    cv.attn_decode = _lazy(
        arrays, prefix + "attn_decode", lambda lb, lc, t, r, bx, by: (lb, lc, t, r, Curve(bx, by))
    )
    cv.attn_prefill = _lazy(arrays, prefix + "attn_prefill", _two_curves)
    for name in EAGER:
        entries = _entries(arrays, prefix + name)
        setattr(cv, name, {k: _two_curves(*entries(i)) for i, k in enumerate(meta[name])})
    if meta["gemm_grid"]:
        cv.gemm_grid = arrays[prefix + "gemm_grid"]
    if meta["by_size"]:
        cv.gemm_ratio_by_size = (arrays[prefix + "by_size.0"], arrays[prefix + "by_size.1"])
    if meta["fp8"] is not None:
        cv.fp8 = _decode(meta["fp8"], prefix + "fp8.", arrays, table)
    return cv


def _two_curves(ex, ey, rx, ry) -> tuple[Curve, Curve]:
    return Curve(ex, ey), Curve(rx, ry)


def _lazy(arrays: dict, name: str, make) -> Lazy:
    """The section as a Lazy mapping: a key's views made on first access. Keys are tuples of
    numpy float64 scalars, as build_curves makes them (rows of a float64 array)."""
    rows = arrays[name + ".keys"]
    # looked up by Python float tuples (equal to the float64 ones, same hashes); iterated
    # as tuples of np.float64, made when first iterated
    index = dict(zip(map(tuple, rows.tolist()), range(len(rows)), strict=True))
    entries = []  # _entries, made on the first key's access

    def build(key):
        if not entries:
            entries.append(_entries(arrays, name))
        return make(*entries[0](index[key]))

    return Lazy(index, build, lambda: list(zip(*rows.T, strict=True)))


def _entries(arrays: dict, name: str):
    """entries(i): the arrays of the section's i-th key, views of NAME.data."""
    data, dims = arrays[name + ".data"], arrays[name + ".dims"]
    ndim = dims[..., 0]
    size = np.where(ndim == 1, dims[..., 1], dims[..., 1] * dims[..., 2]).astype(np.int64)
    ends = np.cumsum(size.ravel()).reshape(size.shape)

    def entry(i: int) -> list[np.ndarray]:  # one key's shapes as Python ints, when asked
        out = []
        shapes = dims[i].astype(np.int64).tolist()
        for (nd, d0, d1), end in zip(shapes, ends[i].tolist(), strict=True):
            a = data[end - (d0 if nd == 1 else d0 * d1) : end]
            out.append(a if nd == 1 else a.reshape(d0, d1))
        return out

    return entry
