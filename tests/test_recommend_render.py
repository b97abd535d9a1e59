"""recommend's human view: cells are styled rich Text, so values print exactly as given."""

from __future__ import annotations

import io

from rich.console import Console

from perfmodel.cli.commands import recommend as command
from perfmodel.core.options import DeploymentPins
from perfmodel.planners.recommend import recommend


def _render(payload: dict, monkeypatch, color: bool) -> str:
    out = io.StringIO()
    con = Console(file=out, width=120, color_system="standard" if color else None)
    monkeypatch.setattr(command, "console", lambda: con)
    command._print_human(payload)
    return out.getvalue()


def test_values_print_as_given_and_labels_keep_their_styles(monkeypatch):
    payload = recommend(DeploymentPins("8b", gpu="h100", num_gpus=1), 16, 4096, 256).as_dict()
    payload["skipped"] = ["l40s: a [/bold] tag and :smile: in a value"]
    payload["labels"] = ["[red]not markup[/red]"]
    plain = _render(payload, monkeypatch, color=False)
    # markup and emoji codes inside values are text, not rich markup (which would raise
    # on the stray closing tag or print an emoji)
    assert "l40s: a [/bold] tag and :smile: in a value" in plain
    assert "[red]not markup[/red]" in plain
    assert "no deployment" in plain and "\x1b[" not in plain
    colored = _render(payload, monkeypatch, color=True)
    # bold labels, the yellow ones bold and yellow; "use"/"skip" in green or yellow
    assert "\x1b[1m          deployment\x1b[0m" in colored
    assert "\x1b[1;33mno deployment\x1b[0m" in colored
    assert "\x1b[1;33mlabel\x1b[0m" in colored
    assert "\x1b[32muse\x1b[0m" in colored or "\x1b[33mskip\x1b[0m" in colored
