"""The dashboard's capacity view builds its HTML/Markdown reports only when asked
(app.compute.capacity_report, called by the download buttons), and they report the same plan
as the view's JSON."""

from __future__ import annotations

import json

import pytest

from app import compute
from app.common import SIDEBAR_DEFAULTS

CFG = dict(SIDEBAR_DEFAULTS)  # the sidebar at its defaults: Llama-3.1-8B on one H100, bf16


@pytest.fixture(scope="module")
def cap() -> dict:
    return compute.capacity_view(CFG, 2.0, 4096, 256, 2.0, 0.05, ("h100-sxm",))


def test_view_carries_no_report_text(cap):
    assert "html" not in cap and "markdown" not in cap
    assert cap["report_inputs"] is not None


def test_reports_on_demand_describe_the_views_plan(cap):
    plan = json.loads(cap["json"])
    md = compute.capacity_report(cap, "markdown")
    assert md.startswith(f"# Capacity plan: {plan['model']}")
    assert f"{plan['best']['cost_per_hour']:.2f}" in md
    html = compute.capacity_report(cap, "html")
    assert html.startswith("<!DOCTYPE html>") and plan["model"] in html


def test_unknown_report_kind_is_refused(cap):
    with pytest.raises(ValueError, match="'html' or 'markdown'"):
        compute.capacity_report(cap, "pdf")
