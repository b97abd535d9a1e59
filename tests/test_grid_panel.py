"""perfmodel.cli.grid_panel prints what rich prints, byte for byte, without importing rich.

`recommend`'s human output is a rich Panel around a two-column Table.grid; where the output
is plain text grid_panel.render lays it out itself (cold start). Checked against rich on
generated panels (hypothesis: widths, long words that fold, several spaces, colour tags,
titles wider than the panel), on the 17 golden recommend answers, and the fall-backs to rich.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.console import Console
from rich.panel import Panel

from perfmodel.cli import grid_panel
from perfmodel.cli.commands.recommend import _print_human
from perfmodel.cli.grid_panel import SINGLE_CELL_SYMBOLS, plain_text, render
from perfmodel.cli.table import Table

GOLDEN = Path(__file__).resolve().parent / "fixtures" / "recommend_golden"


def rich_panel(rows, title, subtitle, width: int) -> str:
    """What recommend printed before grid_panel: the rich objects themselves."""
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold", justify="right")
    t.add_column()
    for label, value in rows:
        t.add_row(label, value)
    out = io.StringIO()
    Console(file=out, width=width).print(Panel(t, title=title, subtitle=subtitle, expand=False))
    return out.getvalue()


_chars = st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789.,;()/$%+-=x" + SINGLE_CELL_SYMBOLS)
_word = st.text(_chars, min_size=1, max_size=12) | st.text(_chars, min_size=20, max_size=70)
_space = st.sampled_from([" ", " ", " ", "  ", "   "])


@st.composite
def _cell(draw, max_words: int):
    words = draw(st.lists(_word, min_size=0, max_size=max_words))
    text = "".join(w + draw(_space) for w in words)
    text = draw(st.sampled_from(["", " "])) + text.rstrip(" ") + draw(st.sampled_from(["", " "]))
    if text and draw(st.booleans()):
        cut = draw(st.integers(0, len(text)))
        color = draw(st.sampled_from(["green", "yellow"]))
        text = f"{text[:cut]}[{color}]{text[cut:]}[/{color}]"
    return text


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.tuples(_cell(3), _cell(40)), min_size=1, max_size=6),
    title=st.none() | _cell(25),
    subtitle=st.none() | _cell(25),
    width=st.integers(grid_panel.MIN_WIDTH, 200),
)
def test_render_matches_rich(rows, title, subtitle, width):
    plain = [(plain_text(a), plain_text(b)) for a, b in rows]
    heads = [None if t is None else plain_text(t) for t in (title, subtitle)]
    # refused (e.g. `a:b:` could be an emoji code): print_grid_panel leaves those to rich
    assume(all(a is not None and b is not None for a, b in plain))
    assume(all(h is not None for h, t in zip(heads, (title, subtitle), strict=True) if t))
    got = render(plain, heads[0], heads[1], width)
    if got is not None:  # None: a column squeezed to nothing, left to rich
        assert got == rich_panel(rows, title, subtitle, width)


def test_render_handles_the_width_140_recommend_layout_without_rich():
    rows = [("deployment", "8x h100 " * 30), ("[yellow]no deployment[/yellow]", "x" * 300)]
    plain = [(plain_text(a), plain_text(b)) for a, b in rows]
    got = render(plain, "a title", "a subtitle", 140)
    assert got == rich_panel(rows, "a title", "a subtitle", 140)
    assert max(len(line) for line in got.splitlines()) == 140  # wrapped at the width


def test_symbols_are_one_cell_wide_in_rich():
    assert all(cell_len(c) == 1 for c in SINGLE_CELL_SYMBOLS)


@pytest.mark.parametrize(
    "markup",
    [
        "[bold red]x[/bold red]",  # markup rich reads, not ours
        "a \\[b]",  # an escape
        "see :smile: here",  # an emoji code
        "café",  # not in the checked set
        "[green]open",  # unbalanced
        "x[/yellow]",
        "[green]a[/yellow]",
        "tab\there",
        "two\nlines",
        "[1]",  # rich keeps it, but this module does not decide that
    ],
)
def test_plain_text_refuses_what_it_cannot_vouch_for(markup):
    assert plain_text(markup) is None


def test_plain_text_strips_our_colour_tags():
    assert plain_text("[green]use[/green]: x [yellow]y[/yellow] — 1.2x") == "use: x y — 1.2x"


def _golden_payloads():
    questions = json.loads((GOLDEN / "questions.json").read_text())
    for q in questions:
        if (GOLDEN / f"{q['name']}.rc").read_text().strip() == "0":
            yield q["name"], json.loads((GOLDEN / f"{q['name']}.stdout").read_text())


def _printed(payload, plain: bool, monkeypatch) -> str:
    monkeypatch.setattr(grid_panel, "_plain_console", lambda: plain)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        _print_human(payload)
    return out.getvalue()


def test_golden_answers_print_the_same_as_through_rich(monkeypatch):
    payloads = list(_golden_payloads())
    assert len(payloads) == 17
    for name, payload in payloads:
        fast = _printed(payload, True, monkeypatch)
        assert fast == _printed(payload, False, monkeypatch), name
        assert fast.startswith("╭") and "recommend:" in fast.splitlines()[0]


def test_a_terminal_or_forced_colour_goes_to_rich(monkeypatch):
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    assert grid_panel._plain_console()  # pytest captures stdout: not a terminal
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert not grid_panel._plain_console()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        grid_panel.print_grid_panel([("a", "[green]b[/green]")], "t", "s")
    assert "\x1b[" in out.getvalue()  # rich wrote the colour codes
