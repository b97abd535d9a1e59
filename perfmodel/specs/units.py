"""Parsing of user-given sizes and lists: '4k' -> 4096, '128k' -> 131072, '1,8,64' -> [1, 8, 64].

Sizes are whole counts (tokens, sequences): '2.5' is refused rather than truncated, while
'1.5k' = 1536 is accepted because it is a whole number of tokens; at most MAX_SIZE (2^30,
'1024m': past a billion tokens or sequences a size is a typo). In a list every item must be
present ('1,,2' and '1,' are refused, not silently shortened) and given once ('8,8' is
refused: a sweep would print the same row twice). `choice` reads a word from a fixed set
the same way for every option: case-insensitive, stripped, empty refused.
"""

from __future__ import annotations

import math
import re

from perfmodel.errors import PerfModelError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*$")
_MULTIPLIER = {"": 1, "k": 1024, "m": 1024 * 1024}
MAX_SIZE = 1 << 30


def choice(value: str, choices, what: str) -> str:
    """`value` as one of `choices` (lower-case words), compared case-insensitively."""
    key = str(value).strip().lower()
    if not key:
        raise PerfModelError(f"{what}: no value given (choose {' or '.join(choices)})")
    if key not in choices:
        raise PerfModelError(f"{what} must be {' or '.join(choices)}, got '{str(value).strip()}'")
    return key


def plural(count: float, word: str, many: str | None = None) -> str:
    """'1 GPU', '2 GPUs', '1 sequence', '3 replicas', '0.5 LongBench points' (`many` for
    irregular plurals; a float is written with :g, so 1.0 reads '1 point')."""
    shown = f"{count:g}" if isinstance(count, float) else f"{count}"
    return f"{shown} {word if count == 1 else (many or word + 's')}"


def parse_size(text: str | int, what: str = "size") -> int:
    """'4k' -> 4096, '128K' -> 131072, '1m' -> 1048576, '512' -> 512 (binary k, as in '128k
    context'). The value must be a positive whole number: '2.5' and '0.1k' are refused."""
    if isinstance(text, bool):
        raise PerfModelError(f"{what}: cannot read '{text}' as a size (e.g. 512, 4k, 128k)")
    if isinstance(text, int):
        value = text
    else:
        match = _SIZE.match(str(text))
        if not match:
            raise PerfModelError(f"{what}: cannot read '{text}' as a size (e.g. 512, 4k, 128k)")
        exact = float(match.group(1)) * _MULTIPLIER[match.group(2).lower()]
        if not exact <= MAX_SIZE:  # also inf, from a 400-digit number
            raise PerfModelError(
                f"{what}: '{_short(text)}' is more than {MAX_SIZE} (1024m); a size that large "
                "is a typo"
            )
        if not math.isclose(exact, round(exact), rel_tol=0, abs_tol=1e-9):
            raise PerfModelError(f"{what} must be a whole number, got '{str(text).strip()}'")
        value = int(round(exact))
    if value <= 0:
        raise PerfModelError(f"{what} must be positive, got {str(text).strip()}")
    if value > MAX_SIZE:
        raise PerfModelError(f"{what}: {value} is more than {MAX_SIZE} (1024m)")
    return value


def _short(text) -> str:
    shown = str(text).strip()
    return shown if len(shown) <= 24 else shown[:21] + "..."


def _once(values: list, parts: list[str], text, what: str) -> list:
    """Refuse an item given twice (after reading: '4k,4096' repeats too)."""
    seen: dict = {}
    for value, part in zip(values, parts, strict=True):
        if value in seen:
            raise PerfModelError(
                f"{what}: '{part}' repeats '{seen[value]}' in '{_short(text)}'; give each value once"
            )
        seen[value] = part
    return values


def _items(text: str, what: str) -> list[str]:
    """Split a comma-separated list; an empty item ('1,,2', '1,', '') is an error."""
    parts = [part.strip() for part in str(text).split(",")]
    if any(not part for part in parts):
        shown = str(text).strip()
        raise PerfModelError(
            f"{what}: empty item in '{shown}'" if shown else f"{what}: no value given"
        )
    return parts


def parse_name_list(text: str, what: str = "name", unique: bool = True) -> list[str]:
    """'h100,a100' -> ['h100', 'a100']; an empty item is an error, as for numbers, and so is
    a repeated one (in any case) unless `unique` is False (the caller merges them, saying so)."""
    parts = _items(text, what)
    if unique:
        _once([p.lower() for p in parts], parts, text, what)
    return parts


def parse_size_list(text: str | int, what: str = "size") -> list[int]:
    """'1,8,64' -> [1, 8, 64]; each item as parse_size."""
    if isinstance(text, int) and not isinstance(text, bool):
        return [parse_size(text, what)]
    parts = _items(text, what)
    return _once([parse_size(part, what) for part in parts], parts, text, what)


def parse_one_size(text: str | int, what: str = "size", command: str = "this command") -> int:
    """A single size where a command takes exactly one (a list is refused by name)."""
    values = parse_size_list(text, what)
    if len(values) != 1:
        raise PerfModelError(f"{what}: {command} takes one value, got {len(values)}")
    return values[0]


def parse_float_list(text: str | float, what: str = "value") -> list[float]:
    """'0.1,0.3' -> [0.1, 0.3]; every item must be a finite number."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        values = [float(text)]
    else:
        values = []
        parts = _items(text, what)
        for part in parts:
            try:
                values.append(float(part))
            except ValueError as exc:
                raise PerfModelError(f"{what}: cannot read '{part}' as a number") from exc
    for value in values:
        if not math.isfinite(value):
            raise PerfModelError(f"{what}: '{value}' is not a finite number")
    if len(values) > 1:
        _once(values, parts, text, what)
    return values
