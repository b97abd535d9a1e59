"""The binary copies of the shipped operator tables (specs/optable_store.py) and the curves
stored in them (core/optable/stored.py): each copy is current (rebuilt here from its CSV and
its GPU's spec, byte for byte; its columns field by field; its curves equal to built ones, to
the last bit and in type), a stale or missing copy is never read, and a shipped table and its
curves load from the copy."""

from __future__ import annotations

import json
import shutil
from dataclasses import fields, replace

import numpy as np
import pytest

from perfmodel.core import collective
from perfmodel.core.optable import load, stored
from perfmodel.core.optable.curves import Curves
from perfmodel.core.optable.interpolate import Curve
from perfmodel.core.optable.table_copy import copy_bytes
from perfmodel.errors import PerfModelError
from perfmodel.specs import optable_store, optables
from perfmodel.specs.hardware import resolve_gpu
from perfmodel.specs.optables import load_optable, read_optable, shipped_tables, stored_extra

SHIPPED = sorted(shipped_tables().items())


def assert_same_fields(stored: dict, parsed: dict) -> None:
    """Every OpTable field equal: arrays in dtype and value (NaN where NaN), strings, dicts."""
    assert stored.keys() == parsed.keys()
    for field, want in parsed.items():
        got = stored[field]
        arrays = want.items() if isinstance(want, dict) and field == "values" else None
        if arrays is not None:
            assert list(got) == list(want), field
            for column, w in arrays:
                assert got[column].dtype == w.dtype, column
                np.testing.assert_array_equal(got[column], w, err_msg=column)  # NaN == NaN
        elif isinstance(want, np.ndarray):
            assert got.dtype == want.dtype, field
            np.testing.assert_array_equal(got, want, err_msg=field)
        else:
            assert type(got) is type(want) and got == want, field


@pytest.mark.parametrize("name,path", SHIPPED, ids=[n for n, _ in SHIPPED])
def test_every_shipped_table_has_a_current_copy(name, path):
    """Stale (the CSV changed since validation/build_optable_store.py ran) or different from
    what parsing the CSV gives: fails, naming the table."""
    stored = optable_store.load(path)
    assert stored is not None, (
        f"{name}: no current binary copy; run python validation/build_optable_store.py"
    )
    assert_same_fields(stored, vars(read_optable(path)))


def test_the_comparison_sees_one_changed_bit():
    path = shipped_tables()["h200__torch-cudagraph"]
    stored, parsed = optable_store.load(path), vars(read_optable(path))
    stored["values"] = dict(stored["values"])
    stored["values"]["time_s"] = stored["values"]["time_s"].copy()
    stored["values"]["time_s"][3] = np.nextafter(stored["values"]["time_s"][3], 1.0)
    with pytest.raises(AssertionError):
        assert_same_fields(stored, parsed)


def test_a_stale_or_missing_copy_is_not_read(tmp_path):
    src = shipped_tables()["h200__torch-cudagraph"]
    csv = tmp_path / src.name
    shutil.copy(src, csv)
    shutil.copy(optable_store.store_path(src), optable_store.store_path(csv))
    assert optable_store.load(csv) is not None  # same bytes: current
    lines = csv.read_text().splitlines(keepends=True)
    csv.write_text("".join([*lines[:-1], lines[-1].replace(",", ", ", 1)]))  # one byte more
    assert optable_store.load(csv) is None
    optable_store.store_path(csv).unlink()
    assert optable_store.load(csv) is None


@pytest.mark.parametrize("cut", [0, 12, 100, 5000, -8])
def test_a_damaged_copy_is_not_read(tmp_path, cut):
    """Cut short at `cut` bytes (negative: from the end), or its header made unreadable."""
    src = shipped_tables()["h200__torch-cudagraph"]
    csv = tmp_path / src.name
    shutil.copy(src, csv)
    data = optable_store.store_path(src).read_bytes()
    optable_store.store_path(csv).write_bytes(data[:cut])
    assert optable_store.load(csv) is None
    optable_store.store_path(csv).write_bytes(data[:20] + b"\xff" * 8 + data[28:])
    assert optable_store.load(csv) is None


