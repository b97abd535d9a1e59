"""Write the binary copy (NAME.npz) of every shipped operator table (specs/optable_store.py)
and the JSON mirror of the shipped YAML files (specs/yamlio.py).

    python validation/build_optable_store.py   # after adding or changing a table in
                                               # perfmodel/optables/ or a shipped YAML file

A copy whose hash and arrays are already current is left as it is (an .npz written again
differs in its zip timestamps only). tests/test_optable_store.py fails while a copy is stale.
"""

from __future__ import annotations

import numpy as np

from perfmodel.specs import optable_store, yamlio
from perfmodel.specs.optables import read_optable, shipped_tables


def main() -> None:
    for name, path in shipped_tables().items():
        table = read_optable(path)
        stored = optable_store.load(path)
        if stored is not None and same_table(stored, vars(table)):
            print(f"{name}: current")
            continue
        print(f"{name}: wrote {optable_store.write(table, path)}")
    print(f"YAML mirror: wrote {yamlio.write_mirror()}")


def same_table(a: dict, b: dict) -> bool:
    """Field by field, arrays by dtype and value (NaN equal to NaN)."""

    def same(x, y) -> bool:
        if isinstance(x, dict):
            return isinstance(y, dict) and x.keys() == y.keys() and all(same(x[k], y[k]) for k in x)
        if isinstance(x, np.ndarray):
            return (
                isinstance(y, np.ndarray)
                and x.dtype == y.dtype
                and np.array_equal(x, y, equal_nan=x.dtype.kind == "f")
            )
        return type(x) is type(y) and x == y

    return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)


if __name__ == "__main__":
    main()
