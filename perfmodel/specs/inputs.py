"""Reading a user's file and checking its fields: the one layer every loader goes through.

Use it for every input kind (config.json, GPU YAML, profile YAML, operator table, measurement
CSV/JSON, workload file) instead of `Path.read_text`, `json.loads` or `float(value)`:

- `read_text(path, kind)`: the file's text whatever its encoding: UTF-8 with or without a
  byte-order mark, UTF-16 or UTF-32 with a BOM (what Windows PowerShell writes by default),
  UTF-16 without a BOM (recognised by its NUL bytes). Binary or otherwise undecodable content,
  a missing file, a folder or a file over `max_bytes` is one PerfModelError naming the file.
- `read_json(path, kind)` / `read_yaml(path, kind)`: the parsed document (YAML only through
  the safe loader); malformed text is one line with the line number; `mapping=True` (the
  default) also requires a top-level object.
- `text_buffer(path, kind)`: an in-memory text stream for pandas or the csv module, decoded as
  above (so UTF-16 CSVs are read, not refused).
- Field helpers, each taking the mapping, the key and the source (file name) and naming both
  in its error, with what would be accepted:
  `require_int` (a count: a JSON/YAML integer, never a bool, a float or a string, within
  [minimum, maximum]), `require_number` (finite, within bounds, `positive=True` for > 0),
  `require_bool` (true/false only: the string "false" is refused, not read as true),
  `require_str` (non-empty after stripping), `require_mapping`, `require_str_list`,
  `refuse_unknown` (extra fields named); `default=`: returned when the key is absent or
  null. Bounds are physical sanity limits: a value past them is a typo, not a model.

Output files are checked by `planners.feasibility.outputs.check_output_path`.

A new loader (or a new model architecture in specs/models.py) should read its fields with
these helpers, so every file kind refuses the same things with the same words.
"""

from __future__ import annotations

import codecs
import io
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from perfmodel.errors import PerfModelError
from perfmodel.specs import yamlio

MAX_BYTES = 50_000_000  # 50 MB: larger spec files are not specs
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _check_file(path: Path, kind: str, max_bytes: int) -> None:
    if path.is_dir():
        raise PerfModelError(f"{path}: is a directory, not a {kind}")
    if not path.is_file():
        raise PerfModelError(f"{kind} not found: {path}")
    size = path.stat().st_size
    if size > max_bytes:
        raise PerfModelError(
            f"{path}: {size / 1e6:.0f} MB is too large for a {kind} (at most "
            f"{max_bytes / 1e6:.0f} MB)"
        )


def decode(raw: bytes, source: str, kind: str) -> str:
    """Bytes -> text: a BOM names the encoding; NUL bytes in an ASCII pattern mean UTF-16
    without BOM; else UTF-8. Anything else (binary, Latin-1 ...) is refused."""
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            try:
                return raw.decode(encoding)
            except UnicodeDecodeError:
                break
    else:
        if b"\x00" in raw:
            even, odd = raw[0::2], raw[1::2]
            guess = "utf-16-le" if odd.count(0) > len(odd) // 2 else None
            if guess is None and even.count(0) > len(even) // 2:
                guess = "utf-16-be"
            if guess and len(raw) % 2 == 0:
                try:
                    text = raw.decode(guess)
                    if "\x00" not in text:
                        return text
                except UnicodeDecodeError:
                    pass
        else:
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                pass
    raise PerfModelError(
        f"{source}: not a text {kind} (binary or an unknown encoding; save it as UTF-8 or UTF-16)"
    )


def read_text(path: str | Path, kind: str, max_bytes: int = MAX_BYTES) -> str:
    """The text of a user's file; one PerfModelError naming the file on any problem."""
    path = Path(path)
    _check_file(path, kind, max_bytes)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PerfModelError(f"{path}: cannot read the {kind} ({exc.strerror})") from None
    text = decode(raw, str(path), kind)
    if "\x00" in text:
        raise PerfModelError(f"{path}: not a text {kind} (it contains NUL characters)")
    return text


