"""The speculation layer: one helper deployment rule, one acceptance resolver, one memory rule."""

from __future__ import annotations

import numpy as np
import pytest

from perfmodel.core.deployment import make_deployment
from perfmodel.core.memory import kv_bytes_per_token_per_gpu, weight_bytes_per_gpu
from perfmodel.errors import PerfModelError
from perfmodel.planners.speculation.acceptance import (
    AcceptanceBasis,
    AcceptancePolicy,
    resolve_bases,
)
from perfmodel.planners.speculation.deploy import helper_deployment, helper_memory
from perfmodel.planners.speculation.drafts import DraftConfig
from tests.conftest import run_cli


def _fp8_405b():
    return make_deployment("405b", "h100", 8, 8, "fp8", "bf16")


def test_helper_runs_bf16_unless_given():
    target = _fp8_405b()
    spec = helper_deployment(target, "8b", "speculator")
    assert (spec.weight_dtype, spec.kv_dtype, spec.tp, spec.num_gpus) == ("bf16", "bf16", 8, 8)
    assert spec.profile == target.profile and spec.mode == target.mode
    assert helper_deployment(target, "8b", "draft").weight_dtype == "bf16"
    assert helper_deployment(target, "8b", "speculator", weight_dtype="fp8").weight_dtype == "fp8"


def test_helper_on_its_own_gpus_and_self_speculation():
    target = _fp8_405b()
    own = helper_deployment(target, "8b", "speculator", num_gpus=2)
    assert (own.num_gpus, own.tp, own.weight_dtype) == (2, 2, "bf16")
    assert helper_deployment(target, "self", "draft") is target
    with pytest.raises(PerfModelError, match="self-speculation"):
        helper_deployment(target, "self", "speculator")


@pytest.mark.parametrize(
    "name,match", [("405b", "larger than the target"), ("Qwen2.5-7B", "vocabulary")]
)
def test_helper_must_be_smaller_and_share_the_vocabulary(name, match):
    with pytest.raises(PerfModelError, match=match):
        helper_deployment(make_deployment("70b", "h100", 4), name, "draft")


def test_helper_memory_is_weights_plus_budgeted_kv():
    spec = helper_deployment(make_deployment("70b", "h100", 8), "8b", "draft")
    per_token = float(kv_bytes_per_token_per_gpu(spec))
    mem = helper_memory(spec, 10_000, kv_budget=512)
    assert mem.weight_bytes == pytest.approx(float(weight_bytes_per_gpu(spec)))
    assert float(mem.kv_bytes_per_seq) == pytest.approx(512 * per_token)
    assert float(mem.total(4)) == pytest.approx(mem.weight_bytes + 4 * 512 * per_token)
    # self-speculation shares the target's weights: only its compressed KV is extra
    assert helper_memory(spec, 100, self_speculation=True).weight_bytes == 0.0


def test_resolver_kinds_and_the_assumed_switch():
    t8 = make_deployment("8b", "h100", 1)
    pub = DraftConfig("1b", "streamingllm", 512.0)
    none = DraftConfig("self", "streamingllm", 512.0)
    given = resolve_bases(t8, [pub, none], [8192], 0.6)
    assert [b.kind for b in given] == ["given", "given"]
    bases = resolve_bases(t8, [pub, none], [8192])
    assert [b.kind for b in bases] == ["published", "unknown"]
    assert np.isnan(bases[1].rate).all() and not bases[1].ranked
    # an assumed rate may not outrank published data unless the caller says it competes
    fallback = AcceptancePolicy(assumed_rate=0.8)
    assert [b.kind for b in resolve_bases(t8, [pub, none], [8192], fallback)] == [
        "published",
        "unknown",
    ]
    compete = AcceptancePolicy(assumed_rate=0.8, assumed_competes=True)
    assert [b.kind for b in resolve_bases(t8, [pub, none], [8192], compete)] == [
        "published",
        "assumed",
    ]
    # no data for any configuration: the fallback applies to all, labeled
    t70 = make_deployment("70b", "h100", 8)
    only = resolve_bases(t70, [DraftConfig("8b", "full")], [8192], fallback)
    assert isinstance(only[0], AcceptanceBasis)
    assert only[0].kind == "assumed" and only[0].label == "assumed 0.8"
    assert only[0].source.startswith("assumed 0.8 per token: no published acceptance data")


def test_cli_speculator_dtype_is_bf16_unless_given():
    args = ("specprefill", "--model", "405b", "--weight-dtype", "fp8", "--num-gpus", "8")
    args += ("--prompt-len", "32k", "--batch", "1", "--keep-rate", "0.5", "--json")
    # the roofline profile: vLLM 0.24's measured FP8 GEMMs are slower than BF16 for the 8B
    # speculator's TP8 shapes at 32k tokens (n = 768: 494 vs 247 us at M = 32768 on H100)
    args += ("--profile", "vllm-0.6.3-h100")
    default = run_cli(*args, check_json=True)
    fp8 = run_cli(*args, "--speculator-weight-dtype", "fp8", check_json=True)
    assert default["speculator_weight_dtype"] == "bf16" and fp8["speculator_weight_dtype"] == "fp8"
    # an FP8 speculator reads half the weight bytes: its TTFT is lower
    assert fp8["rows"][0]["ttft_s"] < default["rows"][0]["ttft_s"]
