"""Exact labels per operator class (core/basis.py): measured only where a measured row of
this GPU prices the class; transferred (from which GPU, by which rule); roofline otherwise.
Through predict --json and recommend --json as well."""

from __future__ import annotations

import pytest

from perfmodel.core.basis import basis_by_class
from perfmodel.core.deployment import make_deployment
from tests.conftest import run_cli

KERNELS = ("gemm", "attention_decode", "attention_prefill")


def test_measured_only_for_the_shapes_the_table_has():
    b = basis_by_class(make_deployment("8b", "h100", 1))
    assert b["gemm"].startswith("measured: operator table h100-sxm__vllm-0.24.0 (vllm 0.24.0")
    # 8B gate_up (4096 x 28672) is not on aiconfigurator's grid: not measured, and said so
    assert "BF16 rows of qkv_proj, o_proj;" in b["gemm"]
    assert "mlp_gate_up, mlp_down, lm_head from the nearest measured sizes" in b["gemm"]
    assert (
        b["attention_decode"].startswith("measured:")
        and "32 heads / 8 KV heads" in b["attention_decode"]
    )
    assert b["elementwise"].startswith("roofline:")  # the imported table has no norms
    assert b["allreduce"] == "none (TP1)"
    assert "not identified" in b["overheads"]


def test_fp8_weights_use_fp8_rows_or_say_they_do_not():
    h100 = basis_by_class(make_deployment("70b", "h100", 8, weight_dtype="fp8"))
    assert h100["gemm"].startswith("measured:") and "FP8 rows of" in h100["gemm"]
    a100 = basis_by_class(make_deployment("8b", "a100", 1, weight_dtype="fp8"))
    assert "no FP8 GEMM measured" in a100["gemm"] and "measured:" not in a100["gemm"]
    # A100 has no FP8 unit: the roofline is 1-byte weights at the BF16 peak, and it says so
    assert "multiplied at the BF16 peak (a100-80gb has no FP8 tensor cores" in a100["gemm"]
    dep = make_deployment("8b", "a100", 1, weight_dtype="fp8")
    assert dep.gpu.peak_flops(dep.compute_dtype) == dep.gpu.peak_flops("bf16")


def test_transferred_classes_name_the_source_gpu_and_the_rule():
    b = basis_by_class(make_deployment("70b", "h100-pcie", 4))
    for kind in KERNELS:
        assert b[kind].startswith("transferred:"), kind
        assert "from h100-sxm to h100-pcie" in b[kind]
        assert "latency measured per class on H100/H200" in b[kind]
    assert b["allreduce"].startswith("analytical: ring over PCIe")  # not the NVLink table


def test_a_gpu_without_table_family_is_roofline_everywhere():
    b = basis_by_class(make_deployment("8b", "mi300x", 1))
    for kind in (*KERNELS, "elementwise"):
        assert b[kind].startswith("roofline:"), kind
    assert not any("measured" in v for v in b.values())


def test_predict_json_carries_the_labels_and_the_4090_allreduce():
    out = run_cli(
        "predict", "--model", "8b", "--gpu", "rtx4090", "--num-gpus", "8", "--batch", "8",
        "--prompt-len", "1024", "--output-len", "64", "--json", check_json=True,
    )  # fmt: skip
    b = out["basis_by_class"]
    assert b["allreduce"].startswith("analytical: ring through host memory over PCIe")
    assert "no peer-to-peer on rtx4090" in b["allreduce"]
    for kind in KERNELS:
        assert b[kind].startswith("transferred:") and "from l40s to rtx4090" in b[kind]


@pytest.mark.parametrize("gpu", ["h100"])
def test_recommend_alternatives_carry_labels(gpu):
    out = run_cli(
        "recommend", "--model", "8b", "--bsz", "8", "--prompt-len", "2048", "--output-len",
        "128", "--json", check_json=True,
    )  # fmt: skip
    assert set(out["basis_by_class"]) >= {"gemm", "allreduce", "overheads"}
    assert out["alternatives"]
    for alt in out["alternatives"]:
        b = alt["basis_by_class"]
        if alt["gpu"] == "mi300x":
            assert not any("measured" in v for v in b.values())
        if alt["gpu"] in ("rtx4090", "h100-pcie", "a100-40gb"):
            assert b["gemm"].startswith(("transferred:", "roofline:")), alt["gpu"]
