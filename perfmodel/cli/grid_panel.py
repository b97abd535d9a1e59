"""A two-column grid in a titled, rounded panel: rich's layout, without importing rich when
the output is plain text.

`recommend` prints its answer as rich's `Panel(Table.grid(padding=(0, 2)), title, subtitle,
expand=False)`: a bold right-justified label column and a value column, cells folded at the
column width. Importing and running rich for that costs ~30 ms of a ~0.4 s cold start, while
piped output (no terminal: no colour, 140 columns) is plain text whose layout is fixed by a
few of rich's rules. `print_grid_panel` writes that text itself (`render`, the same rules
step by step: measure, column widths, word wrap with folding, justification, panel borders)
when the output is plain and the cells are simple: ASCII and a few single-cell symbols, no
markup but the colour tags this CLI writes, nothing rich would read as an emoji code. Anything
else (a terminal, FORCE_COLOR, a non-UTF-8 stream, another character) goes to rich itself.
tests/test_grid_panel.py checks `render` against rich byte for byte on generated panels.

Rules (rich 13-15: table.py _calculate_column_widths/_collapse_widths, _ratio.ratio_reduce,
measure.Measurement.get, padding.Padding, _wrap.divide_line, text.Text.wrap,
containers.Lines.justify, panel.Panel):
- a cell's width range: (longest word, longest line) + its padding (2 right of the label).
- column widths: each column's widest cell; over the width, the widest column(s) shrink
  (ratio_reduce), then all evenly; the panel is as wide as the grid (+ 4) or its title.
- a cell wraps at word starts; a word wider than the column is cut into column-wide pieces;
  labels are right-justified, values left-justified, lines padded with spaces.
"""

from __future__ import annotations

import builtins
import os
import re
import sys
from collections.abc import Sequence

# the markup this CLI puts in cells: colour tags, removed in plain output
_TAG = re.compile(r"\[(/?)(green|yellow|red|bold)\]")
# characters rich measures as one cell each (tests/test_grid_panel.py checks with rich)
SINGLE_CELL_SYMBOLS = "—–…×≤≥±°µ·→←’‘“”"
_SAFE = re.compile("[\x20-\x7e" + SINGLE_CELL_SYMBOLS + "]*")
_EMOJI = re.compile(r":\S*?:")  # what rich might replace by an emoji (`:name:`)
MIN_WIDTH = 40  # narrower consoles go to rich


def plain_text(markup: str) -> str | None:
    """The text rich shows for this markup, or None when it is not simple enough to say
    here (other markup, an escape, a possible emoji code, a character outside _SAFE,
    unbalanced colour tags)."""
    if "\\" in markup or _EMOJI.search(markup):
        return None
    open_tags: list[str] = []
    for m in _TAG.finditer(markup):
        if not m.group(1):
            open_tags.append(m.group(2))
        elif not open_tags or open_tags.pop() != m.group(2):
            return None
    plain = _TAG.sub("", markup)
    if open_tags or "[" in plain or not _SAFE.fullmatch(plain):
        return None
    return plain


# --- measuring (rich.measure.Measurement: (minimum, maximum) widths) -----------------------
def _normalize(m: tuple[int, int]) -> tuple[int, int]:
    lo, hi = m
    lo = min(max(0, lo), hi)
    return max(0, lo), max(0, max(lo, hi))


def _with_maximum(m: tuple[int, int], width: int) -> tuple[int, int]:
    return min(m[0], width), min(m[1], width)


def _get(max_width: int, measured: tuple[int, int]) -> tuple[int, int]:
    """Measurement.get of a renderable whose own measure is `measured`."""
    if max_width < 1:
        return 0, 0
    m = _with_maximum(_normalize(measured), max_width)
    if m[1] < 1:
        return 0, 0
    return _normalize(m)


def _text_measure(text: str) -> tuple[int, int]:
    lines = text.splitlines()
    longest = max(len(line) for line in lines) if lines else 0
    words = text.split()
    return (max(len(w) for w in words) if words else longest), longest


def _cell_measure(max_width: int, text: str, pad: int) -> tuple[int, int]:
    """Measurement.get of Padding(text, (0, pad, 0, 0)) (pad 0: the text itself)."""
    if not pad:
        return _get(max_width, _text_measure(text))
    if max_width - pad < 1:
        return _get(max_width, (max_width, max_width))
    lo, hi = _get(max_width, _text_measure(text))
    return _get(max_width, _with_maximum((lo + pad, hi + pad), max_width))


