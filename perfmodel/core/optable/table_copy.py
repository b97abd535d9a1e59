"""The bytes of a table's binary copy (specs/optable_store.py) with its curves
(stored.py), as the table's CSV and its GPU's spec give them today: what
validation/build_optable_store.py writes and tests/test_optable_store.py compares each shipped
copy with."""

from __future__ import annotations

from pathlib import Path

from perfmodel.core.optable import stored
from perfmodel.core.optable.load import build_curves
from perfmodel.specs import optable_store
from perfmodel.specs.hardware import resolve_gpu
from perfmodel.specs.optables import read_optable


def copy_bytes(csv_path: str | Path) -> bytes:
    """The binary copy of the table at `csv_path`, its curves included."""
    table = read_optable(csv_path)
    meta, arrays = stored.encode(build_curves(table, resolve_gpu(table.gpu)))
    return optable_store.encode(table, csv_path, meta, arrays)