def test_a_shipped_table_loads_from_its_copy(monkeypatch):
    """No CSV parsing for a shipped name; the GPU check still applies."""

    def no_parsing(*args, **kwargs):
        raise AssertionError("parsed the CSV")

    load_optable.cache_clear()
    monkeypatch.setattr(optables, "read_optable", no_parsing)
    try:
        table = load_optable("h100-sxm__vllm-0.24.0")
        assert table.gpu == "h100-sxm" and table.name == "h100-sxm__vllm-0.24.0"
        assert table.path == str(shipped_tables()["h100-sxm__vllm-0.24.0"])
        with pytest.raises(PerfModelError, match="measured on 'h100-sxm', not on 'h200'"):
            load_optable("h100-sxm__vllm-0.24.0", "h200")
    finally:
        load_optable.cache_clear()


@pytest.mark.parametrize("name,path", SHIPPED, ids=[n for n, _ in SHIPPED])
def test_every_copy_is_what_its_csv_and_gpu_spec_give(name, path):
    """Byte for byte what validation/build_optable_store.py writes today: a table, GPU spec or
    curve-building change since it last ran fails here."""
    assert copy_bytes(path) == optable_store.store_path(path).read_bytes(), (
        f"{name}: stale copy; run python validation/build_optable_store.py"
    )


