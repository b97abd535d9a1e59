"""The capacity check's shortcuts in the step simulator give the general engine's exact
answer: property tests on hypothesis-generated small workloads (no timing)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from perfmodel.planners.capacity.simulate import EngineConfig, simulate_engine

lengths = st.lists(st.integers(1, 400), min_size=1, max_size=40)


@st.composite
def workloads(draw):
    prompts = draw(lengths)
    n = len(prompts)
    outputs = draw(st.lists(st.integers(1, 60), min_size=n, max_size=n))
    gaps = draw(st.lists(st.floats(0.0, 0.5), min_size=n, max_size=n))
    return np.cumsum(gaps), np.array(prompts, float), np.array(outputs, float)


def _same(a, b) -> bool:
    return all(
        np.array_equal(x, y, equal_nan=True)
        for x, y in (
            (a.send_s, b.send_s),
            (a.first_token_s, b.first_token_s),
            (a.finish_s, b.finish_s),
        )
    ) and (a.steps, a.complete) == (b.steps, b.complete)


@settings(max_examples=40, deadline=None)
@given(workloads(), st.integers(1, 8), st.booleans())
def test_a_context_free_cost_skips_the_context_and_changes_nothing(wl, seqs, mixed):
    """decode_context=False (the capacity check's cost reads the batch size only) gives the
    same run as the general loop that computes the mean decode context."""
    arrivals, prompts, outputs = wl

    def cost(pre_tokens, _pre_ctx, n_decode, _dec_ctx):
        return 1e-3 * pre_tokens + 0.01 + 0.002 * n_decode

    cfg = EngineConfig(max_num_seqs=seqs, mixed=mixed, max_num_batched_tokens=512.0)
    full = simulate_engine(arrivals, prompts, outputs, cost, cfg)
    lean = simulate_engine(arrivals, prompts, outputs, cost, cfg, decode_context=False)
    assert _same(full, lean)
