"""Building an operator table's curves: the faster grouping gives what the plain numpy
calls give, bit for bit, and attention curves are built only for the configurations priced."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from perfmodel.core.optable import load
from perfmodel.core.optable.interpolate import sorted_curve, sorted_curves
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
