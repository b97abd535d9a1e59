"""A pass of one shape (every input a scalar) is priced on float64 scalars and takes the
shortcuts of a single shape (ops.make_shape, collective.pass_allreduce_seconds, the
memoized op lists and per-deployment setup of core.inference): each number must be bit for
bit the same as that shape's element of a sweep (arrays, the general path)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfmodel.core.deployment import make_deployment
from perfmodel.core.inference import (
    _stage_pair,
    decode_step_time,
    pass_breakdown,
    prefill_time,
    request_times,
    stage_deployment,
    stage_time,
)
from perfmodel.core.pipeline import stages

# table-priced (measured, transferred), pipelined, MoE, MLA, sliding window, host-staged
DEPLOYMENTS = {
    "405b-h100-tp8-pp2": ("405b", "h100", 16, 8, "fp8", "fp8", 2),
    "8b-h100pcie-tp2": ("8b", "h100-pcie", 2, 2, "bf16", "bf16", 1),
    "70b-a100-tp4-pp3": ("70b", "a100-80gb", 12, 4, "bf16", "fp8", 3),
    "gptoss-h100": ("gpt-oss-20b", "h100", 1, 1, None, "bf16", 1),
    "dsv3-h200-tp8": ("dsv3", "h200", 8, 8, None, "fp8", 1),
    "gemma-rtx4090-tp2": ("gemma2-9b", "rtx4090", 2, 2, "bf16", "bf16", 1),
    # a table that measures the norms too (price.unsampled_norms)
    "70b-h100-torch-tp2-pp2": ("70b", "h100", 4, 2, "bf16", "bf16", 2, "torch-cudagraph-h100"),
}


def _dep(name):
    model, gpu, n, tp, w, kv, pp, *profile = DEPLOYMENTS[name]
    return make_deployment(model, gpu, n, tp, w, kv, pp=pp, profile=(profile or [None])[0])


def _bits(x) -> bytes:
    return np.asarray(x, float).tobytes()


def _same(scalar, sweep, i: int) -> bool:
    """The scalar result is bit for bit element i of the sweep's (broadcast) result."""
    assert np.ndim(scalar) == 0
    return _bits(scalar) == _bits(np.asarray(sweep, float).reshape(-1)[i])


def _sweep(value: float, others: list[float]) -> np.ndarray:
    """value at index 1 among other values (a sweep over several shapes)."""
    return np.array([others[0], value, *others[1:]], float)


name = st.sampled_from(sorted(DEPLOYMENTS))
batch = st.integers(1, 256)
length = st.integers(1, 40_000)


@settings(max_examples=30, deadline=None)
@given(name, batch, length, st.integers(1, 2048), st.lists(length, min_size=2, max_size=3))
def test_request_times_of_one_shape_are_its_element_of_a_sweep(dep_name, b, p, o, more):
    dep = _dep(dep_name)
    one = request_times(dep, b, p, o)
    sweep = request_times(dep, b, _sweep(p, more), o)
    for field in ("ttft_s", "tpot_s", "e2e_s", "throughput_tok_s"):
        assert _same(getattr(one, field), getattr(sweep, field), 1), field


@settings(max_examples=30, deadline=None)
@given(
    name,
    batch,
    st.integers(1, 20),  # new tokens: decode and verification (q <= 16) and a short prefill
    length,
    st.sampled_from([np.inf, 512.0]),
    st.lists(st.integers(1, 4096), min_size=2, max_size=3),
)
def test_decode_and_prefill_of_one_shape_are_their_element_of_a_sweep(
    dep_name, b, q, c, budget, more
):
    dep = _dep(dep_name)
    assert _same(
        decode_step_time(dep, b, c, q, kv_budget=budget),
        decode_step_time(dep, b, c, _sweep(q, more), kv_budget=budget),
        1,
    )
    assert _same(prefill_time(dep, b, c), prefill_time(dep, _sweep(b, more), c), 1)


@settings(max_examples=25, deadline=None)
@given(name, batch, st.integers(1, 20_000), length, st.lists(st.integers(1, 20_000), min_size=2))
def test_every_op_of_a_pass_of_one_shape_is_its_element_of_a_sweep(dep_name, b, q, c, more):
    dep = _dep(dep_name)
    if dep.pp > 1:
        dep = stage_deployment(dep, stages(dep.model.num_layers, dep.pp)[-1])
    one = pass_breakdown(dep, b, q, c)
    sweep = pass_breakdown(dep, b, _sweep(q, more), c)
    assert _same(one.time_s, sweep.time_s, 1) and _same(one.overhead_s, sweep.overhead_s, 1)
    for op, op_sweep in zip(one.ops, sweep.ops, strict=True):
        assert op.name == op_sweep.name
        for field in op._fields[2:]:
            scalar = getattr(op, field)
            full = np.broadcast_to(getattr(op_sweep, field), np.shape(sweep.time_s))
            assert _same(scalar, full, 1), (op.name, field)
    for t, t_sweep in zip(one.times, sweep.times, strict=True):
        for field in t._fields[2:]:
            full = np.broadcast_to(getattr(t_sweep, field), np.shape(sweep.time_s))
            assert _same(getattr(t, field), full, 1), (t.name, field)


@pytest.mark.parametrize("dep_name", sorted(DEPLOYMENTS))
def test_a_repeated_pass_gives_the_same_bits(dep_name):
    """The memos (op lists per shape, setup per deployment) return what was computed."""
    dep = _dep(dep_name)
    first = request_times(dep, 8, 1000, 100)
    again = request_times(_dep(dep_name), 8, 1000, 100)  # another object, equal value
    for field in ("ttft_s", "tpot_s", "e2e_s", "throughput_tok_s"):
        assert _bits(getattr(first, field)) == _bits(getattr(again, field))


@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from([n for n, d in sorted(DEPLOYMENTS.items()) if d[6] > 1]),
    batch,
    st.integers(1, 9000),
    length,
    st.sampled_from([1, 4]),
    st.booleans(),
)
def test_a_stage_priced_with_the_last_is_the_stage_priced_alone(dep_name, b, q, c, logits, sweep):
    """_pipeline_parts prices a stage of the last stage's layer count from the last
    stage's pass (_stage_pair): bit for bit stage_time of that stage, alone."""
    dep = _dep(dep_name)
    stages_ = stages(dep.model.num_layers, dep.pp)
    last, first = stages_[-1], stages_[-1]._replace(first=True, last=False)
    bb = np.array([b, b + 3.0]) if sweep else b
    pair = _stage_pair(stage_deployment(dep, last), bb, q, c, logits, np.inf)
    alone = [stage_time(dep, s, bb, q, c, logits, np.inf) for s in (last, first)]
    for x, y in zip(pair, alone, strict=True):
        assert _bits(x) == _bits(y)
