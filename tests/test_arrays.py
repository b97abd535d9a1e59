"""core.arrays.sorted_unique is np.unique (values and inverse) bit for bit, for the core's
and the planners' arrays, and the recommend path never imports numpy.ma (which np.unique
would)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from perfmodel.core.arrays import sorted_unique, zeros_like

# no NaN, no -0.0 (np.unique may keep either zero of an array holding both)
finite = st.floats(-1e12, 1e12, allow_nan=False).map(lambda v: v + 0.0) | st.sampled_from(
    [0.0, 1.5, 2.0]
)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.integers(0, 40), elements=finite))
def test_sorted_unique_is_np_unique(a):
    values, inverse = np.unique(a, return_inverse=True)
    ours, our_inverse = sorted_unique(a, return_inverse=True)
    assert ours.tobytes() == values.tobytes() and ours.dtype == values.dtype
    assert np.array_equal(our_inverse, inverse)
    assert sorted_unique(a).tobytes() == values.tobytes()


_floats = st.floats(allow_nan=False, min_value=-1e6, max_value=1e6) | st.just(np.inf)


@settings(max_examples=60, deadline=None)
@given(
    a=arrays(np.float64, st.tuples(st.integers(0, 12), st.integers(1, 3)), elements=_floats)
    | arrays(np.int64, st.integers(0, 30), elements=st.integers(-5, 5))
)
def test_sorted_unique_of_a_planner_grid_is_np_unique(a):
    """2-D and integer grids too (the planners' search grids), dtype kept."""
    got, want = sorted_unique(a), np.unique(a)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_sorted_unique_of_a_grid_with_repeats():
    assert sorted_unique([3.0, 1.0, 3.0, np.inf, 1.0, np.inf]).tolist() == [1.0, 3.0, np.inf]


def test_integer_grid():
    a = np.round(np.geomspace(1, 4096, 50)).astype(int)
    assert np.array_equal(sorted_unique(a), np.unique(a))
    assert sorted_unique(a).dtype == np.unique(a).dtype


def test_recommend_does_not_import_numpy_ma():
    code = (
        "import sys, io, contextlib\n"
        "from perfmodel.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['recommend', '--model', '405b', '--bsz', '64'])\n"
        "print('numpy.ma' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_zeros_like_keeps_arrays_and_gives_scalars_a_scalar_zero():
    a = np.array([[1.5, 2.0]])
    assert zeros_like(a).shape == (1, 2) and not zeros_like(a).any()
    assert type(zeros_like(np.float64(3.0))) is np.float64 and zeros_like(3.0) == 0.0
    assert np.signbit(zeros_like(np.float64(-1.0))) == np.signbit(np.zeros_like(np.array(-1.0)))
