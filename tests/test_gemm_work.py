"""optable.transfer.gemm_work: a GEMM's work worked out once gives each roofline bit for bit
what gemm_roofline gives, and a kernel priced with it (or with the grid's log tokens and
2 x tokens) is priced bit for bit as without it."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from perfmodel.core.deployment import make_deployment
from perfmodel.core.optable import price
from perfmodel.core.optable.kernels import kernel_pricing
from perfmodel.core.optable.transfer import gemm_roofline, gemm_work, work_roofline

size = st.floats(1.0, 1e6)


@settings(max_examples=40, deadline=None)
@given(
    m=st.lists(st.floats(0.0, 1e8), min_size=1, max_size=8),
    k=size,
    n=size,
    w_bytes=st.sampled_from([0.5, 1.0, 2.0]),
    flops=st.floats(1e12, 1e16),
    bw=st.floats(1e11, 1e13),
)
def test_work_roofline_is_gemm_roofline(m, k, n, w_bytes, flops, bw):
    m = np.array(m)
    work = gemm_work(m, k, n, w_bytes)
    assert (
        work_roofline(work, flops, bw).tobytes()
        == gemm_roofline(m, k, n, w_bytes, flops, bw).tobytes()
    )
    assert work.log_m.tobytes() == np.log(np.maximum(m, 1.0)).tobytes()
    assert work.flop.tobytes() == (2.0 * m * k * n).tobytes()


def test_grid_work_is_the_slices_work():
    """The grid's log tokens and 2 x tokens, sliced, are what each slice would compute."""
    for start, stop in ((0, 1024), (1024, 2621), (2621, len(price.GRID)), (17, 18)):
        x = price.GRID_TOKENS[start:stop]
        grid = price._work(x, start, 16384.0, 53248 / 8, 2.0)
        direct = gemm_work(x, 16384.0, 53248 / 8, 2.0)
        for a, b in zip(grid, direct, strict=True):
            assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


@settings(max_examples=10, deadline=None)
@given(
    gpu=st.sampled_from(["h100", "h100-pcie", "a100-40gb", "h200"]),
    dtype=st.sampled_from(["bf16", "fp8", "int4"]),
    shape=st.sampled_from([(4096.0, 6144.0), (8192.0, 1280.0), (16384.0, 13312.0)]),
)
def test_gemm_with_work_is_gemm(gpu, dtype, shape):
    dep = make_deployment("70b", gpu, 8, weight_dtype=dtype)
    kp = kernel_pricing(dep.optable, dep.gpu)
    m = np.exp(np.linspace(0.0, 14.0, 300))
    k, n = shape
    plain = kp.gemm("g", m, k, n, dep.w_bytes, dep.compute_dtype)
    given_work = kp.gemm(
        "g", m, k, n, dep.w_bytes, dep.compute_dtype, gemm_work(m, k, n, dep.w_bytes)
    )
    assert plain.time_s.tobytes() == given_work.time_s.tobytes()
    assert plain.notices == given_work.notices
