"""The deployment search's shortcuts give the answers of the plain formulas, bit for bit:
ModelSpec's cached derived quantities, memory_report's largest pipeline stage, the verdict
alone (fits_in_memory) and the smallest fitting dp with its weights-only shortcut."""

from __future__ import annotations

from dataclasses import fields, replace
from functools import cached_property

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfmodel.core import pipeline
from perfmodel.core.deployment import make_deployment
from perfmodel.core.memory import (
    activation_bytes_per_token,
    fits_in_memory,
    kv_bytes_per_seq_per_gpu,
    logits_bytes_per_seq,
    memory_report,
    prefill_step_tokens,
    stage_weight_bytes,
    usable_bytes,
    weight_bytes_per_gpu,
)
from perfmodel.planners.deployment_search import _smallest_dp
from perfmodel.specs.model_spec import ModelSpec
from perfmodel.specs.models import resolve_model

CACHED = sorted(k for k, v in vars(ModelSpec).items() if isinstance(v, cached_property))
MODELS = ["8b", "405b", "gpt-oss-20b", "dsv3", "gemma2-9b"]


def _fresh(spec: ModelSpec) -> ModelSpec:
    """The same fields in a new spec that has computed nothing yet."""
    return ModelSpec(**{f.name: getattr(spec, f.name) for f in fields(spec)})


def _derived(spec: ModelSpec) -> dict:
    return {k: getattr(spec, k) for k in CACHED} | {"groups": spec.layer_groups()}


def test_the_derived_quantities_are_cached():
    assert {"param_count", "quantizable_params", "layer_params", "moe_layers"} <= set(CACHED)
    spec = _fresh(resolve_model("405b"))
    assert spec.layer_groups() is spec.layer_groups()  # computed once
    assert "param_count" not in vars(spec)
    n = spec.param_count
    assert vars(spec)["param_count"] == n == 405_853_388_800  # Llama-3.1-405B, HF modules


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(
    "change",
    [{"num_layers": 7}, {"hidden_size": 1024}, {"num_experts": 4, "experts_per_token": 2}],
)
def test_a_replaced_spec_computes_its_own_derived_quantities(model, change):
    spec = _fresh(resolve_model(model))
    before = _derived(spec)  # fills the cache of `spec`
    changed = replace(spec, **change)
    assert _derived(changed) == _derived(_fresh(changed))  # never the cached values of spec
    assert _derived(changed) != before
    # the cache is no field: equality and hashing see the fields only
    assert spec == _fresh(spec) and hash(spec) == hash(_fresh(spec))


@pytest.mark.parametrize("model", MODELS)
def test_a_cut_model_is_the_replaced_spec_made_once(model):
    spec = _fresh(resolve_model(model))
    cut = spec.with_layers(3)
    assert cut == replace(spec, num_layers=3) and cut.num_layers == 3
    assert spec.with_layers(3) is cut  # one spec per layer count ...
    assert _derived(cut) == _derived(_fresh(cut))
    wider = replace(spec, hidden_size=spec.hidden_size + 64)  # ... and per model
    assert wider.with_layers(3).hidden_size == spec.hidden_size + 64
    assert wider.with_layers(3).param_count != cut.param_count


def _deployments():
    for model in MODELS:
        m = resolve_model(model)
        for w, k in (("bf16", "bf16"), ("fp8", "fp8"), ("int4", "fp8")):
            base = make_deployment(m, "h100", 1, 1, w, k)
            for tp, pp, ep in ((1, 1, 1), (8, 1, 1), (2, 3, 1), (8, 5, 1), (1, 8, 8), (2, 2, 4)):
                if m.num_heads % tp or pp > m.num_layers:
                    continue
                if ep > 1 and (not m.is_moe or m.num_experts % ep):
                    continue
                yield replace(base, num_gpus=max(tp, ep) * pp, tp=tp, pp=pp, ep=ep)


DEPLOYMENTS = list(_deployments())


