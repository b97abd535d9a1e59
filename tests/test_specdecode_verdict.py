"""The MagicDec commands (specdecode, critical-length, min-acceptance) lead with one memory
verdict, from one function (planners.specdecode.no_fit_verdict over the feasibility layer's
memory_verdict), in text ("does not fit: ...") and in --json (does_not_fit); a setup that
does not fit still answers (exit 0, its figures hypothetical), as predict without --strict."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np

from perfmodel.cli.main import main
from perfmodel.core.deployment import make_deployment
from perfmodel.core.memory import memory_report
from perfmodel.planners import specdecode as sd
from perfmodel.planners.speculation.deploy import helper_deployment
from perfmodel.planners.speculation.drafts import DraftConfig

TOO_SMALL = ("--model", "405b", "--gpu", "h100", "--num-gpus", "1", "--draft", "1b")


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    return rc, out.getvalue(), err.getvalue()


def test_all_three_commands_lead_with_the_same_verdict_and_its_json_field():
    """405B (bf16, ~811 GB of weights) on one H100: every command's first line is the
    verdict, the same at the same point (batch 1, context 8k, 1b draft with full KV), equal
    to its --json does_not_fit and to specdecode's --json memory figures; exit 0."""
    sd_json = json.loads(cli("specdecode", *TOO_SMALL, "--draft-kv", "full", "--json")[1])
    mem = sd_json["memory"]
    assert not mem["fits"] and mem["total_gb"] > 2 * 405e9 / 1e9  # weights alone
    expected = (
        f"at batch 1, context 8192 no draft configuration fits beside the target: "
        f"{mem['total_gb']:.1f} GB per GPU needed, {mem['capacity_gb']:.1f} GB usable "
        f"({mem['total_gb'] - mem['capacity_gb']:.1f} GB short)."
    )
    for command in ("specdecode", "min-acceptance"):
        rc, out, _ = cli(command, *TOO_SMALL, "--draft-kv", "full")
        assert rc == 0
        assert " ".join(out.split()).startswith(f"does not fit: {expected}"), out
        rc, payload, _ = cli(command, *TOO_SMALL, "--draft-kv", "full", "--json")
        if command != "specdecode":  # specdecode's JSON keeps fits/memory/excluded_oom
            assert rc == 0 and json.loads(payload)["does_not_fit"] == expected
    rc, out, _ = cli("critical-length", *TOO_SMALL, "--batch", "1,4", "--max-len", "8k")
    crit = json.loads(cli("critical-length", *TOO_SMALL, "--batch", "1,4", "--json")[1])
    assert rc == 0 and out.startswith("does not fit: ")
    assert crit["does_not_fit"].startswith("2 of 2 points have no draft configuration")
    assert all(e["fits"] is False for e in crit["curve"])


def test_a_setup_that_fits_has_no_verdict():
    for args in (
        ("critical-length", "--model", "8b", "--gpu", "h100", "--batch", "16"),
        ("min-acceptance", "--model", "8b", "--gpu", "h100", "--batch", "8"),
    ):
        rc, out, _ = cli(*args)
        assert rc == 0 and "does not fit" not in out
        assert json.loads(cli(*args, "--json")[1])["does_not_fit"] is None


def test_draft_memory_verdict_is_specdecode_memory_and_self_speculation_has_no_weights():
    """The verdict's figures are the grid's memory (specdecode_memory) for a 1b draft and for
    self-speculation; the self draft adds its compressed KV only (no second 405B of weights),
    at pp > 1 exactly min(B, tokens) more tokens of the target's cache."""
    for pp in (1, 2):
        dep = make_deployment("405b", "h100", 8 * pp, tp=8, pp=pp)
        for cfg in (DraftConfig("1b", "full"), DraftConfig("self", "streamingllm", 512.0)):
            v = sd.draft_memory_verdict(dep, cfg, 64, 32768)
            draft = helper_deployment(dep, cfg.draft, "draft")
            grid = sd.specdecode_memory(dep, draft, 64, 32768, 0, cfg.budget, cfg.self_speculation)
            assert not v.ok and v.reasons[0].value == float(np.max(grid.total_gb))
        alone = float(memory_report(dep, 64, 32768, 0).total_gb)
        assert alone < v.reasons[0].value < alone + 5.0  # KV of 512 tokens x 64, no weights
    assert v.reasons[0].value == float(memory_report(dep, 64, 32768, 512).total_gb)
