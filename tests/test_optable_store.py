"""The binary copies of the shipped operator tables (specs/optable_store.py): each is current
(rebuilt from its CSV here, field by field, to the last bit), a stale or missing copy is never
read, and a shipped table loads from its copy."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from perfmodel.errors import PerfModelError
from perfmodel.specs import optable_store, optables
from perfmodel.specs.optables import load_optable, read_optable, shipped_tables

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
