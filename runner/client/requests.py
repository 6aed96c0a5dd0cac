"""The client's requests on jobs and tasks (pause, resume, cancel, retry, delete,
update; whole tasks and maintenance mode): a base of Client, on its Redis store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from runner.client.input import known_id
from runner.client.results import RequestResult, result_of, update_changes
from runner.config.settings import Settings
from runner.errors import StoreUnavailable, UnknownTask, UsageError
from runner.states import REQUESTS, transition
from runner.store import ALL_TASKS, REVIVING, RedisStore, revive_for

if TYPE_CHECKING:
    from runner.clock import Clock
    from runner.store import Parking, PgStore


BRING_BACK_TRIES = 10  # see _on_parked (3 lost 1 request in 1,000 once, on a loaded CI)


class RequestVerbs:
    settings: Settings
    store: RedisStore
    origin: str
    clock: Clock
    parking: Parking

    async def history_store(self) -> PgStore | None:
        raise NotImplementedError  # Client's: Postgres, connected on first use

    async def request(
        self, action: str, job_ids: Sequence[str], **changes: Any
    ) -> list[RequestResult]:
        """Apply an operator's request (pause, resume, cancel, retry, delete, update)
        to several jobs; one RequestResult each, never an exception for a refusal."""
        if action not in REQUESTS:
            raise UsageError(f"unknown request {action!r}: one of {', '.join(REQUESTS)}")
        update = update_changes(self, **changes) if action == "update" else None
        if changes and action != "update":
            raise UsageError(f"{action} takes no changes, got {', '.join(changes)}")
        return await self.request_with(action, [known_id(job_id) for job_id in job_ids], update)

    async def request_with(
        self, action: str, ids: list[str], argument: dict[str, Any] | None
    ) -> list[RequestResult]:
        """request() with the script's argument as made by the client itself (an
        update's changes; a workflow's retry, runner/client/workflows.py): the ids in
        the order given, which the script follows."""
        update = argument
        replies = await self.store.request(action, ids, self.origin, self.clock.now_ms(), update)
        replies = await self._on_parked(action, ids, replies, update)
        replies = await self._on_forgotten(action, ids, replies, update)
        if action == "update" and update is not None and "due_at" in update:
            applied = [i for i, reply in zip(ids, replies, strict=True) if reply.startswith("ok:")]
            await self.parking.park_again(applied)
        return [
            await result_of(self, job_id, action, reply)
            for job_id, reply in zip(ids, replies, strict=True)
        ]

    async def _on_parked(
        self, action: str, ids: list[str], replies: list[str], update: dict[str, Any] | None
    ) -> list[str]:
        """The replies once the jobs Redis did not find are looked for among the parked:
        a parked job whose state refuses the request is refused by it and stays in
        PostgreSQL; the others are brought back into Redis and asked again there. A
        job brought back is still due beyond the horizon, so a daemon's parker may
        take it out again before the request reaches it: then it is brought back
        again, up to BRING_BACK_TRIES times."""
        sources = transition(action).sources
        found = dict(zip(ids, replies, strict=True))
        for _ in range(BRING_BACK_TRIES):
            missing = [job_id for job_id, reply in found.items() if reply == "missing"]
            if not missing:
                break
            parked = await self.parking.bring_back(missing, lambda state: state in sources)
            if not parked:
                break
            for job_id, state in parked.items():
                if state not in sources:
                    found[job_id] = f"refused:{state}"
            back = [job_id for job_id, state in parked.items() if state in sources]
            found.update(await self._ask_again(action, back, update))
        return [found[job_id] for job_id in ids]

    async def _ask_again(
        self, action: str, job_ids: list[str], update: dict[str, Any] | None
    ) -> dict[str, str]:
        """The request's replies for jobs just put back into Redis."""
        if not job_ids:
            return {}
        replies = await self.store.request(
            action, job_ids, self.origin, self.clock.now_ms(), update
        )
        return dict(zip(job_ids, replies, strict=True))

    async def _on_forgotten(
        self, action: str, ids: list[str], replies: list[str], update: dict[str, Any] | None
    ) -> list[str]:
        """The replies once the finished jobs Redis forgot are looked for in their history,
        for a retry or a delete (revival.py): brought back into Redis and asked again."""
        missing = [job_id for job_id, reply in zip(ids, replies, strict=True) if reply == "missing"]
        if not missing or action not in REVIVING:
            return replies
        try:
            pg = await self.history_store()
        except StoreUnavailable:
            return replies  # the request then says what Redis and Postgres could tell
        revived = await revive_for(
            action, missing, settings=self.settings, store=self.store, pg=pg,
            now_ms=self.clock.now_ms(),
        )  # fmt: skip
        back = [job_id for job_id in missing if job_id in revived]
        again = await self._ask_again(action, back, update)
        return [again.get(job_id) or reply for job_id, reply in zip(ids, replies, strict=True)]

    async def _one(self, action: str, job_id: str, **changes: Any) -> str:
        [result] = await self.request(action, [job_id], **changes)
        return result.raise_unless_ok()

    async def pause(self, job_id: str) -> str:
        """Take a waiting job out of the schedule until resumed; its state now."""
        return await self._one("pause", job_id)

    async def resume(self, job_id: str) -> str:
        """Put a paused job back in the schedule (due now if its time has passed)."""
        return await self._one("resume", job_id)

    async def cancel(self, job_id: str) -> str:
        """End a waiting, paused or running job; a running one's daemon stops its work
        within a second (a cpu job's worker is killed and replaced)."""
        return await self._one("cancel", job_id)

    async def retry(self, job_id: str) -> str:
        """Run a failed or cancelled job again, due now, with a fresh attempt budget."""
        return await self._one("retry", job_id)

    async def delete(self, job_id: str) -> str:
        """Remove a job that is not running; its history keeps a last "deleted" event."""
        return await self._one("delete", job_id)

    async def update(
        self,
        job_id: str,
        *,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        delay: float | timedelta | None = None,
        at: datetime | None = None,
        retries: int | None = None,
        timeout: float | None = None,
        priority: int | None = None,
    ) -> str:
        """Change a waiting or paused job; the history records what changed and who asked."""
        return await self._one(
            "update", job_id, args=args, kwargs=kwargs, delay=delay, at=at,
            retries=retries, timeout=timeout, priority=priority,
        )  # fmt: skip

    async def pause_task(self, task: str) -> bool:
        """No job of `task` starts on any daemon until resume_task (its due jobs stay
        due); False if it was paused already."""
        if task != ALL_TASKS and task not in self.settings.tasks:
            raise UnknownTask(task, list(self.settings.tasks))
        return await self.store.pause_task(task, self.origin, self.clock.now_ms())

    async def resume_task(self, task: str) -> bool:
        """Let `task`'s jobs start again, those held while it was paused first."""
        return await self.store.resume_task(task)

    async def pause_all(self) -> bool:
        """Maintenance mode: no daemon claims anything; running jobs finish."""
        return await self.pause_task(ALL_TASKS)

    async def resume_all(self) -> bool:
        return await self.resume_task(ALL_TASKS)

    async def paused(self) -> dict[str, dict[str, Any]]:
        """Paused tasks (":all" for maintenance mode), with who paused each and when."""
        return await self.store.paused_tasks()
