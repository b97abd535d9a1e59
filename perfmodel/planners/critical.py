"""The critical sequence length as a typed answer, and its one text form.

specdecode.critical_length returns, per batch, the smallest context L with best speedup > 1
(exact to one token), 1 when speculation already pays at the smallest context, nan when it
never pays up to max_len. Those raw numbers read three ways (a length, "every context",
"never"); CriticalLength names them, so every command, report and page shows the same thing:
- JSON: critical_seq_len (int tokens, or null), pays_at_every_context (bool);
  null + true = pays at every context, null + false = does not pay at any context up to
  max_len.
- text (CriticalLength.text): "N tokens", "pays at every context", "does not pay at any
  context up to N".
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

EVERY_CONTEXT = "pays at every context"


class CriticalLength(NamedTuple):
    """Where speculative decoding starts to pay at one batch size (see the module docstring)."""

    batch: int
    max_len: int
    tokens: int | None  # smallest context > 1 where the best speedup exceeds 1
    pays_at_every_context: bool

    @property
    def never_pays(self) -> bool:
        return self.tokens is None and not self.pays_at_every_context

    def text(self) -> str:
        if self.pays_at_every_context:
            return EVERY_CONTEXT
        if self.tokens is None:
            return f"does not pay at any context up to {self.max_len}"
        return f"{self.tokens} tokens"

    def above(self, context: float) -> bool:
        """Whether speculation pays at this context (the context is at or above the critical
        length; always where it pays at every context, never where it never pays)."""
        if self.pays_at_every_context:
            return True
        return self.tokens is not None and context >= self.tokens

    def as_dict(self) -> dict:
        return {
            "critical_seq_len": self.tokens,
            "pays_at_every_context": self.pays_at_every_context,
            "critical_seq_len_text": self.text(),
        }


def from_raw(value, batch, max_len: int) -> CriticalLength:
    """The typed answer for one raw critical_length value (nan, 1 or a length)."""
    v = float(value)
    if not np.isfinite(v):
        return CriticalLength(int(batch), int(max_len), None, False)
    if v <= 1:
        return CriticalLength(int(batch), int(max_len), None, True)
    return CriticalLength(int(batch), int(max_len), int(round(v)), False)


def from_raw_array(values, batches, max_len: int) -> list[CriticalLength]:
    """One CriticalLength per batch from specdecode.critical_length's array."""
    return [
        from_raw(v, b, max_len) for v, b in zip(np.ravel(values), np.ravel(batches), strict=True)
    ]
