"""Which transitions a reader wants: by task, job id and state, each optional."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from runner.events.transition import Transition


@dataclass(frozen=True)
class TransitionFilter:
    """Keeps a transition when it matches every given set (an empty set: any)."""

    tasks: frozenset[str] = frozenset()
    job_ids: frozenset[str] = frozenset()
    states: frozenset[str] = frozenset()  # the state moved to

    @classmethod
    def of(
        cls,
        tasks: Iterable[str] = (),
        job_ids: Iterable[str] = (),
        states: Iterable[str] = (),
    ) -> TransitionFilter:
        return cls(frozenset(tasks), frozenset(job_ids), frozenset(states))

    def __call__(self, transition: Transition) -> bool:
        return (
            (not self.tasks or transition.task in self.tasks)
            and (not self.job_ids or transition.job_id in self.job_ids)
            and (not self.states or transition.to_state in self.states)
        )
