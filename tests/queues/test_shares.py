"""How a daemon shares free slots among the queues it serves (runner/daemon/shares.py)."""

from __future__ import annotations

from collections import Counter

from runner.daemon.shares import Shares


def test_slots_follow_the_weights_and_none_of_a_served_queue_starves() -> None:
    """One free slot at a time, weights 1 and 3: the queues get it 1 and 3 times in 4,
    so even the lightest queue is served every few rounds."""
    shares = Shares()
    weights = {"default": 1, "reports": 3}
    got: Counter[str] = Counter()
    last_default = 0
    for round_ in range(400):
        for queue, n in shares.split("io", 1, ["default", "reports"], weights).items():
            got[queue] += n
            if queue == "default" and n:
                assert round_ - last_default <= 4
                last_default = round_
    assert got == {"default": 100, "reports": 300}


def test_a_queue_with_nothing_due_leaves_its_share_to_the_others() -> None:
    shares = Shares()
    weights = {"a": 1, "b": 1, "c": 2}
    assert shares.split("async", 200, ["a", "b", "c"], weights) == {"a": 50, "b": 50, "c": 100}
    two = shares.split("async", 200, ["a", "c"], weights)
    assert sum(two.values()) == 200 and two["a"] in (66, 67)
    assert shares.split("async", 200, ["b"], weights) == {"b": 200}
    assert shares.split("async", 0, ["a"], weights) == {}
