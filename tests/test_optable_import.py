"""`perfmodel tables import`: aiconfigurator-core's measured tables -> operator tables.

The fixture (tests/fixtures/aiconfigurator/) holds rows of aiconfigurator-core 0.12.0's own
H100 / vLLM 0.24.0 tables in the package's layout and column names (legacy CSV form)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from perfmodel.errors import PerfModelError
from perfmodel.specs.optable_import import import_tables, write_table
from perfmodel.specs.optables import load_optable, read_optable, shipped_tables
from tests.conftest import assert_one_line_error, run_cli

FIXTURE = Path(__file__).parent / "fixtures" / "aiconfigurator"
SRC = "h100_sxm/{op}/vllm/0.24.0/{stem}.txt"


def _source_rows(op: str, stem: str) -> list[dict]:
    with (FIXTURE / SRC.format(op=op, stem=stem)).open(newline="") as fh:
        return list(csv.DictReader(fh))


def _rows():
    return import_tables("h100_sxm", "vllm", "0.24.0", FIXTURE, package_version_text="0.12.0")


def test_fixture_converts_with_the_documented_meaning_of_each_column():
    rows = _rows()
    by = {}
    for r in rows:
        by.setdefault((r["op"], r["dtype"]), []).append(r)
    # GEMM: bf16 (F.linear) and per-tensor fp8 (Cutlass), 4 each; fp8_block left out
    assert len(by["gemm", "bf16"]) == 4 and len(by["gemm", "fp8"]) == 4
    g = next(r for r in by["gemm", "bf16"] if (r["m"], r["k"], r["n"]) == (1, 4096, 6144))
    assert g["time_ms"] == pytest.approx(0.019898666275872123, rel=1e-15)
    assert g["flops"] == 2 * 4096 * 6144 and g["bytes"] == 2 * (4096 * 6144 + 4096 + 6144)
    f8 = next(r for r in by["gemm", "fp8"] if (r["m"], r["k"], r["n"]) == (4096, 4096, 4096))
    assert f8["time_ms"] == pytest.approx(0.1537511083814833, rel=1e-15)
    # decode attention: BF16 KV cache, FlashAttention 3 (the densest kernel), no window;
    # context = isl + step
    dec = by["attn_decode", "bf16"]
    assert len(dec) == 4
    assert sorted({r["ctx"] for r in dec}) == [16, 1024]
    d = next(r for r in dec if r["batch"] == 1 and r["ctx"] == 16)
    assert d["time_ms"] == pytest.approx(0.011839999506870905, rel=1e-15)
    assert d["bytes"] == 2 * 2 * 1 * 16 * 8 * 128  # K+V read, bf16
    assert len(by["attn_prefill", "bf16"]) == 2  # isl 1024, 4096; fp8 KV and window rows out
    # all-reduce: CUDA-graph rows, message elements -> bytes (bf16)
    ar = by["allreduce", "bf16"]
    assert len(ar) == 4
    a = next(r for r in ar if r["num_gpus"] == 8 and r["bytes"] == 2 * 1048576)
    assert a["time_ms"] == pytest.approx(0.01938976049423218, rel=1e-15)
    for r in rows:
        assert r["license"] == "Apache-2.0"
        assert r["source_package"] == "aiconfigurator-core 0.12.0"
        assert r["framework"] == "vllm" and r["gpu"] == "h100-sxm"
        assert r["source"].startswith("aiconfigurator-core 0.12.0: systems/data/h100_sxm/")


def test_round_trip_to_our_format(tmp_path):
    """import -> write -> read back: every converted number survives exactly (CSV and gz)."""
    rows = _rows()
    for name in ("t.csv", "t.csv.gz"):
        path = tmp_path / name
        write_table(rows, path)
        table = read_optable(path, "h100-sxm")
        assert table.framework == "vllm" and table.framework_version == "0.24.0"
        assert table.name == "h100-sxm__vllm-0.24.0"
        assert table.provenance["license"] == "Apache-2.0"
        assert list(table.dtypes) == [r["dtype"] for r in rows]
        assert np.allclose(table.values["time_s"], [r["time_ms"] * 1e-3 for r in rows], rtol=1e-15)
        for col in ("m", "k", "n", "batch", "ctx", "heads", "kv_heads", "head_dim", "num_gpus"):
            want = np.array([np.nan if r[col] == "" else r[col] for r in rows], float)
            assert np.array_equal(table.values[col], want, equal_nan=True), col
        assert len(table.rows("gemm", "fp8")) == 4 and len(table.rows("gemm", "bf16")) == 4


# aiconfigurator-core 0.12.0's own values, read through its PerfDatabase (GEMM /
# GenerationAttention / CustomAllReduce .load_data on get_database('h100_sxm', 'vllm',
# '0.24.0'), i.e. as its engine loaded them), at points the shipped table keeps.
AIC_H100 = {
    ("gemm", "bf16", 1, 4096, 6144): 0.019898666275872123,
    ("attn_decode", 64, 16, 32, 8, 128): 0.023770667612552643,
    ("allreduce", 8, 2 * 1048576): 0.01938976049423218,
    ("allreduce", 2, 2 * 128): 0.004291520118713379,
}


def test_shipped_h100_table_reproduces_aiconfigurators_values_at_measured_points():
    t = load_optable("h100-sxm__vllm-0.24.0")
    v = t.values

    def at(op, **cols):
        idx = t.rows(op, cols.pop("dtype", None))
        sel = np.ones(len(idx), bool)
        for c, x in cols.items():
            sel &= v[c][idx] == x
        assert sel.sum() == 1, (op, cols)
        return v["time_s"][idx][sel][0] * 1e3

    key = ("gemm", "bf16", 1, 4096, 6144)
    assert at("gemm", dtype="bf16", m=1, k=4096, n=6144) == pytest.approx(AIC_H100[key], rel=1e-12)
    dec = AIC_H100["attn_decode", 64, 16, 32, 8, 128]
    assert at("attn_decode", batch=64, ctx=16, heads=32, kv_heads=8, head_dim=128) == pytest.approx(
        dec, rel=1e-12
    )
    for n, size in ((8, 2 * 1048576), (2, 256)):
        assert at("allreduce", num_gpus=n, bytes=size) == pytest.approx(
            AIC_H100["allreduce", n, size], rel=1e-6
        )


def test_every_shipped_vllm_table_has_provenance_and_the_classes_profiles_need():
    names = [n for n in shipped_tables() if "__vllm-" in n]
    assert sorted(names) == [
        "a100-80gb__vllm-0.14.0",
        "b200__vllm-0.24.0",
        "h100-sxm__vllm-0.24.0",
        "h200__vllm-0.24.0",
        "l40s__vllm-0.24.0",
    ]
    total = sum(shipped_tables()[n].stat().st_size for n in names)
    assert total < 3e6  # compact: only the rows the shipped models need
    for name in names:
        t = load_optable(name)
        assert t.provenance["license"] == "Apache-2.0"
        assert t.provenance["source_package"].startswith("aiconfigurator-core 0.12.0")
        for op in ("gemm", "attn_decode", "attn_prefill", "allreduce"):
            assert len(t.rows(op)) > 0, (name, op)
        assert set(np.unique(t.values["num_gpus"][t.rows("allreduce")])) == {2.0, 4.0, 8.0}
        # fp8 GEMMs wherever the GPU has fp8 tensor cores (not the A100)
        assert (len(t.rows("gemm", "fp8")) > 0) == (t.gpu != "a100-80gb"), name
    assert (shipped_tables()["h100-sxm__vllm-0.24.0"].parent / "NOTICE").is_file()


def _copy_fixture(tmp_path) -> Path:
    dst = tmp_path / "data"
    shutil.copytree(FIXTURE, dst, ignore=shutil.ignore_patterns("README.md"))
    return dst


def _edit(path: Path, column: str, value: str, row: int = 0) -> None:
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        header, rows = reader.fieldnames, list(reader)
    if value == "<drop>":
        header = [c for c in header if c != column]
        rows = [{k: v for k, v in r.items() if k != column} for r in rows]
    else:
        rows[row][column] = value
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=header)
        w.writeheader()
        w.writerows(rows)


@pytest.mark.parametrize(
    "stem, column, value, fragment",
    [
        ("gemm_perf", "device", "NVIDIA H200", "not on h100_sxm"),
        ("gemm_perf", "latency", "nan", "latency must be a positive finite number"),
        ("generation_attention_perf", "latency", "-0.01", "latency must be a positive"),
        ("custom_allreduce_perf", "latency", "", "latency must be a positive"),
        ("context_attention_perf", "isl", "<drop>", "missing column(s) isl"),
    ],
)
def test_bad_source_tables_are_one_error(tmp_path, stem, column, value, fragment):
    data = _copy_fixture(tmp_path)
    op = {"gemm_perf": "gemm", "custom_allreduce_perf": "comm"}.get(stem, "attention")
    _edit(data / SRC.format(op=op, stem=stem), column, value)
    with pytest.raises(
        PerfModelError, match="(?i)" + fragment.replace("(", r"\(").replace(")", r"\)")
    ):
        import_tables("h100_sxm", "vllm", "0.24.0", data)


def test_cli_imports_the_fixture_and_rejects_bad_input(tmp_path):
    out = run_cli(
        "tables", "import", "--system", "h100", "--version", "0.24.0",
        "--source", str(FIXTURE), "--out", str(tmp_path), "--json", check_json=True,
    )  # fmt: skip
    assert out["rows"] == 4 + 4 + 4 + 2 + 4 and out["license"] == "Apache-2.0"
    assert read_optable(out["table"]).name == "h100-sxm__vllm-0.24.0"
    bad = run_cli("tables", "import", "--system", "h100", "--version", "0.99.0",
                  "--source", str(FIXTURE), "--out", str(tmp_path))  # fmt: skip
    assert_one_line_error(bad, "unknown vllm version '0.99.0'", "available: 0.24.0")
    data = _copy_fixture(tmp_path)
    shutil.move(data / "h100_sxm", data / "l40s")  # H100 rows filed as an L40S
    bad = run_cli(
        "tables", "import", "--system", "l40s", "--source", str(data), "--out", str(tmp_path)
    )
    assert_one_line_error(bad, "measured on 'NVIDIA H100 80GB HBM3', not on l40s")
