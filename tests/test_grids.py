"""planners.grids.sorted_unique is np.unique (values, dtype) for arrays without NaN."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from perfmodel.planners.grids import sorted_unique

_floats = st.floats(allow_nan=False, min_value=-1e6, max_value=1e6) | st.just(np.inf)


@settings(max_examples=60, deadline=None)
@given(
    a=arrays(np.float64, st.tuples(st.integers(0, 12), st.integers(1, 3)), elements=_floats)
    | arrays(np.int64, st.integers(0, 30), elements=st.integers(-5, 5))
)
def test_sorted_unique_is_np_unique(a):
    got, want = sorted_unique(a), np.unique(a)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_sorted_unique_of_a_grid_with_repeats():
    assert sorted_unique([3.0, 1.0, 3.0, np.inf, 1.0, np.inf]).tolist() == [1.0, 3.0, np.inf]
