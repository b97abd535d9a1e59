"""Long computations off the page's script run: a page submits one, shows progress and stays
responsive (every other widget answers at once), and picks the result up when it is done.

No model code: the job is a function of app.compute with plain arguments. Results are kept
per argument set (the last MAX_JOBS), so going back to a finished view costs nothing.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import Future, ThreadPoolExecutor

MAX_JOBS = 32
_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="perfmodel-app")
_JOBS: dict[str, tuple[Future, float]] = {}


def _key(fn, args: tuple) -> str:
    return fn.__module__ + "." + fn.__qualname__ + json.dumps(args, sort_keys=True, default=str)


def submit(fn, *args) -> tuple[Future, float]:
    """The job computing fn(*args) (started now unless it already ran or runs) and when it
    started (time.monotonic)."""
    key = _key(fn, args)
    job = _JOBS.get(key)
    if job is None or (job[0].done() and job[0].exception() is not None):
        job = (_POOL.submit(fn, *args), time.monotonic())
        _JOBS[key] = job
        while len(_JOBS) > MAX_JOBS:  # oldest first (dicts keep insertion order)
            _JOBS.pop(next(iter(_JOBS)))
    return job
