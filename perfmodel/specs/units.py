"""Parsing of user-given sizes and lists: '4k' -> 4096, '128k' -> 131072, '1,8,64' -> [1, 8, 64]."""

from __future__ import annotations

import re

from perfmodel.errors import PerfModelError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*$")


def parse_size(text: str | int, what: str = "size") -> int:
    """'4k' -> 4096, '128K' -> 131072, '1m' -> 1048576, '512' -> 512 (binary k, as in '128k context')."""
    if isinstance(text, int):
        value = text
    else:
        match = _SIZE.match(str(text))
        if not match:
            raise PerfModelError(f"{what}: cannot read '{text}' as a size (e.g. 512, 4k, 128k)")
        number, suffix = float(match.group(1)), match.group(2).lower()
        value = int(round(number * {"": 1, "k": 1024, "m": 1024 * 1024}[suffix]))
    if value <= 0:
        raise PerfModelError(f"{what} must be positive, got {text}")
    return value


def parse_size_list(text: str | int, what: str = "size") -> list[int]:
    if isinstance(text, int):
        return [parse_size(text, what)]
    return [parse_size(part, what) for part in str(text).split(",") if part.strip()]


def parse_float_list(text: str | float, what: str = "value") -> list[float]:
    if isinstance(text, int | float):
        return [float(text)]
    out = []
    for part in str(text).split(","):
        if not part.strip():
            continue
        try:
            out.append(float(part))
        except ValueError as exc:
            raise PerfModelError(f"{what}: cannot read '{part.strip()}' as a number") from exc
    if not out:
        raise PerfModelError(f"{what}: no value given")
    return out
