"""Building an operator table's curves: the faster grouping gives what the plain numpy
calls give, bit for bit, and attention curves are built only for the configurations priced.
Decode attention never gets faster with a longer context, by construction (rounding
included), and stays the measured ratio x roofline rule."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfmodel.core.optable import load
from perfmodel.core.optable.interpolate import (
    interp2d,
    interp_rows,
    monotone_interp,
    sorted_curve,
    sorted_curves,
)
from perfmodel.core.optable.kernels import kernel_pricing
from perfmodel.core.optable.transfer import decode_roofline
from perfmodel.specs.hardware import resolve_gpu
from perfmodel.specs.optables import OpTable

small = st.sampled_from([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 128.0])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(small, small, small), min_size=0, max_size=30))
def test_unique_rows_is_numpy_unique_by_rows(rows):
    a = np.array(rows, float).reshape(-1, 3)
    want = np.unique(a, axis=0)
    got = load._unique_rows(a)
    assert got.dtype == want.dtype and np.array_equal(got, want)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(small, st.floats(-5, 5, allow_nan=False), st.floats(-5, 5, allow_nan=False)),
        min_size=1,
        max_size=20,
    )
)
def test_sorted_curves_share_one_sort(points):
    x, y1, y2 = (np.array(c) for c in zip(*points, strict=True))
    for got, y in zip(sorted_curves(np.log(x), y1, y2), (y1, y2), strict=True):
        want = sorted_curve(np.log(x), y)
        assert got.x.tobytes() == want.x.tobytes() and got.y.tobytes() == want.y.tobytes()


def test_attention_curves_are_built_when_first_priced():
    built = []
    lazy = load.Lazy([(2.0, 1.0, 4.0), (1.0, 1.0, 4.0)], lambda key: built.append(key) or key[0])
    assert list(lazy) == [(2.0, 1.0, 4.0), (1.0, 1.0, 4.0)] and len(lazy) == 2
    assert (1.0, 1.0, 4.0) in lazy and (3.0, 1.0, 4.0) not in lazy and built == []
    assert lazy[(1.0, 1.0, 4.0)] == 1.0 and lazy[(1, 1, 4)] == 1.0  # int keys hash alike
    assert built == [(1.0, 1.0, 4.0)]  # once
    try:
        lazy[(3.0, 1.0, 4.0)]
    except KeyError:
        pass
    else:
        raise AssertionError("an unmeasured configuration has no curves")


def test_shapes_whose_differences_cancel_stay_apart():
    """4096x8192 then 8192x4096 in sorted order: K grows by what N shrinks by."""
    m = np.array([1.0, 64.0, 1.0, 64.0, 16.0])
    k = np.array([4096.0, 4096.0, 8192.0, 8192.0, 4096.0])
    n = np.array([8192.0, 8192.0, 4096.0, 4096.0, 8192.0])
    t = np.array([10.0, 20.0, 11.0, 22.0, 15.0]) * 1e-6
    nan = np.full(5, np.nan)
    values = {c: nan for c in ("batch", "ctx", "heads", "kv_heads", "head_dim", "bytes")}
    values.update(m=m, k=k, n=n, time_s=t, flops=2 * m * k * n)
    table = OpTable("h100-sxm", "test", "t.csv", np.full(5, "gemm"), np.full(5, ""), values)
    cv = load.Curves(table, 989e12, 3.35e12)
    load._fill_gemm(cv, np.arange(5), 2.0)
    assert list(cv.gemm) == [(4096.0, 8192.0), (8192.0, 4096.0)]
    exact = cv.gemm[(4096.0, 8192.0)][0]
    assert np.allclose(np.exp(exact.x), [1.0, 16.0, 64.0])
    assert np.allclose(np.exp(exact.y), [10e-6, 15e-6, 20e-6])


def test_a_table_keeps_every_gemm_shape_apart():
    """One (K, N) curve per measured weight shape, with the rows of that shape only."""
    cv = load.table_curves("h100-sxm__vllm-0.24.0")
    v = cv.table.values
    g = cv.table.rows("gemm")
    bf16 = g[cv.table.dtypes[g] != "fp8"]
    shapes = {(a, b) for a, b in zip(v["k"][bf16], v["n"][bf16], strict=True)}
    assert set(cv.gemm) == shapes
    for (k, n), (exact, _) in list(cv.gemm.items())[:20]:
        m = v["m"][bf16][(v["k"][bf16] == k) & (v["n"][bf16] == n)]
        assert np.array_equal(exact.x, np.unique(np.round(np.log(m), 9)))


# ---- decode attention: non-decreasing in the context by construction, rounding included ----
levels = st.sampled_from([-11.5, -11.5, -11.2, -9.0, -4.0, 0.5])  # repeats: flat regions


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(levels, min_size=4, max_size=4), min_size=3, max_size=3),
    st.floats(0.0, 3.0),
    st.floats(-0.5, 3.5),
    st.floats(0.0, 1.0),
)
def test_bilinear_never_decreases_along_the_context(rows, x, y, dy):
    """A grid non-decreasing along the context axis (as grid2d builds it) interpolates to a
    value that never decreases in the context, not even in the last bit."""
    grid = np.maximum.accumulate(np.array(rows), axis=1)
    lb, lc = np.array([0.0, 1.0, 3.0]), np.array([0.0, 0.7, 2.0, 3.0])
    lo, hi = interp2d(lb, lc, grid, x, y), interp2d(lb, lc, grid, x, y + dy)
    assert hi >= lo
    assert interp2d(lb, lc, grid, 1.0, 2.0) == grid[1, 2]  # exact at the nodes


@settings(max_examples=60, deadline=None)
@given(st.lists(levels, min_size=2, max_size=6), st.floats(-1, 7), st.floats(0, 2))
def test_monotone_interp_never_decreases(ys, x, dx):
    xs = np.arange(len(ys), dtype=float) * 1.3
    ys = np.maximum.accumulate(np.array(ys))
    assert monotone_interp(x + dx, xs, ys) >= monotone_interp(x, xs, ys)
    assert np.array_equal(monotone_interp(xs, xs, ys), ys)  # exact at the nodes
    assert monotone_interp(x, xs, ys) == pytest.approx(np.interp(x, xs, ys), rel=1e-12, abs=1e-12)


def _pricing(table="h100-sxm__vllm-0.24.0", gpu="h100"):
    cv = load.table_curves(table)
    return kernel_pricing(cv, resolve_gpu(gpu))


def test_decode_by_bytes_is_the_ratio_times_the_roofline():
    """The measured time/roofline ratio at the same KV bytes times the new roofline (the rule
    in kernels.py), priced as log t plus log(rho_new / rho_measured): equal to the ratio form
    wherever the measured curve needed no monotone correction."""
    kp = _pricing()
    cfg = (8.0, 1.0, 128.0)  # 70B at TP8: a measured configuration, its curve monotone as is
    curve = kp.curves.attn_decode[cfg][4]
    v, idx = kp.curves.table.values, kp.curves.table.rows("attn_decode")
    sel = idx[(v["heads"][idx] == 8) & (v["kv_heads"][idx] == 1) & (v["head_dim"][idx] == 128)]
    b, c, t = v["batch"][sel], v["ctx"][sel], v["time_s"][sel]
    roof = decode_roofline(b, c, 8, 1, 128, kp.curves.flops, kp.curves.bw)
    ratio = sorted_curve(np.log(4.0 * b * c * 128), np.log(t / roof))
    assert np.all(np.diff(np.log(4.0 * b * c * 128)[np.argsort(b * c)]) >= 0)
    bb = np.array([1.0, 3.0, 17.0, 64.0, 200.0, 4096.0])
    cc = np.array([3.0, 100.0, 5000.0, 7.0, 70000.0, 300000.0])
    for h, kv, e in ((16.0, 2.0, 2.0), (8.0, 1.0, 1.0), (6.0, 1.0, 2.0)):  # other cfg, fp8 KV
        new = kp._decode_by_bytes(curve, cfg, bb, cc, h, kv, 128.0, e, 0.0)
        r_new = decode_roofline(
            bb, cc, h, kv, 128.0, kp.hw.peak_flops("bf16"), kp.hw.hbm_bandwidth, e
        )
        kv_read = np.log(2.0 * bb * cc * kv * 128.0 * e)
        old = np.exp(np.interp(kv_read, ratio.x, ratio.y)) * r_new
        # the curves' nodes sit at log bytes rounded to 1e-9 (sorted_curve): on the log t
        # curve (slope ~1 where bandwidth-bound) that is a 1e-9 relative shift, on the ratio
        # curve (flat) none
        np.testing.assert_allclose(new, old, rtol=1e-9)


@pytest.mark.parametrize(
    "h,kv,kv_bytes,gpu",
    [
        (8.0, 1.0, 2.0, "h100"),
        (16.0, 2.0, 1.0, "h100"),
        (6.0, 1.0, 2.0, "h100"),
        (8.0, 1.0, 2.0, "h100-pcie"),  # transferred from the SXM table
    ],
)
def test_decode_attention_never_decreases_in_the_context(h, kv, kv_bytes, gpu):
    """Measured grid and beyond it (the edge ratio held), an unmeasured configuration, FP8 KV
    and another GPU of the family: a dense sweep of contexts at several batches, across the
    grid's edges (2,048 sequences, 131,072 tokens), never decreases, not even in the last
    bit."""
    kp = _pricing(gpu=gpu)
    c = np.unique(np.round(np.geomspace(1, 2_000_000, 3000)))
    for b in (1.0, 3.0, 64.0, 2048.0, 8192.0):
        t = kp.attn_decode(np.full_like(c, b), c, h, kv, 128.0, kv_bytes).time_s
        assert np.all(np.diff(t) >= 0), (b, c[np.flatnonzero(np.diff(t) < 0)[:3]])


def test_decode_by_bytes_is_exact_at_measured_points():
    """Same configuration and GPU: at a measured KV size the curve's (averaged, monotone)
    measured time, to the last bits of exp(log t)."""
    kp = _pricing()
    cfg = (8.0, 1.0, 128.0)
    curve = kp.curves.attn_decode[cfg][4]
    by = np.exp(curve.x)
    b = np.ones_like(by)
    c = by / (2.0 * 1.0 * 128.0 * 2.0)
    t = kp._decode_by_bytes(curve, cfg, b, c, 8.0, 1.0, 128.0, 2.0, 0.0)
    np.testing.assert_allclose(t, np.exp(curve.y), rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-3, 3, allow_nan=False), min_size=1, max_size=5, unique=True),
    st.floats(-4, 4, allow_nan=False),
    st.integers(0, 2**32 - 1),
    st.booleans(),
)
def test_interp_rows_is_numpy_interp_per_column(xs, x, seed, at_node):
    """Bit for bit what np.interp gives column by column (ends, nodes, between)."""
    xs = np.sort(np.array(xs))
    rows = np.random.default_rng(seed).normal(size=(len(xs), 7))
    if at_node:
        x = float(xs[seed % len(xs)])
    want = np.array([np.interp(x, xs, rows[:, j]) for j in range(rows.shape[1])])
    assert interp_rows(np.float64(x), xs, rows).tobytes() == want.tobytes()
