"""How a daemon shares its free slots among the queues it serves, by weight.

Each claim round, every queue with due work earns its weight's part of each kind's
free slots as credit; the queues with the most credit are asked, and what they are
asked for is taken off their credit (deficit round robin). So over rounds each
queue gets its weight's share however small the pool: with one free slot and
weights 1 and 3, the queues get it 1 time in 4 and 3 times in 4, and the lighter
one never waits more than a few rounds. A round asks at most one queue per
MIN_SHARE free slots, so that a few free slots are not spread over many queues
in claims of one or two jobs each (a claim's cost hardly depends on its size).
A queue with nothing due takes no share: its slots go to the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

MIN_SHARE = 32


class Shares:
    def __init__(self) -> None:
        self._credit: dict[tuple[str, str], float] = {}  # (kind, queue) -> slots owed

    def split(
        self, kind: str, free: int, ready: Sequence[str], weights: Mapping[str, int]
    ) -> dict[str, int]:
        """`free` slots of `kind` among the `ready` queues."""
        if not ready or free <= 0:
            return {}
        if len(ready) == 1:
            return {ready[0]: free}
        total = sum(weights[q] for q in ready)
        credit = self._credit
        for q in ready:
            credit[(kind, q)] = credit.get((kind, q), 0.0) + free * weights[q] / total
        by_credit = sorted(ready, key=lambda q: credit[(kind, q)], reverse=True)
        chosen = by_credit[: max(1, min(len(ready), free // MIN_SHARE))]
        weight = sum(weights[q] for q in chosen)
        shares = {q: free * weights[q] // weight for q in chosen}
        for q in chosen[: free - sum(shares.values())]:
            shares[q] += 1
        for q, share in shares.items():
            credit[(kind, q)] -= share
        return shares
