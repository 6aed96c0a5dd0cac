"""Job history in PostgreSQL: batched writes from the recorder, reads for operators."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

import asyncpg
import orjson

from runner.jobs import Event
from runner.states import ENDED
from runner.store.failures import on_postgres
from runner.store.postgres.listing import list_jobs
from runner.store.postgres.migrate import migrate
from runner.store.postgres.parking import PgParking
from runner.store.postgres.queries import query
from runner.store.postgres.status import task_state_counts
from runner.store.postgres.throughput import throughput

COMMAND_TIMEOUT_S = 60.0
_FINISHED = sorted(str(state) for state in ENDED)


# The line of write_events.sql that makes a replayed event change nothing.
_REPLAYED_EVENTS = "    ON CONFLICT (job_id, seq, at) DO NOTHING\n"


@cache
def first_write() -> str:
    """write_events.sql without its replayed events' clause: for a batch none of whose
    events is recorded yet, as nearly all are (PgStore.record)."""
    sql = query("write_events")
    if _REPLAYED_EVENTS not in sql:
        raise RuntimeError(f"write_events.sql: no line {_REPLAYED_EVENTS.strip()!r}")
    return sql.replace(_REPLAYED_EVENTS, "", 1)


def _json(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def _json_list(text: str | None) -> list[str]:
    value = _json(text)
    return [str(v) for v in value] if isinstance(value, list) else []


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


class PgStore:
    def __init__(self, pool: Any) -> None:
        self.pool = pool

    @classmethod
    @on_postgres
    async def connect(cls, dsn: str, max_size: int = 4) -> PgStore:
        """A pool; a server that hangs fails a statement after COMMAND_TIMEOUT_S instead
        of holding the recorder for ever."""
        pool = await asyncpg.create_pool(
            dsn, min_size=1, max_size=max_size, timeout=10, command_timeout=COMMAND_TIMEOUT_S
        )
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()

    @on_postgres
    async def migrate(self) -> list[str]:
        async with self.pool.acquire() as conn:
            return await migrate(conn)

    @on_postgres
    async def ping(self) -> None:
        await self.pool.fetchval("SELECT 1")

    @on_postgres
    async def write_events(self, batches: Sequence[str]) -> list[tuple[str, int]]:
        """Insert stream entries (each a JSON array of events) in one statement, and
        return the jobs of the batch that Postgres now holds as finished (id, seq).

        Replaying a batch changes nothing. The JSON is passed through as text.
        """
        return [(job_id, seq) for job_id, seq, _ in await self.record(batches)]

    @on_postgres
    async def record(self, batches: Sequence[str]) -> list[tuple[str, int, str]]:
        """write_events, the finished jobs with their queues: (id, seq, queue).

        A batch is first written as if none of its events were recorded yet, which
        spares Postgres a look for each event before it inserts it (an eighth of the
        write path); a replayed event fails that statement as a whole, and the batch
        is written again, each event recorded once (sql/write_events.sql)."""
        if not batches:
            return []
        events = "[" + ",".join(batches) + "]"
        try:
            rows = await self.pool.fetch(first_write(), events, _FINISHED)
        except asyncpg.UniqueViolationError:
            rows = await self.pool.fetch(query("write_events"), events, _FINISHED)
        return [(r["id"], r["seq"], r["queue"]) for r in rows]

    @on_postgres
    async def state_counts(self) -> dict[str, int]:
        """Jobs per recorded state (the latest state of each job, as Postgres has it)."""
        rows = await self.pool.fetch(query("state_counts"))
        return {r["state"]: r["jobs"] for r in rows}

    @on_postgres
    async def paused_count(self) -> int:
        """Jobs whose recorded state is paused (an index read: runner_jobs_state_updated)."""
        return int(await self.pool.fetchval(query("paused_count")))

    @on_postgres
    async def job_history(self, job_id: str) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(query("job_history"), job_id)
        return [
            {
                "seq": r["seq"],
                "from_state": r["from_state"],
                "to_state": r["to_state"],
                "at_ms": _ms(r["at"]),
                "daemon": r["daemon"],
                "attempt": r["attempt"],
                "detail": _json(r["detail"]),
            }
            for r in rows
        ]

    @on_postgres
    async def recorded_states(self, job_ids: Sequence[str]) -> dict[str, str]:
        """The recorded state of each of these jobs that Postgres knows."""
        rows = await self.pool.fetch(query("job_states"), list(job_ids))
        return {r["id"]: r["state"] for r in rows}

    @on_postgres
    async def retired_page(self, after_id: str, limit: int) -> list[tuple[str, int, str, str]]:
        """Up to `limit` jobs, in id order after `after_id`, whose history is kept and
        that Redis may no longer hold (finished, deleted or parked): (id, ms, state,
        queue), the ms being when it last changed, or its due time when parked."""
        rows = await self.pool.fetch(query("retired_ids"), after_id, _FINISHED, limit)
        return [(r["id"], r["at_ms"], r["state"], r["queue"]) for r in rows]

    @on_postgres
    async def revivable(self, job_ids: Sequence[str]) -> list[dict[str, Any]]:
        """What Redis needs to hold these forgotten jobs again (runner/store/revival.py):
        one dict per job Postgres knows and holds unparked, its columns as JSON text
        where Redis keeps JSON text."""
        rows = await self.pool.fetch(query("revive_jobs"), list(job_ids))
        return [dict(row) for row in rows]

    @on_postgres
    async def list_jobs(self, **filters: Any) -> tuple[list[dict[str, Any]], str | None]:
        """One page of jobs and the next page's cursor (see listing.py's list_jobs)."""
        return await list_jobs(self.pool, **filters)

    @on_postgres
    async def task_state_counts(self) -> dict[str, dict[str, int]]:
        """Task -> state -> jobs, each job in its latest recorded state."""
        return await task_state_counts(self.pool)

    @on_postgres
    async def throughput(self, minutes: int, now: datetime) -> list[dict[str, Any]]:
        """Jobs finished and their lateness per minute over the last `minutes`."""
        return await throughput(self.pool, minutes, now)

    @on_postgres
    async def parked_count(self) -> tuple[int, int | None]:
        """How many jobs are parked, and the soonest due time (ms) among them."""
        return await PgParking(self.pool).count()

    @on_postgres
    async def workflow_jobs(self, workflow_id: str, limit: int) -> list[dict[str, Any]]:
        """The recorded jobs of a workflow, in id order: id, task, state, attempt,
        depends_on (a list), result, error, updated_at_ms."""
        rows = await self.pool.fetch(query("workflow_jobs"), workflow_id, limit)
        return [
            {**dict(r), "depends_on": _json_list(r["depends_on"]), "result": _json(r["result"])}
            for r in rows
        ]

    @on_postgres
    async def get_job(self, job_id: str) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(query("get_job"), job_id)
        if row is None:
            return None
        return {
            "id": row["id"],
            "task": row["task"],
            "state": row["state"],
            "attempt": row["attempt"],
            "seq": row["seq"],
            "args": _json(row["args"]),
            "kwargs": _json(row["kwargs"]),
            "result": _json(row["result"]),
            "error": row["error"],
            "due_at_ms": _ms(row["due_at"]),
            "created_at_ms": _ms(row["created_at"]),
            "updated_at_ms": _ms(row["updated_at"]),
            "parked": row["parked"],
            "queue": row["queue"],
            "priority": row["priority"],
        }


def events_json(events: Sequence[Event]) -> str:
    """Events as one stream entry's JSON, the form write_events takes."""
    return orjson.dumps([list(event) for event in events]).decode()
