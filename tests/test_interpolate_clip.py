"""optable.interpolate without np.clip: monotone_interp and interp2d give what they gave
with np.clip (the reference below), equal as numbers and bit for bit after np.exp (every
caller exponentiates; only a zero's sign could differ, and exp(-0) = exp(0))."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from perfmodel.core.optable.interpolate import interp2d, monotone_interp


def _ref_lerp(a, b, f):
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    return np.where(f >= 1.0, b, np.clip(a + f * (b - a), lo, hi))


def _ref_cell(g, v):
    i = np.clip(np.searchsorted(g, v) - 1, 0, len(g) - 2)
    return i, np.clip((v - g[i]) / (g[i + 1] - g[i]), 0.0, 1.0)


def _ref_monotone(x, xs, ys):
    j, f = _ref_cell(xs, x)
    return _ref_lerp(ys[j], ys[j + 1], f)


def _ref_interp2d(lb, lc, grid, x, y):
    (i, fx), (j, fy) = _ref_cell(lb, x), _ref_cell(lc, y)
    j1, i1 = np.minimum(j + 1, len(lc) - 1), np.minimum(i + 1, len(lb) - 1)
    return (1 - fx) * _ref_lerp(grid[i, j], grid[i, j1], fy) + fx * _ref_lerp(
        grid[i1, j], grid[i1, j1], fy
    )


def _same(new, ref):
    assert np.array_equal(new, ref)
    assert np.exp(new).tobytes() == np.exp(ref).tobytes()


nodes = st.lists(st.floats(1.0, 20.0), min_size=2, max_size=8, unique=True).map(sorted)
# below, inside and beyond the nodes
points = st.lists(st.floats(0.0, 25.0), min_size=1, max_size=6).map(lambda p: [*p, 0.0, 30.0])


@settings(max_examples=40, deadline=None)
@given(xs=nodes, steps=st.lists(st.floats(0.0, 3.0), min_size=8, max_size=8), x=points)
def test_monotone_interp_is_the_clipped_one(xs, steps, x):
    xs = np.array(xs)
    ys = np.cumsum(steps[: len(xs)]) - 9.0
    for v in (np.array(x), np.float64(x[0])):
        _same(monotone_interp(v, xs, ys), _ref_monotone(v, xs, ys))
    for v in xs:  # exactly at the nodes
        _same(monotone_interp(np.float64(v), xs, ys), _ref_monotone(np.float64(v), xs, ys))


@settings(max_examples=30, deadline=None)
@given(lb=nodes, lc=nodes, seed=st.integers(0, 2**31), x=points, y=points)
def test_interp2d_is_the_clipped_one(lb, lc, seed, x, y):
    lb, lc = np.array(lb), np.array(lc)
    grid = np.random.default_rng(seed).normal(-8.0, 2.0, (len(lb), len(lc)))
    n = min(len(x), len(y))
    xv, yv = np.array(x[:n]), np.array(y[:n])
    _same(interp2d(lb, lc, grid, xv, yv), _ref_interp2d(lb, lc, grid, xv, yv))
    _same(
        interp2d(lb, lc, grid, np.float64(x[0]), np.float64(y[0])),
        _ref_interp2d(lb, lc, grid, np.float64(x[0]), np.float64(y[0])),
    )
