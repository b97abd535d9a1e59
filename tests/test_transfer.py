"""The cross-GPU transfer rule's bias per operator class, measured where two GPUs of one
family both have tables (H100 SXM and H200: imported vLLM tables, our own torch tables),
and bounded after its correction (validation/fit_transfer.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "perfmodel" / "data" / "transfer_latency.yaml"


def _fit_module():
    path = ROOT / "validation" / "fit_transfer.py"
    spec = importlib.util.spec_from_file_location("fit_transfer", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def fitted():
    return _fit_module().fit_all()


def test_shipped_latencies_are_the_fit(fitted):
    shipped = yaml.safe_load(SHIPPED.read_text())["frameworks"]
    for framework, classes in fitted.items():
        for cls, r in classes.items():
            assert shipped[framework][cls]["latency_us"] == r["latency_us"], (framework, cls)


def test_transfer_bias_per_class_and_direction_is_corrected_and_bounded(fitted):
    """Pure roofline scaling is biased per direction (H100 -> H200 too fast, by 17-24% for
    vLLM's small GEMMs and attention, 20% for our elementwise kernels); with the measured
    latency every class and direction is within 4% (in-sample: fitted on these pairs), and
    the error per kernel (MAPE) falls for every class. Not every bias shrinks: vLLM's large
    GEMMs go from -1.7% to +3.1% H100 -> H200 (one latency for both directions)."""
    worst_before = 0.0
    for framework, classes in fitted.items():
        for cls, r in classes.items():
            assert 0.0 <= r["latency_us"] <= 50.0
            assert r["corrected"]["mape"] < r["roofline"]["mape"], (framework, cls)
            for key, d in r.items():
                if "_to_" not in key:
                    continue
                assert abs(d["corrected"]["bias"]) <= 0.04, (framework, cls, key, d)
                worst_before = max(worst_before, abs(d["roofline"]["bias"]))
    assert worst_before > 0.3  # the correction is not idle
    assert fitted["vllm"]["attn_decode"]["h100-sxm_to_h200"]["roofline"]["bias"] < -0.2


def test_vllm_latencies_do_not_carry_to_plain_torch_decode_attention(fitted):
    """Never fitted on our torch tables, vLLM's latencies overshoot there for decode
    attention (+10%): the rule is per framework, each table's own framework's latencies."""
    crossed = _fit_module().cross_check(fitted)
    assert crossed["attn_decode"]["with_vllm_latency"]["bias"] > 0.05
    assert abs(crossed["attn_prefill"]["with_vllm_latency"]["bias"]) < 0.03