def text_buffer(path: str | Path, kind: str, max_bytes: int = MAX_BYTES) -> io.StringIO:
    """read_text as a stream, for pandas.read_csv / csv.reader."""
    return io.StringIO(read_text(path, kind, max_bytes), newline="")


def _require_mapping_doc(data: Any, source: str, kind: str, what: str) -> dict:
    if not isinstance(data, dict):
        shown = "an empty file" if data is None else _type_name(data)
        raise PerfModelError(f"{source}: a {kind} must be {what}, got {shown}")
    return data


def read_json(path: str | Path, kind: str, mapping: bool = True, max_bytes: int = MAX_BYTES):
    """A JSON document (an object unless mapping=False)."""
    text = read_text(path, kind, max_bytes)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PerfModelError(f"{path}: malformed JSON at line {exc.lineno}: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:  # 5000-digit integers, 10^5 nested lists
        raise PerfModelError(f"{path}: unreadable JSON ({str(exc)[:80]})") from None
    if mapping:
        return _require_mapping_doc(data, str(path), kind, "a JSON object {...}")
    return data


def read_yaml(path: str | Path, kind: str, mapping: bool = True, max_bytes: int = MAX_BYTES):
    """A YAML document through the safe loader (a mapping unless mapping=False)."""
    text = read_text(path, kind, max_bytes)
    try:
        data = yamlio.safe_load(text)
    except yamlio.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or exc.__class__.__name__
        raise PerfModelError(f"{path}: malformed YAML{where} ({problem})") from None
    except (ValueError, RecursionError) as exc:
        raise PerfModelError(f"{path}: unreadable YAML ({str(exc)[:80]})") from None
    if mapping:
        return _require_mapping_doc(data, str(path), kind, "a mapping of 'field: value' lines")
    return data


def to_float(value) -> float:
    """One cell as a float: NaN when it is not a number; inf past float's range (a
    400-digit integer), so a finiteness check refuses it instead of an OverflowError."""
    if isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except OverflowError:
        return math.inf
    except (TypeError, ValueError):
        return math.nan


# --- field helpers ------------------------------------------------------------------------
_MISSING = object()


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, float):
        return "a fraction" if math.isfinite(value) else "not finite"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if value is None:
        return "null"
    return type(value).__name__


def _get(data: Mapping, key: str, source: str, default: Any) -> tuple[Any, bool]:
    """(value, True) when given; (default, False) when absent or null and a default exists."""
    if not isinstance(data, Mapping):
        raise PerfModelError(f"{source}: expected a mapping of fields, got {_type_name(data)}")
    value = data.get(key, _MISSING)
    if value is _MISSING or (value is None and default is not _MISSING):
        if default is _MISSING:
            raise PerfModelError(f"{source}: missing field '{key}'")
        return default, False
    return value, True


def check_int(
    value: Any, field: str, source: str, minimum: int | None = 1, maximum: int | None = None
) -> int:
    """A count: an integer (1.0 from a JSON writer is accepted; 2.5, true, '8' are not)."""
    accepted = _int_range(minimum, maximum)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise PerfModelError(
            f"{source}: field '{field}' must be an integer {accepted}, got {_type_name(value)} "
            f"({_shown(value)})"
        )
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise PerfModelError(
            f"{source}: field '{field}' must be an integer {accepted}, got {_shown(value)}"
        )
    return value


