"""YAML reading: always safe (no arbitrary objects), with libyaml's C loader when present.

A command reads some 20 shipped YAML files (GPU specs, profiles, the model registry, fitted
transfer latencies). Importing PyYAML (~11 ms: its reader compiles a large regex) and parsing
them with it (~7 ms even with the C loader) took a fifth of `recommend`'s cold start, so the
shipped files are also kept as JSON: `MIRROR` (perfmodel/data/yaml_mirror.json) maps the
digest (BLAKE2b-256, specs/digest.py) of each shipped file's text to the JSON text of what `yaml.safe_load` returns for it.
`safe_load(text)` looks the text's hash up there first (json.loads: ~20 us a file) and parses
with PyYAML, imported on first use, only on a miss. The key is the text itself, so the mirror
cannot go stale: an edited or user-written file has another hash and is parsed as YAML, with
YAML's errors. `mirror_entries` builds the mirror (validation/build_optable_store.py writes it;
tests/test_yamlio.py fails while it differs from what PyYAML gives for the shipped files).
Only documents that JSON returns exactly (same types, same values) are mirrored.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from perfmodel.paths import DATA_DIR, HARDWARE_DIR, PACKAGE_DIR
from perfmodel.specs.digest import digest

MIRROR = DATA_DIR / "yaml_mirror.json"


def shipped_yaml_files() -> list[Path]:
    """The YAML files shipped with perfmodel (its package and hardware_specs/)."""
    return sorted([*PACKAGE_DIR.rglob("*.yaml"), *HARDWARE_DIR.rglob("*.yaml")])


def text_key(text: str) -> str | None:
    """The digest (specs/digest.py) of the text's UTF-8 bytes (None: text that has no UTF-8
    form)."""
    try:
        return digest(text.encode("utf-8"))
    except UnicodeEncodeError:
        return None


@lru_cache(maxsize=1)
def _mirror() -> dict[str, str]:
    try:
        return json.loads(MIRROR.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # no mirror (or an unreadable one): every file as YAML
        return {}


def safe_load(text: str):
    """What yaml.safe_load(text) returns (libyaml's C loader when present); the JSON
    mirror's copy when `text` is a shipped file's text."""
    mirrored = _mirror().get(text_key(text))
    if mirrored is not None:
        return json.loads(mirrored)
    return yaml_load(text)


def yaml_load(text: str):
    """Parse with PyYAML's safe loader (the C one when libyaml is present)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader subclass


def mirror_entries(paths: list[Path]) -> dict[str, str]:
    """{text_key: JSON of the parsed document} of the files whose document JSON gives back
    exactly (a timestamp, a non-text key or a tuple would not be: those stay YAML)."""
    out = {}
    for path in paths:
        text = path.read_text(encoding="utf-8")
        doc = yaml_load(text)
        try:
            encoded = json.dumps(doc, separators=(",", ":"))  # key order kept
        except (TypeError, ValueError):  # e.g. a date, a tuple key
            continue
        if identical(json.loads(encoded), doc):
            out[text_key(text)] = encoded
    return dict(sorted(out.items()))


def identical(a, b) -> bool:
    """Equal values of the same types all the way down (1 == 1.0 == True is not enough)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(
            identical(ka, kb) and identical(a[ka], b[kb]) for ka, kb in zip(a, b, strict=True)
        )
    if isinstance(a, list):
        return len(a) == len(b) and all(identical(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and a != a:  # NaN
        return b != b
    return a == b


def mirror_text() -> str:
    """MIRROR's text, from the shipped YAML files (validation/build_optable_store.py writes it)."""
    return json.dumps(mirror_entries(shipped_yaml_files()), indent=0, sort_keys=True) + "\n"


def __getattr__(name: str):
    """yamlio.YAMLError: PyYAML's error class, imported only when asked for (an `except`
    clause evaluates it only when something was raised)."""
    if name == "YAMLError":
        import yaml

        return yaml.YAMLError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