def same(a, b, where="curves") -> None:
    """Equal to the last bit and in type all the way down (Curves, mappings in key order,
    tuples, Curve, arrays, scalars)."""
    assert type(a) is type(b) or (hasattr(a, "items") and hasattr(b, "items")), where
    if isinstance(a, Curves):
        for f in fields(Curves):
            if f.name != "table":
                same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif hasattr(a, "items"):
        assert list(a) == list(b), where
        for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True):
            same(ka, kb, f"{where}[{ka}] key")
            same(va, vb, f"{where}[{ka}]")
    elif isinstance(a, tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{where}[{i}]")
    elif isinstance(a, Curve):
        same(a.x, b.x, where + ".x"), same(a.y, b.y, where + ".y")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert a.tobytes() == b.tobytes(), where
    elif a is not None:
        assert a == b or (a != a and b != b), where


@pytest.mark.parametrize("name,path", SHIPPED, ids=[n for n, _ in SHIPPED])
def test_stored_curves_are_the_built_curves(name, path):
    table = read_optable(path)
    hw = resolve_gpu(table.gpu)
    decoded = stored.decode(*stored_extra(name), load_optable(name), hw)
    built = load.build_curves(table, hw)
    assert decoded is not None
    same(decoded, built)
    assert len(decoded.gemm) > 0 and len(decoded.attn_decode) + len(decoded.eltwise) > 0


def test_the_curve_comparison_sees_one_bit():
    table = read_optable(shipped_tables()["h200__torch-cudagraph"])
    a, b = (load.build_curves(table, resolve_gpu(table.gpu)) for _ in range(2))
    key = next(iter(b.gemm))
    exact, ratio = b.gemm[key]
    y = exact.y.copy()
    y[-1] = np.nextafter(y[-1], np.inf)
    b.gemm[key] = (Curve(exact.x, y), ratio)
    with pytest.raises(AssertionError):
        same(a, b)
    b.gemm[key] = (exact, ratio)
    b.gemm_floor_s = np.float64(b.gemm_floor_s)  # same value, another type
    with pytest.raises(AssertionError):
        same(a, b)


def test_a_shipped_tables_curves_are_read_not_built(monkeypatch):
    def no_building(*args, **kwargs):
        raise AssertionError("built the curves")

    load.table_curves.cache_clear()
    monkeypatch.setattr(load, "build_curves", no_building)
    try:
        cv = load.table_curves("h100-sxm__vllm-0.24.0")
        assert cv.fp8 is not None and len(cv.gemm) > 0
    finally:
        load.table_curves.cache_clear()


def test_curves_made_for_other_gpu_figures_are_not_used():
    name = "h100-sxm__vllm-0.24.0"
    table = load_optable(name)
    hw = resolve_gpu(table.gpu)
    assert stored.decode(*stored_extra(name), table, hw) is not None
    faster = replace(hw, hbm_bandwidth_tbps=hw.hbm_bandwidth_tbps * 1.01)
    assert stored.decode(*stored_extra(name), table, faster) is None
    fp8 = replace(hw, peak_tflops={**hw.peak_tflops, "fp8": hw.peak_tflops["fp8"] * 2})
    assert stored.decode(*stored_extra(name), table, fp8) is None


def test_a_table_given_by_path_has_no_stored_curves():
    assert stored_extra(str(shipped_tables()["h200__torch-cudagraph"])) is None
    assert stored_extra("no-such-table") is None


@pytest.mark.parametrize("name,path", SHIPPED, ids=[n for n, _ in SHIPPED])
def test_a_coded_table_answers_as_the_parsed_one(name, path):
    """rows() from the codes, for every op and dtype (and absent ones), before any text
    column is decoded; then the decoded columns equal the parsed ones."""
    stored_copy = optable_store.read(path)
    coded = optables.CodedOpTable(stored_copy.coded, **stored_copy.columns)
    parsed = read_optable(path)
    assert not {"op", "shape", "dtypes"} & set(vars(coded))  # nothing decoded yet
    for op in (*optables.OPS, "nope"):
        for dtype in (None, "bf16", "fp8", "fp32", "nope"):
            got, want = coded.rows(op, dtype), parsed.rows(op, dtype)
            assert got.dtype == want.dtype and np.array_equal(got, want), (op, dtype)
        np.testing.assert_array_equal(coded.col("bytes", op), parsed.col("bytes", op))
    assert not {"op", "shape", "dtypes"} & set(vars(coded))
    assert_same_fields(
        {f.name: getattr(coded, f.name) for f in fields(optables.OpTable)},
        {f.name: getattr(parsed, f.name) for f in fields(optables.OpTable)},
    )
    assert coded.op is coded.op  # decoded once, then kept
    copy = replace(coded)  # every field given as it reads: the same answers
    assert type(copy) is optables.CodedOpTable and copy.op is coded.op
    np.testing.assert_array_equal(copy.rows("gemm", "bf16"), parsed.rows("gemm", "bf16"))
    other = replace(
        optables.CodedOpTable(stored_copy.coded, **stored_copy.columns),
        op=np.full(len(parsed.op), "copy"),
    )
    np.testing.assert_array_equal(other.rows("copy"), np.arange(len(parsed.op)))
    assert len(other.rows("gemm", "bf16")) == 0


def test_a_copy_with_codes_past_its_values_is_not_read(tmp_path):
    src = shipped_tables()["h200__torch-cudagraph"]
    csv = tmp_path / src.name
    shutil.copy(src, csv)
    shutil.copy(optable_store.store_path(src), optable_store.store_path(csv))
    data = bytearray(optable_store.store_path(src).read_bytes())
    header_end = 16 + int.from_bytes(data[8:16], "little")
    offset = json.loads(bytes(data[16:header_end]))["strings"]["op"]["codes"][0]
    assert optable_store.load(csv) is not None
    data[header_end + offset] = 200  # the first row's op: a code with no value
    optable_store.store_path(csv).write_bytes(bytes(data))
    assert optable_store.load(csv) is None


@pytest.mark.parametrize("name,path", SHIPPED, ids=[n for n, _ in SHIPPED])
def test_stored_allreduce_curves_are_the_built_ones(name, path, monkeypatch):
    """Read from the copy (building them fails here), equal to the built ones to the last bit,
    GPU-count keys included; None where the table has no all-reduce rows."""
    built = collective.allreduce_curves(read_optable(path))

    def no_building(table):
        raise AssertionError("built the all-reduce curves")

    collective._table_curves.cache_clear()
    monkeypatch.setattr(collective, "allreduce_curves", no_building)
    try:
        got = collective._table_curves(name)
    finally:
        collective._table_curves.cache_clear()
    if built is None:
        assert got is None and stored_extra(name)[0]["allreduce"] == []
        return
    assert got[:3] == built[:3]
    same(got.by_gpus, built.by_gpus, "by_gpus")
    assert all(type(g) is int for g in got.by_gpus)
