"""Curve arithmetic of operator tables: sorted 1-D curves, bilinear grids and the blend of a
measured curve with its roofline ratio outside the measured range. Pure numpy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Curve:
    x: np.ndarray  # sorted log natural variable
    y: np.ndarray  # log time (exact curve) or log ratio (ratio curve)


def sorted_curve(x, y) -> Curve:
    """Sort by x, average y over duplicate x."""
    return sorted_curves(x, y)[0]


def sorted_curves(x, *ys) -> list[Curve]:
    """sorted_curve of several y against one x (the sort and the duplicates found once)."""
    xs, inv = np.unique(np.round(np.asarray(x, float), 9), return_inverse=True)
    count = np.bincount(inv)
    return [Curve(xs, np.bincount(inv, weights=y) / count) for y in ys]


def sorted_rows(sizes: np.ndarray, rows: np.ndarray):
    """Average ratio rows of weight shapes with equal size (e.g. 4096x14336 vs 8192x7168)."""
    keys, inv = np.unique(np.round(sizes, 9), return_inverse=True)
    out = np.zeros((len(keys), rows.shape[1]))
    np.add.at(out, inv, rows)
    return keys, out / np.bincount(inv)[:, None]


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


def interp2d(lb, lc, grid, x, y):
    """Bilinear on a rectilinear grid, clamped at the edges (vectorized)."""

    def axis(g, v):
        if len(g) == 1:
            return np.zeros(np.shape(v), int), np.zeros(np.shape(v))
        i = np.clip(np.searchsorted(g, v) - 1, 0, len(g) - 2)
        f = np.clip((v - g[i]) / (g[i + 1] - g[i]), 0.0, 1.0)
        return i, f

    (i, fx), (j, fy) = axis(lb, x), axis(lc, y)
    j1 = np.minimum(j + 1, len(lc) - 1)
    i1 = np.minimum(i + 1, len(lb) - 1)
    return (1 - fx) * ((1 - fy) * grid[i, j] + fy * grid[i, j1]) + fx * (
        (1 - fy) * grid[i1, j] + fy * grid[i1, j1]
    )


def blend(inside, exact: Curve, ratio: Curve, x, roof) -> np.ndarray:
    """Measured curve inside its range. Above it, the edge ratio times the roofline (a
    clamped efficiency, not a clamped time: a GEMM with twice the tokens takes twice as
    long); below it, the smallest measured time (a kernel's launch floor)."""
    t = np.exp(np.interp(x, exact.x, exact.y))
    if np.all(inside):
        return t
    above = np.exp(np.interp(x, ratio.x, ratio.y)) * roof
    return np.where(inside | (x < exact.x[0]), t, above)
