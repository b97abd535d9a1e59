"""Curve arithmetic of operator tables: sorted 1-D curves, bilinear grids and the blend of a
measured curve with its roofline ratio outside the measured range. Pure numpy."""

from __future__ import annotations

import numpy as np


class Curve:
    """y against x, x sorted: x a log natural variable, y log time (exact curve) or log ratio
    (ratio curve). Read-only by convention. A plain class with slots, not a frozen dataclass:
    defining one of those costs ~0.35 ms of every cold start, and making one 3x as long."""

    __slots__ = ("x", "y")

    def __init__(self, x: np.ndarray, y: np.ndarray):
        self.x, self.y = x, y

    def __repr__(self) -> str:
        return f"Curve(x={self.x!r}, y={self.y!r})"


def sorted_curve(x, y) -> Curve:
    """Sort by x, average y over duplicate x."""
    return sorted_curves(x, y)[0]


def sorted_curves(x, *ys) -> list[Curve]:
    """sorted_curve of several y against one x (the sort and the duplicates found once)."""
    xs, inv = np.unique(np.round(np.asarray(x, float), 9), return_inverse=True)
    count = np.bincount(inv)
    return [Curve(xs, np.bincount(inv, weights=y) / count) for y in ys]


def sorted_curves_by_key(k, n, x, *ys) -> dict[tuple, list[Curve]]:
    """sorted_curves(x[rows], *ys[rows]) of the rows of each (k, n) pair, keys in sorted
    order, found in one pass: one stable sort by (k, n, rounded x) and one bincount per y
    over those groups. Bit for bit the per-key sorted_curves: the same sorted unique x, and
    each group's y summed in table order (bincount adds in index order) over the same count."""
    k, n = np.asarray(k), np.asarray(n)
    rx = np.round(np.asarray(x, float), 9)
    order = np.lexsort((rx, n, k))
    ks, ns, xs = k[order], n[order], rx[order]
    new_key = np.r_[True, (np.diff(ks) != 0) | (np.diff(ns) != 0)]
    new_group = new_key | np.r_[True, np.diff(xs) != 0]
    inv = np.empty(len(order), np.intp)
    inv[order] = np.cumsum(new_group) - 1
    count = np.bincount(inv)
    means = [np.bincount(inv, weights=y) / count for y in ys]
    gx, gk, gn = xs[new_group], ks[new_group], ns[new_group]
    bounds = [*np.flatnonzero(new_key[new_group]), len(gx)]
    out = {}
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        key_x = gx[a:b].copy()  # one x array shared by the key's curves, as sorted_curves
        out[(gk[a], gn[a])] = [Curve(key_x, m[a:b].copy()) for m in means]
    return out


def sorted_rows(sizes: np.ndarray, rows: np.ndarray):
    """Average ratio rows of weight shapes with equal size (e.g. 4096x14336 vs 8192x7168)."""
    keys, inv = np.unique(np.round(sizes, 9), return_inverse=True)
    out = np.zeros((len(keys), rows.shape[1]))
    np.add.at(out, inv, rows)
    return keys, out / np.bincount(inv)[:, None]