class _Grid:
    """Table.grid(padding=(0, 2)) of two columns: padding 2 right of the first only."""

    def __init__(self, rows: Sequence[tuple[str, str]]):
        self.columns = [[r[0] for r in rows], [r[1] for r in rows]]
        self.pads = [2, 0]

    def measure_column(self, max_width: int, i: int) -> tuple[int, int]:
        if max_width < 1:
            return 0, 0
        ms = [_cell_measure(max_width, text, self.pads[i]) for text in self.columns[i]]
        return _with_maximum((max(m[0] for m in ms), max(m[1] for m in ms)), max_width)

    def widths(self, max_width: int) -> list[int]:
        n = len(self.columns)
        widths = [self.measure_column(max_width, i)[1] or 1 for i in range(n)]
        if sum(widths) > max_width:
            widths = _collapse_widths(widths, max_width)
            if sum(widths) > max_width:
                widths = _ratio_reduce(sum(widths) - max_width, [1] * n, widths, widths)
            widths = [self.measure_column(w, i)[1] or 0 for i, w in enumerate(widths)]
        return widths

    def measure(self, max_width: int) -> tuple[int, int]:
        if max_width < 0:
            return 0, 0
        total = sum(self.widths(max_width))
        ms = [self.measure_column(total, i) for i in range(len(self.columns))]
        return sum(m[0] for m in ms), sum(m[1] for m in ms)

    def lines(self, max_width: int) -> list[str] | None:
        """The grid's lines at max_width; None where a column has no room for text."""
        widths = self.widths(max_width)
        if any(w - pad < 1 for w, pad in zip(widths, self.pads, strict=True)):
            return None
        out = []
        for cells in zip(*self.columns, strict=True):
            rendered = [
                _cell_lines(text, w, pad, "right" if i == 0 else "left")
                for i, (text, w, pad) in enumerate(zip(cells, widths, self.pads, strict=True))
            ]
            height = max(len(c) for c in rendered)
            for c, w in zip(rendered, widths, strict=True):
                c.extend([" " * w] * (height - len(c)))
            out.extend("".join(parts) for parts in zip(*rendered, strict=True))
        return out


def _ratio_reduce(total: int, ratios: list[int], maximums: list[int], values: list[int]):
    ratios = [r if m else 0 for r, m in zip(ratios, maximums, strict=True)]
    total_ratio = sum(ratios)
    if not total_ratio:
        return values[:]
    remaining, out = total, []
    for ratio, maximum, value in zip(ratios, maximums, values, strict=True):
        if ratio and total_ratio > 0:
            distributed = min(maximum, round(ratio * remaining / total_ratio))
            out.append(value - distributed)
            remaining -= distributed
            total_ratio -= ratio
        else:
            out.append(value)
    return out


def _collapse_widths(widths: list[int], max_width: int) -> list[int]:
    """Shrink the widest column(s) until the total fits (every column may wrap)."""
    total = sum(widths)
    excess = total - max_width
    while total and excess > 0:
        widest = max(widths)
        second = max(w if w != widest else 0 for w in widths)
        ratios = [1 if w == widest else 0 for w in widths]
        if not any(ratios) or not widest - second:
            break
        widths = _ratio_reduce(excess, ratios, [min(excess, widest - second)] * len(widths), widths)
        total = sum(widths)
        excess = total - max_width
    return widths


# --- wrapping (rich._wrap.divide_line with fold, Text.wrap, Lines.justify) ---------------
_WORD = re.compile(r"\s*\S+\s*")
_TRAILING_SPACE = re.compile(r"\s+$")


def _break_offsets(text: str, width: int) -> list[int]:
    breaks: list[int] = []
    offset = 0
    for m in _WORD.finditer(text):
        start, word = m.start(), m.group(0)
        length = len(word.rstrip())
        if width - offset >= length:
            offset += len(word)
        elif length > width:  # fold the word over lines of `width`
            pieces = [word[i : i + width] for i in range(0, len(word), width)]
            for k, piece in enumerate(pieces):
                if start:
                    breaks.append(start)
                if k == len(pieces) - 1:
                    offset = len(piece)
                else:
                    start += len(piece)
        elif offset and start:
            breaks.append(start)
            offset = len(word)
    return breaks


