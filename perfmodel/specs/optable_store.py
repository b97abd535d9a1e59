"""A binary copy of each shipped operator table, so that a cold start neither parses CSV nor
decompresses anything.

Reading a 10,000-row gzip CSV table (specs/optables.read_optable) takes 50-130 ms, and
`recommend` reads five of them. Beside each shipped table perfmodel/optables/NAME.csv[.gz] lies
NAME.bin, one uncompressed file, memory-mapped (read-only): its arrays are views of the map, so
a command reads from disk only the pages of the columns and curves it uses:

- 8 bytes MAGIC, 8 bytes little-endian header length, the header (JSON), then the arrays,
  each at a multiple of 8 bytes from the start of the file;
- the header: the format, the digest (BLAKE2b-256) of the CSV bytes the copy was made from,
  the table's GPU, framework, first dtype and provenance; `strings`: each text column (op,
  shape, dtypes) as its numpy dtype, its sorted distinct values and the array of their
  indices; `values`: each numeric column, stored as float32 when that gives the float64 back
  exactly (shape and byte counts), else as float64 (times), converted on first use
  (Columns); `extra`: arrays and a JSON-able `meta` the caller stores with the table
  (core/optable/stored.py: the curves built from it).

`read` returns the copy only when its format is FORMAT and its digest is the CSV's (hashing
the file costs about 0.2 ms), else None and the caller parses the CSV: a stale, missing or
damaged copy is never used, so an edited table is read as written. User tables (a path)
always take the CSV path. A copy in the package rather than a cache in the user's home: the
first run of a fresh install is fast too, and nothing is written outside the package.

`encode` gives the bytes of a copy (deterministic: the same table and extras give the same
bytes); validation/build_optable_store.py writes them all (atomically: a process that has the
old copy mapped keeps reading the old file) and tests/test_optable_store.py
rebuilds each from its CSV and fails when a shipped copy differs by one byte.
"""

from __future__ import annotations

import json
import math
import mmap
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from perfmodel.specs.digest import digest

FORMAT = 2  # bump when the layout or OpTable's fields change: older copies are then not read
MAGIC = b"PMOPTAB\x02"
_STRINGS = ("op", "shape", "dtypes")
_ALIGN = 8


class StoredTable:
    """A current copy: `columns` (the keyword arguments of specs.optables.OpTable but the text
    columns), `coded` (each text column as (sorted distinct values, numpy dtype, their
    indices: a view of the map), decoded by `fields` or by specs.optables.CodedOpTable on
    first read), and the caller's `extra_meta` and `extra` arrays written with it. (A plain
    class: a frozen dataclass costs ~0.35 ms of the cold start to define.)"""

    __slots__ = ("columns", "coded", "extra_meta", "extra")

    def __init__(self, columns: dict, coded: dict, extra_meta: dict, extra: dict):
        self.columns, self.coded = columns, coded
        self.extra_meta, self.extra = extra_meta, extra

    @property
    def fields(self) -> dict:
        """Every keyword argument of OpTable, the text columns decoded."""
        return {**self.columns, **{c: decode_strings(*s) for c, s in self.coded.items()}}


def decode_strings(vocab: list[str], dtype: str, codes: np.ndarray) -> np.ndarray:
    """A text column from its sorted distinct values (numpy `dtype`) and their indices."""
    return np.array(vocab, dtype=dtype)[codes]


def store_path(csv_path: str | Path) -> Path:
    """NAME.bin beside NAME.csv or NAME.csv.gz."""
    csv_path = Path(csv_path)
    name = csv_path.name
    for suffix in (".csv.gz", ".csv"):
        if name.endswith(suffix):
            return csv_path.with_name(name[: -len(suffix)] + ".bin")
    return csv_path.with_suffix(".bin")


def source_digest(path: str | Path) -> str:
    """The digest of a table's CSV bytes (specs/digest.py: BLAKE2b-256, ~0.2 ms a table)."""
    return digest(Path(path).read_bytes())


