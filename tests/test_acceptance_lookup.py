"""The acceptance look-up's shortcuts answer as the full look-up does.

resolve_bases skips the per-budget look-up of a (target, draft, KV method) pair the shipped
table has no row of (_has_pair), works out the per-row rates only when a pair has rows, and
lowers the rows' model names once (_pair_mask). Here: the shortcut's pairs are exactly those
the full look-up refuses whatever the budget, the masks are the case-insensitive matches, and
the rates are the per-row inversion of the published lengths.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from perfmodel.errors import PerfModelError
from perfmodel.paths import DATA_DIR
from perfmodel.planners.speculation import acceptance as acc

with open(DATA_DIR / acc.ACCEPTANCE_FILE, newline="") as fh:
    ROWS = list(csv.DictReader(fh))
SHIPPED = sorted({(r["target"], r["draft"], r["method"].lower()) for r in ROWS})
NAMES = sorted({r["target"] for r in ROWS} | {r["draft"] for r in ROWS} | {"Llama-3.1-405B"})


def test_the_table_has_pairs_to_check():
    assert len(SHIPPED) >= 2 and len(ROWS) >= 10


@pytest.mark.parametrize("method", ["full", "streamingllm", "snapkv"])
@pytest.mark.parametrize("target", NAMES)
@pytest.mark.parametrize("draft", NAMES)
def test_a_pair_without_rows_is_refused_at_every_budget(target, draft, method):
    has = acc._has_pair(target, draft, method)
    assert has == ((target, draft, method) in SHIPPED)
    expected = np.array(
        [
            r["target"].lower() == target.lower()
            and r["draft"].lower() == draft.lower()
            and r["method"] == method
            for r in ROWS
        ]
    )
    assert np.array_equal(acc._pair_mask(target.upper(), draft.lower(), method), expected)
    if not has:
        for budget in (256.0, 512.0, np.inf):
            with pytest.raises(PerfModelError, match="no published acceptance data"):
                acc.published_acceptance(target, draft, method, budget, [8192.0])


def test_rates_are_the_inverted_lengths_of_every_row():
    table = acc.acceptance_table()
    lengths = np.array([float(r["acceptance_len"]) for r in ROWS])
    gammas = np.array([float(r["gamma"]) for r in ROWS])
    assert np.array_equal(table["rate"], acc.acceptance_rate_from_length(lengths, gammas))
    e = acc.expected_accepted(table["rate"], gammas)
    np.testing.assert_allclose(e, lengths, rtol=1e-9)
