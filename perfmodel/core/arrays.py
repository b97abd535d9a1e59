"""Small numpy helpers of the cold path.

- sorted_unique: NumPy 2's np.unique asks np.ma.is_masked of its input, which imports
  numpy.ma (~7-15 ms of a cold `recommend`) the first time any code calls it. The same
  sorted distinct values (and inverse indices), without numpy.ma: the one helper of the core
  (all-reduce curves, TP groups) and the planners (their search grids).
- zeros_like: zeros of an array's shape, or a float64 zero for a scalar (a pass of one
  shape runs on float64 scalars, ops.make_shape); np.zeros_like would make a 0-d array.
"""

from __future__ import annotations

import numpy as np


def sorted_unique(values, return_inverse: bool = False):
    """np.unique(values) of an array without NaNs, flattened: its sorted distinct values
    and, with return_inverse, the index of each input value among them, as np.unique's
    sorting path computes them. (Where the input holds both 0.0 and -0.0, np.unique may
    keep either zero; no caller's values hold -0.0.)"""
    flat = np.asarray(values).ravel()
    if return_inverse:
        perm = flat.argsort(kind="quicksort")
        ordered = flat[perm]
    else:
        ordered = np.sort(flat)
    first = np.empty(ordered.shape, dtype=bool)
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    distinct = ordered[first]
    if not return_inverse:
        return distinct
    inverse = np.empty(first.shape, dtype=np.intp)
    inverse[perm] = np.cumsum(first) - 1
    return distinct, inverse


SCALAR_ZERO = np.float64(0.0)


def zeros_like(x):
    """np.zeros_like(x) for an array; a float64 scalar zero (the same value) otherwise."""
    return np.zeros_like(x) if isinstance(x, np.ndarray) else SCALAR_ZERO