def encode(table, csv_path: str | Path, extra_meta: dict | None = None, extra=None) -> bytes:
    """The bytes of the copy of `table` (specs.optables.OpTable: read_optable's result for
    `csv_path`) with the caller's extras (float64 arrays)."""
    blobs: list[bytes] = []
    offset = 0  # from the start of the data block

    def put(a: np.ndarray) -> list:
        nonlocal offset
        a = np.ascontiguousarray(a)
        blobs.append(a.tobytes() + b"\0" * (-a.nbytes % _ALIGN))
        at = [offset, a.dtype.str, list(a.shape)]
        offset += len(blobs[-1])
        return at

    strings = {}
    for c in _STRINGS:
        col = getattr(table, c)
        vocab, codes = np.unique(col, return_inverse=True)
        code_type = np.uint8 if len(vocab) <= 256 else np.int32
        strings[c] = {"dtype": col.dtype.str, "vocab": vocab.tolist()}
        strings[c]["codes"] = put(codes.astype(code_type))
    values = []
    for c, v in table.values.items():
        narrow = v.astype(np.float32)
        exact = np.array_equal(narrow.astype(v.dtype), v, equal_nan=True)
        values.append([c, v.dtype.str, put(narrow if exact else v)])
    arrays = {}
    for name, a in (extra or {}).items():
        if a.dtype != np.float64:
            raise TypeError(f"extra array '{name}' is {a.dtype}, not float64")
        arrays[name] = put(a)
    header = {
        "format": FORMAT,
        "source_digest": source_digest(csv_path),
        "gpu": table.gpu,
        "framework": table.framework,
        "dtype": table.dtype,
        "provenance": table.provenance,
        "strings": strings,
        "values": values,
        "extra": {"meta": extra_meta or {}, "arrays": arrays},
    }
    text = json.dumps(header, sort_keys=True).encode("utf-8")
    text += b" " * (-(len(MAGIC) + 8 + len(text)) % _ALIGN)
    return MAGIC + len(text).to_bytes(8, "little") + text + b"".join(blobs)


def read(csv_path: str | Path) -> StoredTable | None:
    """The current copy of the table `csv_path` (None: no copy, another format, or made from
    other CSV bytes: the caller then reads the CSV)."""
    path = store_path(csv_path)
    if not path.is_file():
        return None
    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size < len(MAGIC) + 8:
            return None
        raw = np.frombuffer(mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ), dtype=np.uint8)
    if raw[: len(MAGIC)].tobytes() != MAGIC:
        return None
    size = int.from_bytes(raw[len(MAGIC) : len(MAGIC) + 8].tobytes(), "little")
    start = len(MAGIC) + 8
    try:  # a damaged copy (cut short, edited) is not read either
        header = json.loads(raw[start : start + size].tobytes())
        if header.get("format") != FORMAT:
            return None
        if header.get("source_digest") != source_digest(csv_path):
            return None
        return _stored(raw, header, start + size, csv_path)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None


def _stored(raw: np.ndarray, header: dict, data: int, csv_path) -> StoredTable:
    """The copy's arrays as views of `raw` (the mapped file; `data`: where its arrays start)."""

    def view(at: list) -> np.ndarray:
        offset, dtype, shape = at
        dtype = np.dtype(dtype)
        count = math.prod(shape)
        begin, end = data + offset, data + offset + count * dtype.itemsize
        if offset < 0 or end > len(raw):
            raise ValueError("array past the end of the copy")
        return raw[begin:end].view(dtype).reshape(shape)

    coded = {c: (s["vocab"], s["dtype"], view(s["codes"])) for c, s in header["strings"].items()}
    if set(coded) != set(_STRINGS):
        raise KeyError("text columns")
    for vocab, dtype, codes in coded.values():  # decoded later: checked now, as decoding would
        if (
            np.dtype(dtype).kind != "U"
            or vocab != sorted(set(vocab))
            or not all(isinstance(v, str) for v in vocab)
        ):
            raise ValueError("a text column's values")
        if len(codes) and (codes.min() < 0 or codes.max() >= len(vocab)):
            raise IndexError("a text column's codes")
    values = Columns({c: (view(at), dtype) for c, dtype, at in header["values"]})
    extra = header["extra"]
    columns = dict(
        gpu=header["gpu"],
        framework=header["framework"],
        path=str(csv_path),
        values=values,
        dtype=header["dtype"],
        provenance=header["provenance"],
    )
    arrays = {name: view(at) for name, at in extra["arrays"].items()}
    return StoredTable(columns, coded, extra["meta"], arrays)


class Columns(Mapping):
    """The numeric columns of a copy: each converted from its stored dtype (a view of the
    mapped file) to its own on first access, then kept; a command reads a few of them."""

    def __init__(self, stored: dict[str, tuple[np.ndarray, str]]):
        self._stored, self._done = stored, {}

    def __getitem__(self, name: str) -> np.ndarray:
        got = self._done.get(name)
        if got is None:
            view, dtype = self._stored[name]
            got = self._done[name] = view if view.dtype == np.dtype(dtype) else view.astype(dtype)
        return got

    def __iter__(self):
        return iter(self._stored)

    def __len__(self) -> int:
        return len(self._stored)


def load(csv_path: str | Path) -> dict | None:
    """The fields of the OpTable parsed from `csv_path` (keyword arguments of
    specs.optables.OpTable), from its current copy; None: the caller reads the CSV."""
    stored = read(csv_path)
    return None if stored is None else stored.fields