def _wrap(text: str, width: int, justify: str) -> list[str]:
    offsets = [0, *_break_offsets(text, width), len(text)]
    out = []
    for start, end in zip(offsets, offsets[1:], strict=False):
        line = text[start:end]
        if len(line) > width:  # Text.rstrip_end: trailing space beyond the width
            space = _TRAILING_SPACE.search(line)
            if space is not None:
                line = line[: len(line) - min(len(space.group(0)), len(line) - width)]
        if justify == "right":
            line = line.rstrip()[:width]
            out.append(" " * (width - len(line)) + line)
        else:
            out.append(line[:width].ljust(width))
    return out


def _cell_lines(text: str, width: int, pad: int, justify: str) -> list[str]:
    """A cell rendered at its column width: Padding(text, (0, pad, 0, 0)), lines of `width`."""
    inner = width - pad
    return [line + " " * pad for line in _wrap(text, inner, justify)]


# --- the panel ------------------------------------------------------------------------------
def _edge(left: str, text: str | None, width: int, right: str) -> str:
    """A top or bottom border of `width` cells with text centred in it (Panel.align_text)."""
    if text is None or width <= 4:
        return left + "─" * (width - 2) + right
    text = f" {text} "[: width - 4]
    excess = width - 4 - len(text)
    return f"{left}─{'─' * (excess // 2)}{text}{'─' * (excess - excess // 2)}─{right}"


def render(
    rows: Sequence[tuple[str, str]], title: str | None, subtitle: str | None, width: int
) -> str | None:
    """rich's Panel(Table.grid(padding=(0, 2)) of these (label, value) rows, title=,
    subtitle=, expand=False) printed on a plain console of `width` columns; rows and titles
    are plain text (plain_text), at least one row. None where this does not say what rich
    would print (narrower than MIN_WIDTH, a column squeezed to nothing)."""
    if width < MIN_WIDTH or not rows:
        return None
    title, subtitle = title or None, subtitle or None  # rich shows no empty title
    grid = _Grid(rows)
    # Panel: the child (the grid in Padding (0, 1)) measured at width - 2
    inner = width - 2
    lo, hi = _get(inner, grid.measure(inner))
    child = _get(inner, _with_maximum((lo + 2, hi + 2), inner))[1]
    if title is not None:
        child = min(width - 2, max(child, len(title) + 4))
    body = grid.lines(child - 2)
    if body is None:
        return None
    out = [_edge("╭", title, child + 2, "╮")]
    out.extend(f"│ {line[: child - 2].ljust(child - 2)} │" for line in body)
    out.append(_edge("╰", subtitle, child + 2, "╯"))
    return "\n".join(out) + "\n"


def _plain_console() -> bool:
    """True where rich would print plain text 140 columns wide (see typer_app.console)."""
    from perfmodel.cli.typer_app import _isatty

    env = os.environ
    return not (
        _isatty(sys.stdout)
        or env.get("FORCE_COLOR") is not None
        or env.get("TTY_COMPATIBLE", "") in ("0", "1")
        or hasattr(builtins, "get_ipython")
        or not (getattr(sys.stdout, "encoding", None) or "utf-8").lower().startswith("utf")
    )


def print_grid_panel(
    rows: Sequence[tuple[str, str]], title: str | None = None, subtitle: str | None = None
) -> None:
    """Print the (label, value) rows, markup allowed, in a titled panel: by `render` where
    the output is plain and the text simple, else by rich (bold labels, colour tags)."""
    from perfmodel.cli.typer_app import PLAIN_WIDTH, console, flush_warnings

    plain = [(plain_text(a), plain_text(b)) for a, b in rows]
    heads = [plain_text(t or "") for t in (title, subtitle)]
    text = None
    if all(a is not None and b is not None for a, b in plain) and None not in heads:
        text = render(plain, heads[0], heads[1], PLAIN_WIDTH) if _plain_console() else None
    if text is not None:
        flush_warnings()
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from rich.panel import Panel

    from perfmodel.cli.table import Table

    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold", justify="right")
    t.add_column()
    for label, value in rows:
        t.add_row(label, value)
    console().print(Panel(t, title=title, subtitle=subtitle, expand=False))