def _int_range(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f"from {minimum} to {maximum}"
    if minimum is not None:
        return f">= {minimum}"
    return f"<= {maximum}" if maximum is not None else ""


def check_number(
    value: Any,
    field: str,
    source: str,
    minimum: float | None = None,
    maximum: float | None = None,
    positive: bool = False,
) -> float:
    """A finite number (int or float, never a bool or a string) within the bounds."""
    lower = "> 0" if positive else (f">= {minimum:g}" if minimum is not None else "")
    upper = f"<= {maximum:g}" if maximum is not None else ""
    accepted = " and ".join(x for x in (lower, upper) if x) or "finite"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PerfModelError(
            f"{source}: field '{field}' must be a number ({accepted}), got {_type_name(value)} "
            f"({_shown(value)})"
        )
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    bad = not math.isfinite(number)
    bad = bad or (positive and number <= 0) or (minimum is not None and number < minimum)
    bad = bad or (maximum is not None and number > maximum)
    if bad:
        raise PerfModelError(
            f"{source}: field '{field}' must be a finite number {accepted}, got {_shown(value)}"
        )
    return number


def require_int(
    data: Mapping,
    key: str,
    source: str,
    minimum: int | None = 1,
    maximum: int | None = None,
    default: Any = _MISSING,
) -> int:
    """data[key] as a count in [minimum, maximum]; `default` when absent or null (if given)."""
    value, given = _get(data, key, source, default)
    if not given:
        return value
    return check_int(value, key, source, minimum, maximum)


def require_number(
    data: Mapping,
    key: str,
    source: str,
    minimum: float | None = None,
    maximum: float | None = None,
    positive: bool = False,
    default: Any = _MISSING,
) -> float:
    """data[key] as a finite float within the bounds (`positive`: strictly > 0)."""
    value, given = _get(data, key, source, default)
    if not given:
        return value
    return check_number(value, key, source, minimum, maximum, positive)


def require_positive_finite(
    data: Mapping, key: str, source: str, maximum: float | None = None, default: Any = _MISSING
) -> float:
    return require_number(data, key, source, maximum=maximum, positive=True, default=default)


def require_bool(data: Mapping, key: str, source: str, default: Any = _MISSING) -> bool:
    """true or false only: a string ("false"), 0/1 or null is refused, not guessed."""
    value, given = _get(data, key, source, default)
    if not given:
        return value
    if not isinstance(value, bool):
        raise PerfModelError(
            f"{source}: field '{key}' must be true or false, got {_type_name(value)} "
            f"({_shown(value)})"
        )
    return value


def require_str(
    data: Mapping, key: str, source: str, default: Any = _MISSING, empty_ok: bool = False
) -> str:
    """A string; empty (after stripping) refused unless empty_ok. Numbers are not names."""
    value, given = _get(data, key, source, default)
    if not given:
        return value
    if not isinstance(value, str):
        raise PerfModelError(
            f"{source}: field '{key}' must be a string, got {_type_name(value)} ({_shown(value)})"
        )
    if not empty_ok and not value.strip():
        raise PerfModelError(f"{source}: field '{key}' must not be empty")
    return value.strip()


def require_mapping(data: Mapping, key: str, source: str, default: Any = _MISSING) -> dict:
    value, given = _get(data, key, source, default)
    if not given:
        return value
    if not isinstance(value, dict):
        raise PerfModelError(
            f"{source}: field '{key}' must be a mapping (key: value lines), got {_type_name(value)}"
        )
    return value


def require_str_list(data: Mapping, key: str, source: str, default: Any = _MISSING) -> list:
    """A list of non-empty strings (a single string is accepted as a one-item list)."""
    value, given = _get(data, key, source, default)
    if not given:
        return value
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise PerfModelError(
            f"{source}: field '{key}' must be a list of names, got {_type_name(value)}"
        )
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise PerfModelError(
                f"{source}: field '{key}' must be a list of non-empty names, got "
                f"{_shown(item)} in it"
            )
    return [item.strip() for item in value]


def refuse_unknown(data: Mapping, known: Iterable[str], source: str, kind: str) -> None:
    """Every key of `data` must be one of `known` (a typo is named, not ignored)."""
    known = set(known)
    extra = [str(k) for k in data if k not in known]
    if extra:
        raise PerfModelError(
            f"{source}: unknown field '{extra[0]}' in a {kind} (known: {', '.join(sorted(known))})"
        )
