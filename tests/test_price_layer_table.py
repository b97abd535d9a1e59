"""optable.price: one tabulation of the token kernels per model serves every layer count
(pipeline stage); its lookups are bit for bit those of the table of L x the kernel times
built directly (the running maximum of the L-layer times, value and slope per node)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from perfmodel.core.deployment import make_deployment
from perfmodel.core.optable import price
from perfmodel.core.optable.kernels import kernel_pricing

DEP = make_deployment("405b", "h100", 8, profile="torch-cudagraph-h100")
KP = kernel_pricing(DEP.optable, DEP.gpu)


def _direct_table(dep, tp):
    """The table as built before the shared tabulation: L-layer times on the grid."""
    x = np.exp(price.GRID)
    tab = {}
    for name, fn in price._token_kernels(KP, dep, tp).items():
        t = np.maximum.accumulate(fn(x).time_s)
        tab[name] = (t[:-1], np.diff(t))
    return tab


@settings(max_examples=15, deadline=None)
@given(
    layers=st.integers(1, 126),
    tp=st.sampled_from([1.0, 2.0, 8.0]),
    tokens=st.lists(st.floats(0.5, 5e6), min_size=1, max_size=6),
)
def test_shared_table_is_bitwise_the_direct_one(layers, tp, tokens):
    dep = replace(DEP, model=replace(DEP.model, num_layers=layers))
    shared = price._tabulated(KP, dep, tp)
    direct = _direct_table(dep, tp)
    assert shared.keys() == direct.keys() and {"qkv_proj", "lm_head", "norms"} <= set(direct)
    i, f = price._nodes(np.array(tokens))
    for name, (value, slope) in direct.items():
        assert np.array_equal(price._lookup(shared[name], (i, f)), value[i] + f * slope[i])


def test_one_tabulation_serves_every_layer_count():
    price._CACHE.clear()
    for layers in (126, 63, 42, 32, 1):
        price._tabulated(KP, replace(DEP, model=replace(DEP.model, num_layers=layers)), 8.0)
    assert len(price._CACHE) == 1


TRANSFERRED = make_deployment("8b", "h100-pcie", 2)  # the H100 SXM table, transferred
FP8 = make_deployment("70b", "h200", 8, weight_dtype="fp8")  # the table's FP8 GEMM rows
INT4 = make_deployment("70b", "a100-40gb", 4, weight_dtype="int4")  # transferred, BF16 peak


@settings(max_examples=10, deadline=None)
@given(
    dep=st.sampled_from([DEP, TRANSFERRED, FP8, INT4]),
    tp=st.sampled_from([1.0, 8.0]),
    reach=st.lists(st.integers(1, len(price.GRID)), min_size=1, max_size=5),
)
def test_running_max_in_chunks_is_the_whole_running_max(dep, tp, reach):
    """A tabulation evaluated chunk by chunk, as far as lookups reach (each chunk reading
    the grid's log tokens and 2 x tokens worked out once), is bit for bit the running
    maximum of the kernel over the whole grid (evaluated from the tokens alone), node for
    node."""
    x = np.exp(price.GRID)
    assert price.GRID_TOKENS.tobytes() == x.tobytes()
    kp = kernel_pricing(dep.optable, dep.gpu).quiet()
    transfer = dep in (TRANSFERRED, INT4)
    assert type(kp).__name__ == ("TransferredPricing" if transfer else "KernelPricing")
    for name, (fn, _) in price._layer_kernels(kp, dep, tp).items():
        whole = np.maximum.accumulate(fn(x).time_s)
        chunked = price.RunningMax(fn)
        for n in reach:
            done = chunked.upto(n)
            assert done[:n].tobytes() == whole[:n].tobytes(), (name, n)
        assert chunked.upto(len(x)).tobytes() == whole.tobytes(), name
