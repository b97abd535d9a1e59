"""Memoize a pure function of immutable objects by the objects' identity.

A deployment search prices hundreds of passes of a few dozen deployments; what depends on
the deployment alone (its pipeline stages, its kernel pricing, its tabulated kernels) is
worked out once per deployment object instead of once per pass. Keys are the arguments'
id()s (with `owners`: the first arguments' id()s and the others' values); each entry holds
the objects it is keyed by, so an id cannot be reused by another object while its entry
lives, and a hit is checked by identity (`is`). Only for frozen arguments whose
value never changes (Deployment, ModelSpec, HardwareSpec, loaded tables): the memo returns
what the function gave for those very objects. Bounded: cleared when full.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from inspect import CO_VARARGS

MAX_ENTRIES = 512


def by_identity(fn: Callable | None = None, *, owners: int | None = None) -> Callable:
    """fn(*args), computed once per tuple of argument objects (positional arguments only).
    With `owners=n` (`@by_identity(owners=n)`): once per tuple of the first n argument
    objects and values of the others (hashable: a configuration, a TP degree), for what is
    kept per table or deployment object and per key."""
    if fn is None:
        return lambda f: by_identity(f, owners=owners)
    code = fn.__code__
    if owners is None and code.co_argcount == 1 and not code.co_flags & CO_VARARGS:
        return _one_object(fn)
    memo: dict[tuple, tuple[tuple, object]] = {}

    @wraps(fn)
    def memoized(*args):
        held = args if owners is None else args[:owners]
        key = (*map(id, held), *args[len(held) :])
        hit = memo.get(key)
        if hit is not None and _same(hit[0], held):
            return hit[1]
        value = fn(*args)
        if len(memo) >= MAX_ENTRIES:
            memo.clear()
        memo[key] = (held, value)
        return value

    memoized.cache_clear = memo.clear
    return memoized


def _one_object(fn: Callable) -> Callable:
    """by_identity of a function of one argument: keyed by the id() alone (most memos here
    are; no key tuple to build, one `is` check)."""
    memo: dict[int, tuple[object, object]] = {}

    @wraps(fn)
    def memoized(arg):
        hit = memo.get(id(arg))
        if hit is not None and hit[0] is arg:
            return hit[1]
        value = fn(arg)
        if len(memo) >= MAX_ENTRIES:
            memo.clear()
        memo[id(arg)] = (arg, value)
        return value

    memoized.cache_clear = memo.clear
    return memoized


def _same(held: tuple, args: tuple) -> bool:
    for a, b in zip(held, args, strict=True):
        if a is not b:
            return False
    return True
