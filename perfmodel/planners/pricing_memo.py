"""Memoized pricing for the planners' searches: prefill and decode-step times of one deployment
at one set of points, computed once per search (or per dashboard session) instead of once per
caller.

core.inference.prefill_time and decode_step_time are pure functions of the deployment and the
points. A capacity search with speculation asks for the same ones many times: the speculator's
prefill at each of the target's precisions (the speculator is BF16 whatever the target's
weights), MagicDec's draft step at every pipeline depth of one TP degree, the baseline prefill in
both SpecPrefill calls. Inside `with memo():` the functions below return the first answer for
an identical question (same deployment by value, same arrays by shape, dtype and bytes);
outside they call core.inference directly. Answers are read-only arrays, so a caller cannot
change what the next one gets.

A Memo may be kept across searches (the dashboard keeps one): its keys are the deployment's
values, never its identity, so a changed GPU, profile or model is a new key. It holds at most
`max_entries` answers (the oldest dropped first).
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np

from perfmodel.core import inference
from perfmodel.core.deployment import Deployment


def _read_only(value: np.ndarray) -> np.ndarray:
    value.flags.writeable = False
    return value


class Memo:
    """A bounded store of priced points: key -> read-only array."""

    def __init__(self, max_entries: int = 50_000):
        self.max_entries = max_entries
        self._store: OrderedDict = OrderedDict()
        self._lock = threading.Lock()  # the dashboard's sessions share one Memo
        self.hits = self.misses = 0

    def get(self, key, compute):
        """The array stored under key, computed (and made read-only) on a miss."""
        return self.get_object(key, lambda: _read_only(np.asarray(compute())))

    def get_object(self, key, compute):
        """The value stored under key (a frozen record or read-only array the caller never
        changes), computed on a miss."""
        with self._lock:
            if key in self._store:
                self.hits += 1
                return self._store[key]
        value = compute()  # outside the lock: another thread may price too
        with self._lock:
            self.misses += 1
            self._store[key] = value
            if len(self._store) > self.max_entries:
                self._store.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._store)


_ACTIVE: ContextVar[Memo | None] = ContextVar("pricing_memo", default=None)


@contextmanager
def memo(store: Memo | None = None):
    """Memoize prefill_time and decode_step_time inside the block (a new Memo unless one is
    given; an enclosing block's Memo is kept)."""
    outer = _ACTIVE.get()
    if store is None:
        store = outer if outer is not None else Memo()
    token = _ACTIVE.set(store)
    try:
        yield _ACTIVE.get()
    finally:
        _ACTIVE.reset(token)


def with_memo(fn):
    """Decorator: run fn inside `with memo():` (one search, one memo; an enclosing one kept)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with memo():
            return fn(*args, **kwargs)

    return wrapper


def _value(x):
    """A hashable form of a scalar or an array (its shape, dtype and bytes)."""
    if isinstance(x, np.ndarray) or np.ndim(x):
        a = np.asarray(x)
        return (a.shape, a.dtype.str, a.tobytes())
    return ("scalar", float(x))


def deployment_key(dep: Deployment) -> tuple:
    """Every value the cost of a deployment depends on (the operator table follows from the
    profile); tp and num_gpus may be arrays (capacity broadcasts TP degrees)."""
    return (
        dep.model,
        repr(dep.gpu),
        dep.profile,
        _value(dep.tp),
        _value(dep.num_gpus),
        dep.pp,
        dep.ep,
        dep.weight_dtype,
        dep.kv_dtype,
        dep.mode,
        dep.allow_cross_node_tp,
    )


def prefill_time(dep: Deployment, batch, prompt_len, cached=0) -> np.ndarray:
    """core.inference.prefill_time, memoized inside `with memo():`."""
    store = _ACTIVE.get()
    if store is None:
        return inference.prefill_time(dep, batch, prompt_len, cached)
    key = ("prefill", deployment_key(dep), _value(batch), _value(prompt_len), _value(cached))
    return store.get(key, lambda: inference.prefill_time(dep, batch, prompt_len, cached))


def decode_step_time(dep: Deployment, batch, context, new_tokens=1, kv_budget=np.inf) -> np.ndarray:
    """core.inference.decode_step_time, memoized inside `with memo():`."""
    store = _ACTIVE.get()
    if store is None:
        return inference.decode_step_time(dep, batch, context, new_tokens, kv_budget)
    key = (
        "decode",
        deployment_key(dep),
        _value(batch),
        _value(context),
        _value(new_tokens),
        _value(kv_budget),
    )
    return store.get(
        key, lambda: inference.decode_step_time(dep, batch, context, new_tokens, kv_budget)
    )


def memoized(key: tuple, compute):
    """compute() memoized under `key` inside `with memo():` (a planner's pure per-deployment
    work, e.g. the capacity search's service times of one GPU type and precision, which a new
    QPS or SLO does not change); outside, compute() itself. The key must hold every value
    compute depends on (deployment_key for a deployment)."""
    store = _ACTIVE.get()
    if store is None:
        return compute()
    return store.get_object(key, compute)
