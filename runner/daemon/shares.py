"""How a daemon shares its free slots among the queues it serves, by weight.

Each claim round gives every queue that has due work a share of each kind's free
slots in proportion to its weight. What the whole-number split leaves over goes
by smooth weighted round robin, whose credits carry over from round to round:
with one free slot and weights 1 and 3, the queues get it 1 time in 4 and 3 times
in 4, so no served queue starves however small the pool. A queue with nothing
due takes no share: its slots go to the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class Shares:
    def __init__(self) -> None:
        self._credit: dict[tuple[str, str], int] = {}  # (kind, queue) -> credit

    def split(
        self, kind: str, free: int, ready: Sequence[str], weights: Mapping[str, int]
    ) -> dict[str, int]:
        """`free` slots of `kind` among the `ready` queues."""
        if not ready or free <= 0:
            return {}
        if len(ready) == 1:
            return {ready[0]: free}
        total = sum(weights[q] for q in ready)
        shares = {q: free * weights[q] // total for q in ready}
        for _ in range(free - sum(shares.values())):
            for q in ready:
                self._credit[(kind, q)] = self._credit.get((kind, q), 0) + weights[q]
            best = max(ready, key=lambda q: self._credit[(kind, q)])
            self._credit[(kind, best)] -= total
            shares[best] += 1
        return shares
