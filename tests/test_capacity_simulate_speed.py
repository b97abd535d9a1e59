"""The capacity check's shortcuts in the step simulator give the general engine's exact
answer: property tests on hypothesis-generated small workloads (no timing)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from perfmodel.planners.capacity.simulate import EngineConfig, prefill_first_run, simulate_engine

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


@settings(max_examples=60, deadline=None)
@given(workloads(), st.integers(1, 6), st.integers(1, 400), st.booleans())
def test_the_capacity_checks_event_loop_is_the_general_engines_run(wl, batch, max_steps, slow):
    """prefill_first_run (simulate_replica's engine, event by event) gives simulate_engine's
    run bit for bit: send, first-token and finish times, step count and completeness, also
    when the step limit cuts the run short; prompts repeat so a prefill is looked up by
    length, as simulate_replica prices it."""
    arrivals, prompts, outputs = wl
    prompts = np.where(prompts > 200, 300.0, prompts)  # repeated lengths
    by_len = {float(x): 1e-4 * float(x) + 0.003 for x in prompts}
    step = (0.02 if slow else 0.004) + 0.001 * np.arange(1, batch + 1)

    def cost(pre_tokens, _ctx, n_decode, _dctx):
        return by_len[pre_tokens] if pre_tokens else float(step[n_decode - 1])

    cfg = EngineConfig(max_num_seqs=batch, max_prefills_per_step=1, max_steps=max_steps)
    general = simulate_engine(arrivals, prompts, outputs, cost, cfg)
    fast = prefill_first_run(arrivals, prompts, outputs, by_len, step, batch, max_steps)
    assert _same(general, fast)


def test_the_event_loop_leaves_fractional_outputs_to_the_general_engine():
    one = np.array([0.0]), np.array([10.0]), np.array([2.5])
    assert prefill_first_run(*one, {10.0: 0.1}, np.array([0.01]), 1, 100) is None
    assert prefill_first_run(*one[:2], np.array([2.0]), {10.0: 0.1}, [0.01], 0, 100) is None
