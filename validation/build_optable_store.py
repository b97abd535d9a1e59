"""Write the binary copy (NAME.bin) of every shipped operator table, its curves included
(specs/optable_store.py, core/optable/stored.py), and the JSON mirror of the shipped YAML
files (specs/yamlio.py).

    python validation/build_optable_store.py   # after adding or changing a table in
                                               # perfmodel/optables/, a GPU spec or a shipped
                                               # YAML file, or the way curves are built

A copy is written only when its bytes change. tests/test_optable_store.py and
tests/test_yamlio.py fail while a copy or the mirror is stale.
"""

from __future__ import annotations

from pathlib import Path

from perfmodel.core.optable.table_copy import copy_bytes
from perfmodel.planners.feasibility.outputs import write_atomic
from perfmodel.specs import optable_store, yamlio
from perfmodel.specs.optables import OPTABLE_DIR, shipped_tables


def write_copy(csv_path: Path) -> str:
    """Write the copy of `csv_path` when it differs; what was done, in words."""
    out, data = optable_store.store_path(csv_path), copy_bytes(csv_path)
    if out.is_file() and out.read_bytes() == data:
        return f"{out.name}: current"
    write_atomic(out, data)  # a process that has the old copy mapped keeps reading it
    return f"{out.name}: wrote {len(data) / 1e6:.2f} MB"


def main() -> None:
    for path in shipped_tables().values():
        print(write_copy(path))
    for old in sorted(OPTABLE_DIR.glob("*.npz")):  # the copies of format 1
        old.unlink()
        print(f"{old.name}: removed (format 1)")
    write_atomic(yamlio.MIRROR, yamlio.mirror_text())
    print(f"YAML mirror: wrote {yamlio.MIRROR}")


if __name__ == "__main__":
    main()
