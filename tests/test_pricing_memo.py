"""planners.pricing_memo: inside `with memo():` prefill and decode-step times are the core's,
asked once; keys are the deployment's values (a changed spec is a new question), answers are
read-only, and a capacity plan is the same with and without a warm memo."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from perfmodel.core import inference
from perfmodel.core.deployment import make_deployment
from perfmodel.core.options import DeploymentPins
from perfmodel.planners import pricing_memo as pm
from perfmodel.planners.capacity.plan import plan_capacity
from perfmodel.planners.capacity.workload import fixed_workload


def test_memoized_times_are_the_core_times_and_asked_once():
    dep = make_deployment("8b", "h100")
    b, c = np.array([1.0, 8.0, 64.0]), 4096.0
    with pm.memo() as store:
        first = pm.decode_step_time(dep, b, c, 3, kv_budget=512.0)
        again = pm.decode_step_time(dep, b.copy(), c, 3, kv_budget=512.0)
        pre = pm.prefill_time(dep, 2.0, 8192.0)
        assert (store.misses, store.hits) == (2, 1)
    assert np.array_equal(first, inference.decode_step_time(dep, b, c, 3, kv_budget=512.0))
    assert again is first and not first.flags.writeable
    assert float(pre) == float(inference.prefill_time(dep, 2.0, 8192.0))
    with pytest.raises(ValueError):
        first[0] = 0.0  # a caller cannot change what the next one gets


def test_keys_are_values_not_names():
    """Another bandwidth under the same GPU name, another shape of the same points, another
    KV budget: each a new question with its own answer."""
    dep = make_deployment("8b", "h100")
    faster = replace(dep, gpu=replace(dep.gpu, hbm_bandwidth_tbps=2 * dep.gpu.hbm_bandwidth_tbps))
    with pm.memo() as store:
        a = pm.decode_step_time(dep, 8.0, 8192.0)
        b = pm.decode_step_time(faster, 8.0, 8192.0)
        pm.decode_step_time(dep, np.array([8.0]), 8192.0)
        pm.decode_step_time(dep, 8.0, 8192.0, kv_budget=256.0)
        assert store.misses == 4 and store.hits == 0
    assert float(b) < float(a)
    assert float(b) == float(inference.decode_step_time(faster, 8.0, 8192.0))


def test_outside_a_memo_nothing_is_kept_and_a_bound_drops_the_oldest():
    dep = make_deployment("8b", "h100")
    store = pm.Memo(max_entries=2)
    pm.prefill_time(dep, 1.0, 1024.0)  # no memo active: computed, not stored
    with pm.memo(store):
        for p in (1024.0, 2048.0, 4096.0):
            pm.prefill_time(dep, 1.0, p)
        with pm.memo():  # an enclosing memo is kept
            pm.prefill_time(dep, 1.0, 4096.0)
    assert len(store) == 2 and store.hits == 1


def test_a_capacity_plan_is_the_same_with_a_warm_memo():
    wl = fixed_workload(2.0, 4096, 256)
    args = (DeploymentPins("8b"), wl, 2.0, 0.05, ["h100"])
    cold = plan_capacity(*args).as_dict()
    store = pm.Memo()
    with pm.memo(store):
        plan_capacity(*args)
        warm = plan_capacity(*args).as_dict()
    assert store.hits > 0
    assert repr(warm) == repr(cold)


def test_a_new_qps_or_slo_reuses_the_searchs_service_times_and_answers_as_a_fresh_search():
    """The capacity search's per-(GPU, precision) service times (with speculation) are kept in
    the memo: a second question at another QPS and SLO reads them back (no new miss for
    them) and answers exactly as a search with an empty memo."""
    first, second = fixed_workload(1.0, 2048, 128), fixed_workload(3.0, 2048, 128)
    store = pm.Memo()
    with pm.memo(store):
        plan_capacity(DeploymentPins("1b"), first, 2.0, 0.05, ["h100"], with_spec=True)
        kept = {k for k in store._store if k[0] == "capacity_variants"}
        assert len(kept) == 4  # one per precision searched
        hits = store.hits
        warm = plan_capacity(
            DeploymentPins("1b"), second, 1.0, 0.03, ["h100"], with_spec=True
        ).as_dict()
        assert {k for k in store._store if k[0] == "capacity_variants"} == kept
        assert store.hits >= hits + len(kept)
    cold = plan_capacity(
        DeploymentPins("1b"), second, 1.0, 0.03, ["h100"], with_spec=True
    ).as_dict()
    assert repr(warm) == repr(cold)


def test_memoized_outside_a_memo_computes_each_time():
    calls = []
    assert pm.memoized(("k",), lambda: calls.append(1) or 7) == 7
    assert pm.memoized(("k",), lambda: calls.append(1) or 7) == 7
    assert len(calls) == 2
    with pm.memo():
        pm.memoized(("k",), lambda: calls.append(1) or 7)
        assert pm.memoized(("k",), lambda: calls.append(1) or 8) == 7
    assert len(calls) == 3
