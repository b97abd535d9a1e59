"""Fast paths of the deployment search's cold path, each against the general code it
stands for: Deployment.derived against dataclasses.replace, make_shape's scalar path and
the operator table's scalar node lookup against their array paths, and by_identity's
one-argument memo (a hit only for the very object)."""

from __future__ import annotations

from dataclasses import fields, replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from perfmodel.core.deployment import Deployment, make_deployment
from perfmodel.core.identity_memo import by_identity
from perfmodel.core.ops import make_shape
from perfmodel.core.optable.price import _nodes


def test_derived_is_replace_field_by_field():
    dep = make_deployment("405b", "h100", 16, 8, "fp8", "fp8", mode="roofline", pp=2)
    small = make_deployment("8b", "h100", 1, 1).model
    for changes in (
        {},
        {"num_gpus": 32, "tp": 4, "pp": 8, "ep": 1},
        {"model": small, "pp": 1},
    ):
        got, want = dep.derived(**changes), replace(dep, **changes)
        assert got == want
        for f in fields(Deployment):  # optable is not compared by ==: check every field
            assert getattr(got, f.name) is getattr(want, f.name), f.name
    # derived() passes every field by hand: a new field must be added there too
    assert [f.name for f in fields(Deployment)] == [
        "model", "gpu", "profile", "num_gpus", "tp", "weight_dtype", "kv_dtype", "mode",
        "pp", "ep", "allow_cross_node_tp", "optable",
    ]  # fmt: skip


number = st.one_of(
    st.integers(0, 10**6),
    st.floats(0, 1e9, allow_nan=False),
    st.just(np.inf),
    st.floats(0, 1e6).map(np.float64),
    st.integers(0, 64).map(np.int64),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(number, min_size=7, max_size=7))
def test_make_shape_scalar_path_is_the_array_path(values):
    fast = make_shape(*values)
    general = [np.asarray(x, dtype=float)[()] for x in values]
    for a, b in zip(fast, general, strict=True):
        assert type(a) is np.float64 and a.tobytes() == b.tobytes()


@settings(max_examples=100, deadline=None)
@given(st.floats(0, 1e12, allow_nan=False) | st.floats(0, 1e12).map(np.float64))
def test_node_lookup_of_one_value_is_the_array_path(x):
    i, f = _nodes(x)
    ia, fa = _nodes(np.array([x], float))
    assert i == int(ia[0]) and np.float64(f).tobytes() == fa[0].tobytes()


def test_one_argument_memo_keys_by_identity():
    calls = []

    @by_identity
    def size(obj):
        calls.append(obj)
        return len(calls)

    x, y = [1], [1]  # equal, distinct
    assert size(x) == size(x) == 1
    assert size(y) == 2 and size(x) == 1
    size.cache_clear()
    assert size(x) == 3


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.floats(-5, 30, allow_nan=False), min_size=1, max_size=12, unique=True),
    st.lists(st.floats(-20, 20, allow_nan=False), min_size=12, max_size=12),
    st.floats(-10, 40, allow_nan=False),
)
def test_monotone_interp_of_one_value_is_the_array_path(xs, ys, x):
    from perfmodel.core.optable.interpolate import monotone_interp, monotone_interp_one

    xs = np.sort(np.array(xs))
    ys = np.maximum.accumulate(np.array(ys[: len(xs)]))  # a non-decreasing curve
    for v in (x, *xs[:3]):  # anywhere, and exactly at nodes
        one = monotone_interp_one(np.float64(v), xs, ys)
        assert np.float64(one).tobytes() == monotone_interp(np.array([v]), xs, ys)[0].tobytes()


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 512), st.integers(1, 200_000), st.sampled_from([1.0, 2.0]))
def test_decode_attention_of_one_shape_is_the_array_path(b, c, kv_bytes):
    """By KV bytes read (FP8 KV, or a configuration not measured), on the table's GPU and
    transferred to another of its architecture, quiet and with notices."""
    from perfmodel.core.optable.kernels import kernel_pricing

    for gpu in ("h100", "h100-pcie"):
        dep = make_deployment("405b", gpu, 8, 8, "fp8", "fp8")
        kp = kernel_pricing(dep.optable, dep.gpu)
        for pricing in (kp, kp.quiet()):
            one = pricing.attn_decode(np.float64(b), np.float64(c), 16.0, 1.0, 128.0, kv_bytes)
            many = pricing.attn_decode(
                np.array([b, 3.0]), np.array([c, 7.0]), 16.0, 1.0, 128.0, kv_bytes
            )
            assert np.ndim(one.time_s) == 0
            assert np.float64(one.time_s).tobytes() == many.time_s[0].tobytes()


