"""core.identity_memo.by_identity: a hit only for the very objects an entry was computed for
(equal but distinct objects are computed again); with `owners`, the other arguments by value."""

from __future__ import annotations

from perfmodel.core.identity_memo import by_identity


def test_identity_keys_and_owner_plus_value_keys():
    calls = []

    @by_identity
    def whole(a, b):
        calls.append((a, b))
        return len(calls)

    x, y = [1], [1]  # equal, distinct
    assert whole(x, x) == whole(x, x) == 1
    assert whole(y, x) == 2 and whole(x, y) == 3  # another object: computed again

    @by_identity(owners=1)
    def keyed(owner, cfg, n):
        calls.append((owner, cfg, n))
        return len(calls)

    first = keyed(x, (8.0, 1.0), 2)
    assert keyed(x, tuple([8.0, 1.0]), 2) == first  # the key's values, not its objects
    assert keyed(x, (8.0, 1.0), 3) == first + 1  # another value
    assert keyed(y, (8.0, 1.0), 2) == first + 2  # another owner, though equal
    assert keyed(y, (8.0, 1.0), 2) == first + 2
