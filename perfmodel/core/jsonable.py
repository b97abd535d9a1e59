"""Plain JSON values from planner results: numpy scalars and arrays to Python, NaN/inf to null."""

from __future__ import annotations

import math
from typing import Any

_PLAIN = (str, int, bool, type(None))


def json_ready(value: Any) -> Any:
    """dicts, lists, tuples, numpy scalars/arrays -> JSON-serializable values; non-finite
    floats become None so the output is strict JSON. Plain values are checked by exact type
    first: this runs over every point of a 400k-row validation."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        try:
            value = value.item()
        except (ValueError, TypeError):
            pass
    if hasattr(value, "tolist"):
        return json_ready(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
