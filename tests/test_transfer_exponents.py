"""The cross-GPU transfer rule's bias per operator class, measured where two GPUs of one
family both have tables (H100 SXM and H200: imported vLLM tables, our own torch tables),
and bounded after its correction (validation/fit_transfer_exponents.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "perfmodel" / "data" / "transfer_exponents.yaml"


def _fit_module():
    path = ROOT / "validation" / "fit_transfer_exponents.py"
    spec = importlib.util.spec_from_file_location("fit_transfer_exponents", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def fitted():
    return _fit_module().fit_all()


def test_shipped_exponents_are_the_fit(fitted):
    shipped = yaml.safe_load(SHIPPED.read_text())["frameworks"]
    for framework, classes in fitted.items():
        for cls, r in classes.items():
            assert shipped[framework][cls]["exponent"] == r["exponent"], (framework, cls)


def test_transfer_bias_per_class_and_direction_is_corrected_and_bounded(fitted):
    """Pure roofline scaling is biased per direction (H100 -> H200 too fast, by 17-24% for
    vLLM's small GEMMs and attention); with the measured exponent every class and direction
    is within 3% (in-sample: fitted on these pairs). Not every class gains: vLLM's large
    GEMMs go from -1.7% to +2.9% H100 -> H200 (one exponent for both directions)."""
    worst_before = 0.0
    for framework, classes in fitted.items():
        for cls, r in classes.items():
            for key, d in r.items():
                if "_to_" not in key:
                    continue
                assert abs(d["corrected"]["bias"]) <= 0.03, (framework, cls, key, d)
                worst_before = max(worst_before, abs(d["roofline"]["bias"]))
    assert worst_before > 0.2  # the correction is not idle
    vllm = fitted["vllm"]
    assert vllm["attn_decode"]["h100-sxm_to_h200"]["roofline"]["bias"] < -0.2
    for cls in ("gemm_small", "gemm_large", "attn_decode", "attn_prefill"):
        assert 0.0 < vllm[cls]["exponent"] < 1.0, cls  # H200 gains less than its bandwidth


def test_vllm_exponents_do_not_carry_to_plain_torch_kernels(fitted):
    """Never fitted on our torch tables, vLLM's exponents overshoot there for small GEMMs and
    decode attention (+13%, +21%): the rule is per framework, and the runtime uses each
    table's own framework's exponents."""
    crossed = _fit_module().cross_check(fitted)
    assert crossed["attn_decode"]["with_vllm_exponent"]["bias"] > 0.1
    assert abs(crossed["gemm_large"]["with_vllm_exponent"]["bias"]) < 0.03