def _reference_largest_stage(dep, b, p, o, extra):
    """memory_report's pp > 1 parts from the public per-stage formulas, stage by stage and
    element by element (the first largest stage on a tie)."""
    out = []
    for i in range(b.size):
        bi = b.flat[i] / dep.attn_dp
        best = None
        for s in pipeline.stages(dep.model.num_layers, dep.pp):
            w = stage_weight_bytes(dep, s) + (extra.flat[i] if s.first else 0.0)
            kv = kv_bytes_per_seq_per_gpu(dep, p.flat[i] + o.flat[i], s.layers) * bi
            act = prefill_step_tokens(bi, p.flat[i]) * activation_bytes_per_token(dep)
            act = act + (bi * logits_bytes_per_seq(dep) if s.last else 0.0)
            if best is None or w + kv + act > sum(best):
                best = (w, kv, act)
        out.append([float(x) for x in best])
    return np.array(out).T


sizes = st.integers(1, 6)
batches = st.lists(st.integers(1, 4096), min_size=1, max_size=6)


@settings(max_examples=25, deadline=None)
@given(
    i=st.integers(0, len(DEPLOYMENTS) - 1),
    batch=batches,
    prompt=st.integers(1, 200_000),
    output=st.integers(1, 8192),
    extra=st.sampled_from([0.0, 3e9]),
    array_lengths=st.booleans(),
)
def test_memory_report_parts_and_verdict_match_the_plain_formulas(
    i, batch, prompt, output, extra, array_lengths
):
    dep = DEPLOYMENTS[i]
    b = np.array(batch, float)
    p = np.full(b.shape, float(prompt)) if array_lengths else prompt
    r = memory_report(dep, b, p, output, extra)
    assert np.array_equal(r.fits, fits_in_memory(dep, b, p, output, extra))
    if dep.pp > 1:
        shaped = [np.broadcast_to(np.asarray(x, float), b.shape) for x in (p, output, extra)]
        ref = _reference_largest_stage(dep, b, *shaped)
        assert np.array_equal([r.weights_gb, r.kv_cache_gb, r.activation_gb], ref / 1e9)


def test_scalar_inputs_keep_numpy_scalar_results():
    """One sequence count in gives numpy scalars out (as before the fast paths)."""
    for dep in DEPLOYMENTS[:12]:
        r = memory_report(dep, 4, 4096, 256)
        assert type(r.total_gb) is np.float64 and type(r.fits) is np.bool_
        assert type(fits_in_memory(dep, 4, 4096, 256)) is np.bool_


@settings(max_examples=25, deadline=None)
@given(
    i=st.integers(0, len(DEPLOYMENTS) - 1),
    batch=st.integers(1, 300),
    lowest=st.integers(1, 8),
    span=st.integers(0, 64),
    prompt=st.sampled_from([1024, 32768, 131072]),
)
def test_smallest_dp_is_the_first_dp_memory_report_fits(i, batch, lowest, span, prompt):
    dep = DEPLOYMENTS[i]
    top = min(lowest + span, batch)
    fitting = [
        dp for dp in range(lowest, top + 1) if memory_report(dep, -(-batch // dp), prompt, 512).fits
    ]
    assert _smallest_dp(dep, batch, prompt, 512, lowest, lowest + span) == (
        fitting[0] if fitting else None
    )


def test_weights_beyond_memory_fit_at_no_dp():
    dep = make_deployment("405b", "h100", 1, 1, "bf16", "bf16")  # 810 GB on one 80 GB GPU
    assert weight_bytes_per_gpu(dep) > usable_bytes(dep)
    assert not memory_report(dep, 1, 1, 1).fits
    assert _smallest_dp(dep, 64, 1024, 128, 1, 64) is None


def test_a_replaced_deployment_computes_its_own_derived_quantities():
    dep = make_deployment("gpt-oss-20b", "h100", 8, 8, "bf16", "bf16")
    names = ("w_bytes", "kv_bytes", "compute_dtype", "tp_spans_nodes")
    assert [getattr(dep, n) for n in names] == [2.0, 2.0, "bf16", False]  # now cached
    other = replace(dep, weight_dtype="mxfp4", kv_dtype="fp8", tp=16, allow_cross_node_tp=True)
    # MXFP4: 0.5 byte + one 1-byte scale per 32 weights; no FP4 tensor cores on H100
    assert [getattr(other, n) for n in names] == [0.5 + 1 / 32, 1.0, "bf16", True]
    assert dep == replace(
        other, weight_dtype="bf16", kv_dtype="bf16", tp=8, allow_cross_node_tp=False
    )
