"""The content digest of the shipped-copy checks (specs/optable_store.py: is a table's binary
copy made from these CSV bytes; specs/yamlio.py: is this text a shipped YAML file's): BLAKE2b,
256 bits, from CPython's built-in _blake2 module. hashlib would give the same function, but
importing it loads OpenSSL first (~2 ms of every cold start)."""

from __future__ import annotations

try:
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - a Python without the built-in module
    from hashlib import blake2b


def digest(data: bytes) -> str:
    """BLAKE2b-256 of `data`, as hex."""
    return blake2b(data, digest_size=32).hexdigest()
