"""A binary copy of each shipped operator table, so that a cold start does not parse CSV.

Reading a 10,000-row gzip CSV table (specs/optables.read_optable: csv module, numpy
conversion and every check) takes 50-130 ms, and `recommend` reads five of them (one per
alternative GPU type). Beside each shipped table perfmodel/optables/NAME.csv[.gz] lies
NAME.npz: the columns read_optable parsed from that file (compressed numpy arrays, about 90 kB,
read in about 3 ms), the table's GPU, framework, first dtype and provenance, and the SHA-256
of the CSV bytes they came from.

`load` returns the table from the copy only when that hash equals the CSV's (hashing the file
costs well under a millisecond), else None and the caller parses the CSV: a stale or missing
copy is never used, so an edited table is read as written. User tables (a path) always take
the CSV path. A copy in the package rather than a cache in the user's home: the first run of
a fresh install is fast too, and nothing is written outside the package.

`write` builds the copy from read_optable's result (validation/build_optable_store.py writes
them all); tests/test_optable_store.py rebuilds each from its CSV and fails when one is stale
or differs from what parsing the CSV gives.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

FORMAT = 1  # bump when OpTable's fields change: older copies are then not read
_STRINGS = ("op", "shape", "dtypes")


def store_path(csv_path: str | Path) -> Path:
    """NAME.npz beside NAME.csv or NAME.csv.gz."""
    csv_path = Path(csv_path)
    name = csv_path.name
    for suffix in (".csv.gz", ".csv"):
        if name.endswith(suffix):
            return csv_path.with_name(name[: -len(suffix)] + ".npz")
    return csv_path.with_suffix(".npz")


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write(table, csv_path: str | Path) -> Path:
    """Write the binary copy of `table` (specs.optables.OpTable: read_optable's result for
    `csv_path`)."""
    meta = {
        "format": FORMAT,
        "source_sha256": sha256(csv_path),
        "gpu": table.gpu,
        "framework": table.framework,
        "dtype": table.dtype,
        "provenance": table.provenance,
        "values": list(table.values),
    }
    arrays = {c: getattr(table, c) for c in _STRINGS}
    arrays.update({f"values_{c}": v for c, v in table.values.items()})
    out = store_path(csv_path)
    np.savez_compressed(out, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)
    return out


def load(csv_path: str | Path) -> dict | None:
    """The fields of the OpTable parsed from `csv_path` (keyword arguments of
    specs.optables.OpTable), from its binary copy; None when there is no copy or it is stale
    (another CSV, another format): the caller then reads the CSV."""
    npz = store_path(csv_path)
    if not npz.is_file():
        return None
    with np.load(npz, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        if meta.get("format") != FORMAT or meta.get("source_sha256") != sha256(csv_path):
            return None
        strings = {c: z[c] for c in _STRINGS}
        values = {c: z[f"values_{c}"] for c in meta["values"]}
    return dict(
        gpu=meta["gpu"],
        framework=meta["framework"],
        path=str(csv_path),
        op=strings["op"],
        shape=strings["shape"],
        values=values,
        dtype=meta["dtype"],
        provenance=meta["provenance"],
        dtypes=strings["dtypes"],
    )