@settings(max_examples=40, deadline=None)
@given(
    st.floats(1.0, 1e18, allow_nan=False),  # a kernel does work and moves bytes
    st.floats(1.0, 1e14, allow_nan=False),
    st.sampled_from([(16.0, 1.0, 128.0), (8.0, 2.0, 128.0), (5.0, 1.0, 96.0)]),
)
def test_prefill_attention_of_one_kernel_is_the_array_path(f, by, config):
    """Measured configurations and others (by ratio), below, inside and beyond the measured
    FLOPs, on the table's GPU and transferred, quiet and with notices."""
    from perfmodel.core.optable.kernels import kernel_pricing

    for gpu in ("h100", "h100-pcie"):
        dep = make_deployment("405b", gpu, 8, 8, "fp8", "fp8")
        kp = kernel_pricing(dep.optable, dep.gpu)
        for pricing in (kp, kp.quiet()):
            one = pricing.attn_prefill(np.float64(f), np.float64(by), *config)
            alone = pricing.attn_prefill(np.array([f]), np.array([by]), *config)
            many = pricing.attn_prefill(np.array([f, 1e9]), np.array([by, 1e6]), *config)
            assert np.ndim(one.time_s) == 0 and one.notices == alone.notices
            assert np.float64(one.time_s).tobytes() == many.time_s[0].tobytes()


MEMORY_LAYOUTS = [  # pp = 1 and pipelined, dense and MoE with expert parallelism (attn_dp > 1)
    ("405b", "h100", 16, 4, 4, 1, "fp8", "fp8"),
    ("70b", "a100-80gb", 12, 4, 3, 1, "bf16", "fp8"),
    ("8b", "l40s", 2, 2, 1, 1, "bf16", "bf16"),
    ("70b", "h200", 8, 8, 1, 1, "fp8", "bf16"),
    ("gpt-oss-120b", "h100", 8, 2, 1, 8, None, "bf16"),
    ("gpt-oss-120b", "h100", 8, 1, 2, 4, None, "bf16"),
]


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(MEMORY_LAYOUTS),
    st.lists(st.integers(1, 5000), min_size=1, max_size=8),
    st.integers(1, 200_000),
    st.integers(1, 8192),
)
def test_first_fitting_is_the_vectorized_verdict(layout, batch, prompt, output):
    """memory.first_fitting's scalar totals are total_bytes_per_gpu's, bit for bit, and its
    binary search finds the first batch fits_in_memory admits (or None)."""
    from perfmodel.core.memory import (
        _scalar_total,
        first_fitting,
        fits_in_memory,
        total_bytes_per_gpu,
    )

    model, gpu, n, tp, pp, ep, w, kv = layout
    dep = make_deployment(model, gpu, n, tp, w, kv, pp=pp, ep=ep)
    b = np.sort(np.array(batch, float))[::-1]  # non-increasing, as over growing dp
    want = total_bytes_per_gpu(dep, b, prompt, output)
    one = _scalar_total(dep, prompt, output)
    assert np.array([one(x) for x in b]).tobytes() == np.asarray(want, float).tobytes()
    hits = np.flatnonzero(fits_in_memory(dep, b, prompt, output))
    assert first_fitting(dep, b, prompt, output) == (int(hits[0]) if hits.size else None)
