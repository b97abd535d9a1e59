"""Which records compare by value and which by identity.

Specs and what the user says (a model, a GPU, a profile, the options, the SLOs) compare by
value: memos key on them (core.inference's lru_cache on the model; price._tabulation_key
holds the model and the GPU spec's repr), and two loads of one spec are the same spec.
Records that nothing compares (a verdict, an operator table) are frozen dataclasses
declared eq=False, so Python generates no __eq__ and __hash__ for them (about 0.1 ms less
of every cold start per record); equality is identity, and an operator table, which holds
numpy arrays, could not be compared by value anyway. Plain records without defaults to
build or checks to run on creation (a reason, what bound a deployment, a precision choice,
an option group, a model's layer groups, the deployment search's results) are NamedTuples,
which cost a fifth of a frozen dataclass to define: immutable too.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from perfmodel.cli.option_groups import DEPLOYMENT, DEPLOYMENT_PINS, OptionGroup
from perfmodel.core.bench_options import BenchOptions
from perfmodel.core.deployment import Deployment
from perfmodel.core.options import DeploymentOptions, DeploymentPins
from perfmodel.planners.binding import Binding
from perfmodel.planners.deployment_choice import DeploymentChoice
from perfmodel.planners.feasibility import Reason, Slos, Verdict
from perfmodel.planners.precision import PrecisionChoice
from perfmodel.planners.recommend import recommend
from perfmodel.specs.hardware import HardwareSpec, resolve_gpu
from perfmodel.specs.model_spec import LayerGroup, ModelSpec
from perfmodel.specs.models import resolve_model
from perfmodel.specs.optables import OpTable
from perfmodel.specs.profile import Profile, profile_for


def _identity_records():
    reason = Reason("memory", "needs 90 GB, has 80 GB", 80.0, 90.0)
    return [
        Verdict((reason,), ("beyond the context window",)),
        OpTable(
            gpu="h100-sxm",
            framework="vllm",
            path="t.csv",
            op=np.array(["gemm"]),
            shape=np.array(["m=1"]),
            values={"time_s": np.array([1e-5])},
        ),
    ]


def _tuple_records():
    return [
        Reason("memory", "needs 90 GB, has 80 GB", 80.0, 90.0),
        Binding("memory", "memory: 2x h100-sxm holds batch 8"),
        PrecisionChoice("bf16", "bf16", "memory", True, 8, 8, {"bf16/bf16": 16}),
        DEPLOYMENT,
        OptionGroup(DeploymentPins, dict(DEPLOYMENT_PINS.options)),
    ]


def _value_records():
    return [
        resolve_model("8b"),
        resolve_gpu("h100"),
        profile_for("h100-sxm"),
        DeploymentOptions(model="70b", num_gpus=4),
        DeploymentPins(model="405b", kv_dtype="fp8"),
        BenchOptions(batch=8, prompt_len=1024),
        Slos(tpot_s=0.05),
    ]


@pytest.mark.parametrize("record", _identity_records(), ids=lambda r: type(r).__name__)
def test_verdicts_and_tables_compare_by_identity_and_stay_frozen(record):
    copy = dataclasses.replace(record)
    assert record == record and copy != record  # a field-for-field copy is another record
    assert len({record, copy}) == 2  # hashable, by identity
    name = dataclasses.fields(record)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(record, name, getattr(record, name))


def test_a_models_layer_groups_compare_by_value():
    groups = resolve_model("gemma2-9b").layer_groups()
    assert len(groups) == 2 and groups == resolve_model("gemma2-9b").layer_groups()
    assert groups[0] == LayerGroup(groups[0].count, groups[0].window, groups[0].moe)
    assert hash(groups[0]) == hash(groups[0]._replace()) and groups[0] != groups[1]


@pytest.mark.parametrize("record", _tuple_records(), ids=lambda r: type(r).__name__)
def test_plain_records_are_immutable_tuples(record):
    assert isinstance(record, tuple) and record._replace() == record
    with pytest.raises(AttributeError):
        setattr(record, record._fields[0], getattr(record, record._fields[0]))


@pytest.mark.parametrize("record", _value_records(), ids=lambda r: type(r).__name__)
def test_specs_and_user_options_compare_by_value(record):
    copy = dataclasses.replace(record)
    assert copy is not record and copy == record
    try:
        hash(record)
    except TypeError:  # a GPU spec holds lists: a memo keys on its repr instead
        assert repr(copy) == repr(record)
    else:
        assert hash(copy) == hash(record)
    assert dataclasses.replace(record, **_changed(record)) != record


def _changed(record) -> dict:
    """One field set to another value of its kind."""
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if not f.compare or isinstance(value, bool):
            continue
        if isinstance(value, str):
            return {f.name: value + "x"}
        if isinstance(value, (int, float)) and value is not None:
            return {f.name: value + 1}
    raise AssertionError(f"{type(record).__name__}: no field to change")


VALUE_TYPES = (
    ModelSpec,
    HardwareSpec,
    Profile,
    Deployment,
    DeploymentOptions,
    DeploymentPins,
    BenchOptions,
    Slos,
)


def _records(obj, found: dict[int, object]) -> dict[int, object]:
    """Every dataclass record reachable from obj through record fields, tuples (NamedTuple
    results among them), lists and dict values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        if id(obj) in found:
            return found
        found[id(obj)] = obj
        for f in dataclasses.fields(obj):
            _records(getattr(obj, f.name), found)
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            _records(item, found)
    elif isinstance(obj, dict):
        for item in obj.values():
            _records(item, found)
    return found


def test_every_record_of_a_recommend_answer_is_a_spec_by_value_or_a_result_by_identity():
    """A new dataclass record in an answer is classified here: by value (a spec, an option,
    a deployment that planners compare) or by identity (eq=False: a result)."""
    answer = recommend(DeploymentPins(model="8b"), 16, 4096, 256, slo_ttft_s=2.0)
    records = list(_records(answer, {}).values())
    kinds = {type(r) for r in records}
    assert {ModelSpec, HardwareSpec, Deployment} <= kinds  # Deployment: inside the choice
    choice = answer.deployment
    assert isinstance(choice, DeploymentChoice) and isinstance(choice, tuple)
    with pytest.raises(AttributeError):
        choice.tp = 2
    for record in records:
        copy = dataclasses.replace(record)
        by_value = isinstance(record, VALUE_TYPES)
        assert (copy == record) is by_value, type(record).__name__
