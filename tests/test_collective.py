"""TP all-reduce: measured tables per GPU, GPU count and message size; host-staged on
GeForce cards (no peer-to-peer); analytical ring otherwise (core/collective.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfmodel.core.collective import (
    allreduce_basis,
    allreduce_curves,
    allreduce_seconds,
    measured_allreduce,
)
from perfmodel.specs.hardware import resolve_gpu
from perfmodel.specs.optables import load_optable

H100 = allreduce_curves(load_optable("h100-sxm__vllm-0.24.0"))
L40S = allreduce_curves(load_optable("l40s__vllm-0.24.0"))


def test_measured_points_are_the_tables_values():
    """aiconfigurator-core 0.12.0, h100_sxm comm/vllm/0.24.0 custom_allreduce_perf,
    vllm_graph: 8 GPUs, 1048576 bf16 elements -> 0.0193898 ms; 2 GPUs, 128 -> 0.0042915 ms."""
    assert measured_allreduce(H100, 8, 2 * 1048576) == pytest.approx(0.01938976e-3, rel=1e-6)
    assert measured_allreduce(H100, 2, 256) == pytest.approx(0.00429152e-3, rel=1e-5)


@settings(max_examples=40, deadline=None)
@given(g=st.sampled_from([2, 4, 8]), s=st.floats(64, 4e9), f=st.floats(1.01, 10))
def test_measured_never_faster_for_a_larger_message(g, s, f):
    """Monotone in the message size once past the latency floor; beyond the largest measured
    message the edge bandwidth is held (time grows in proportion)."""
    a, b = measured_allreduce(H100, g, s), measured_allreduce(H100, g, s * f)
    assert b >= a * 0.97  # the measured curve itself has +-3% wiggles at the floor
    big = 2 * 536870912
    assert measured_allreduce(H100, g, 2 * big) == pytest.approx(
        2 * measured_allreduce(H100, g, big), rel=1e-9
    )


def test_which_gpus_a_table_prices():
    h100, h200, pcie = resolve_gpu("h100"), resolve_gpu("h200"), resolve_gpu("h100-pcie")
    assert allreduce_basis(H100, h100).kind == "measured"
    # same NVLink 4 (900 GB/s) on H200: the H100 table transfers and says so
    b = allreduce_basis(H100, h200)
    assert b.kind == "measured" and "transferred from h100-sxm (same link)" in b.label
    # PCIe H100: another link, no table: analytical ring
    assert allreduce_basis(H100, pcie).kind == "link"
    assert "analytical" in allreduce_basis(H100, pcie).label


def test_rtx4090_tp8_allreduce_is_priced_through_host_memory_without_nvlink():
    """GeForce: no NVLink, no peer-to-peer (driver). Ring through host memory, hand-checked
    at 2 GPUs, 1 MiB, PCIe 4.0 x16 32 GB/s per direction, comm efficiency 0.8, measured step
    latency 3.04 us: t = 2 * 3.04 us + 2 * (2 * 1/2 * 1048576 B) / (25.6e9 B/s) = 88.0 us
    (the L40S, same PCIe with P2P, measured 60.2 us: the floor does not bind). At 8 GPUs the
    formula gives 14 * 3.04 + 2 * (2 * 7/8 * 1048576) / 25.6e9 = 185.9 us, but the L40S's
    measured 8-GPU all-reduce takes 582.6 us (busbw ~2 GB/s across its PCIe box): P2P only
    helps, so the 4090 takes at least that."""
    rtx = resolve_gpu("rtx4090")
    assert rtx.link_kind == "PCIe" and not rtx.peer_to_peer
    basis = allreduce_basis(L40S, rtx)
    assert basis.kind == "host-staged"
    assert "no peer-to-peer" in basis.label and "never faster than measured on l40s" in basis.label
    two = allreduce_seconds(basis, rtx, 2, np.array([1048576.0]), 0.8, 21e-6)[0]
    assert two == pytest.approx(6.08e-6 + 81.92e-6, rel=1e-4)
    eight = allreduce_seconds(basis, rtx, 8, np.array([1048576.0]), 0.8, 21e-6)[0]
    assert eight == pytest.approx(582.648e-6, rel=1e-4)
    assert eight > 185.9e-6
    # without a family table: the formula alone
    bare = allreduce_basis(None, rtx)
    assert bare.kind == "host-staged" and bare.curves is None
    alone = allreduce_seconds(bare, rtx, 8, np.array([1048576.0]), 0.8, 21e-6)[0]
    assert alone == pytest.approx(42.56e-6 + 143.36e-6, rel=1e-4)
    # an H100 (NVLink 4, measured) is far faster
    h100 = resolve_gpu("h100")
    assert (
        allreduce_seconds(allreduce_basis(H100, h100), h100, 8, [1048576.0], 0.8, 0)[0] < eight / 5
    )


def test_one_gpu_has_no_allreduce():
    h100 = resolve_gpu("h100")
    assert allreduce_seconds(allreduce_basis(H100, h100), h100, 1, [1e6], 0.8, 1e-5)[0] == 0.0
