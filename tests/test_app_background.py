"""app.background: one job per argument set (a rerun picks up the running job instead of
starting another), a failed job is retried on the next submit, and old jobs are dropped."""

from __future__ import annotations

import threading

from app import background


def test_one_job_per_argument_set_and_retry_after_failure():
    gate, calls = threading.Event(), []

    def slow(x, cfg):
        calls.append(x)
        gate.wait(timeout=60)  # safety net only: released just below
        if x < 0:
            raise ValueError("bad")
        return x * 2

    a, _ = background.submit(slow, 3, {"model": "8b"})
    b, _ = background.submit(slow, 3, {"model": "8b"})
    assert a is b  # the rerun while it runs gets the same job
    gate.set()
    assert a.result(timeout=60) == 6
    bad, _ = background.submit(slow, -1, {"model": "8b"})
    assert isinstance(bad.exception(timeout=60), ValueError)
    again, _ = background.submit(slow, -1, {"model": "8b"})
    assert again is not bad  # a failure is not cached
    again.exception(timeout=60)
    assert calls == [3, -1, -1]


def test_old_jobs_are_dropped():
    for i in range(background.MAX_JOBS + 5):
        background.submit(int, str(i))
    assert len(background._JOBS) <= background.MAX_JOBS
