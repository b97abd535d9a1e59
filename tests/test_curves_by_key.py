"""interpolate.sorted_curves_by_key: the curves of every (k, n) key in one pass are bit for
bit sorted_curves of each key's rows (duplicated x averaged in table order), keys sorted."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from perfmodel.core.optable.interpolate import sorted_curves, sorted_curves_by_key

rows = st.lists(
    st.tuples(
        st.sampled_from([1.0, 4096.0, 8192.0]),  # k
        st.sampled_from([2.0, 1024.0]),  # n
        st.integers(0, 6),  # x: few values, so duplicates are common
        st.floats(-30.0, 30.0),  # y1
        st.floats(-5.0, 5.0),  # y2
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(rows)
def test_one_pass_equals_per_key_sorted_curves(table):
    k, n, x, y1, y2 = (np.array(c, float) for c in zip(*table, strict=True))
    x = np.log1p(x) / 3.0  # not round numbers: the 9-digit rounding decides duplicates
    got = sorted_curves_by_key(k, n, x, y1, y2)
    keys = sorted({(a, b) for a, b in zip(k, n, strict=True)})
    assert list(got) == keys
    for a, b in keys:
        sel = np.flatnonzero((k == a) & (n == b))  # the key's rows in table order
        want = sorted_curves(x[sel], y1[sel], y2[sel])
        for g, w in zip(got[(a, b)], want, strict=True):
            assert g.x.tobytes() == w.x.tobytes() and g.y.tobytes() == w.y.tobytes()


def test_duplicates_are_averaged():
    (exact,) = sorted_curves_by_key([1, 1, 1], [2, 2, 2], [0.5, 0.1, 0.5], [1.0, 7.0, 2.0])[(1, 2)]
    assert exact.x.tolist() == [0.1, 0.5] and exact.y.tolist() == [7.0, 1.5]