def interp_rows(x: float, xs: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Every column of `rows` (one row per node xs) interpolated at one x: what
    [np.interp(x, xs, rows[:, j]) for each j] gives, bit for bit (numpy's arithmetic: held
    at the ends, the node's row at a node, else (y1 - y0) / (x1 - x0) * (x - x0) + y0), in
    one vectorized step instead of a Python loop over the columns."""
    x = float(x)
    if len(xs) == 1 or x <= xs[0]:
        return rows[0].astype(float)
    if x >= xs[-1]:
        return rows[-1].astype(float)
    j = int(np.searchsorted(xs, x, side="right")) - 1  # xs[j] <= x < xs[j + 1]
    if xs[j] == x:
        return rows[j].astype(float)
    slope = (rows[j + 1] - rows[j]) / (xs[j + 1] - xs[j])
    return slope * (x - xs[j]) + rows[j]


def grid2d(b, c, t, roof):
    """(log b axis, log c axis, log t grid, log ratio grid) of points measured on a batch x
    context grid; holes (points skipped for memory) filled along the context axis."""
    lb, lc = np.unique(np.log(b)), np.unique(np.log(c))
    logt = np.full((len(lb), len(lc)), np.nan)
    logr = np.full_like(logt, np.nan)
    ib, ic = np.searchsorted(lb, np.log(b)), np.searchsorted(lc, np.log(c))
    logt[ib, ic], logr[ib, ic] = np.log(t), np.log(t / roof)
    for a, slope in ((logt, 1.0), (logr, 0.0)):
        # past a batch's longest measured context the KV read keeps growing with it: t
        # proportional to the context (slope 1 in log-log), the ratio to the roofline held
        for i in range(len(lb)):
            ok = ~np.isnan(a[i])
            last = np.flatnonzero(ok)[-1]
            a[i] = np.interp(lc, lc[ok], a[i][ok])
            a[i, last + 1 :] += slope * (lc[last + 1 :] - lc[last])
    # a longer KV cache never reads faster: measurement noise (+-2% between neighbouring
    # contexts at the launch floor) is not passed on as a decode step that gets quicker
    np.maximum.accumulate(logt, axis=1, out=logt)
    np.maximum.accumulate(logt, axis=0, out=logt)  # nor does a larger batch
    return lb, lc, logt, logr


def lerp(a, b, f):
    """a + f (b - a), 0 <= f <= 1, held between a and b and exactly b at f = 1: for a <= b
    it never decreases as f grows, even by rounding (the usual (1 - f) a + f b can, by a few
    units in the last place where a = b, e.g. on a kernel's flat launch floor)."""
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    return np.where(f >= 1.0, b, _clip(a + f * (b - a), lo, hi))


def _clip(v, lo, hi):
    """np.clip(v, lo, hi) as a maximum then a minimum: the same values (NaN passed), in two
    ufunc calls instead of np.clip's Python wrapper (~3 us a call on a scalar, three times
    per attention kernel). Only a zero's sign may differ (np.clip keeps v = -0.0 at lo =
    0.0): every caller's result ends in np.exp (kernels.py), where exp(-0) = exp(0) = 1."""
    return np.minimum(np.maximum(v, lo), hi)


def _cell(g, v):
    """Index of the grid cell holding v (clamped to the grid) and the fraction across it."""
    if len(g) == 1:
        return np.zeros(np.shape(v), int), np.zeros(np.shape(v))
    i = _clip(g.searchsorted(v) - 1, 0, len(g) - 2)
    f = _clip((v - g[i]) / (g[i + 1] - g[i]), 0.0, 1.0)
    return i, f


def monotone_interp(x, xs, ys):
    """np.interp on a non-decreasing curve (clamped at the ends) that is non-decreasing in x
    by construction: lerp across each segment, exact at the nodes."""
    if len(xs) == 1:
        return np.full(np.shape(x), float(ys[0]))
    j, f = _cell(xs, x)
    return lerp(ys[j], ys[j + 1], f)


def max_of(a, b):
    """np.maximum(a, b) of two numbers (no NaN): the same choice, b when they are equal (a
    zero's sign included), without numpy's call on scalars."""
    return a if a > b else b


def min_of(a, b):
    """np.minimum(a, b) of two numbers (no NaN): the same choice, b when they are equal."""
    return a if a < b else b


def monotone_interp_one(x, xs: np.ndarray, ys: np.ndarray):
    """monotone_interp of one value (a float64 scalar): _cell's and lerp's operations in
    the same order on float64 scalars, max_of/min_of for np.maximum/np.minimum, without a
    0-d array per step (a search prices hundreds of single passes)."""
    if len(xs) == 1:
        return float(ys[0])
    j = min(max(int(xs.searchsorted(x)) - 1, 0), len(xs) - 2)  # integers: no zero's sign
    f = min_of(max_of((x - xs[j]) / (xs[j + 1] - xs[j]), 0.0), 1.0)
    a, b = ys[j], ys[j + 1]
    if f >= 1.0:
        return b
    return min_of(max_of(a + f * (b - a), min_of(a, b)), max_of(a, b))


def interp2d(lb, lc, grid, x, y):
    """Bilinear on a rectilinear grid, clamped at the edges (vectorized). Along the second
    axis (context) by lerp, between the two rows by (1 - fx) A + fx B: for a grid that never
    decreases along the second axis the result never decreases in y, even by rounding (each
    row is non-decreasing in y, and the combination is non-decreasing in each row)."""
    (i, fx), (j, fy) = _cell(lb, x), _cell(lc, y)
    j1 = np.minimum(j + 1, len(lc) - 1)
    i1 = np.minimum(i + 1, len(lb) - 1)
    return (1 - fx) * lerp(grid[i, j], grid[i, j1], fy) + fx * lerp(grid[i1, j], grid[i1, j1], fy)


def blend(inside, exact: Curve, ratio: Curve, x, roof) -> np.ndarray:
    """Measured curve inside its range. Above it, the edge ratio times the roofline (a
    clamped efficiency, not a clamped time: a GEMM with twice the tokens takes twice as
    long); below it, the smallest measured time (a kernel's launch floor)."""
    t = np.exp(np.interp(x, exact.x, exact.y))
    if np.all(inside):
        return t
    above = np.exp(np.interp(x, ratio.x, ratio.y)) * roof
    return np.where(inside | (x < exact.x[0]), t, above)
