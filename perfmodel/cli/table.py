"""A rich Table whose cells wrap instead of being cut: `1302083333…` hid a number's digits.

Every command builds its tables with this class (imported inside the command, with rich,
so the cold start stays short). A column keeps rich's own options; only the default
overflow changes from "ellipsis" to "fold", so a long value continues on the next line.
"""

from __future__ import annotations

from rich.table import Table as _RichTable


class Table(_RichTable):
    def add_column(self, *args, **kwargs):
        kwargs.setdefault("overflow", "fold")
        return super().add_column(*args, **kwargs)
