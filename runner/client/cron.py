"""`runner cron`: every schedule with its policies, last fire (Redis) and next fire times."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from runner.config.settings import Settings
from runner.cron import Schedule
from runner.jobs import rfc3339, rfc3339_at
from runner.servers.connect import resolve_urls
from runner.store import Keys, RedisStore, redis_client


def _last(
    state: dict[str, str], name: str, job_states: dict[str, str | None]
) -> dict[str, Any] | None:
    job_id = state.get(f"{name}:job")
    if job_id is None:
        return None
    return {
        "tick": rfc3339(int(state[f"{name}:tick"])),
        "job_id": job_id,
        "fired_at": rfc3339(int(state[f"{name}:fired_at"])),
        "state": job_states.get(job_id),
    }


async def cron_documents(settings: Settings, now: datetime | None = None) -> list[dict[str, Any]]:
    now = now or datetime.now(UTC)
    redis_url, _, _ = resolve_urls(settings, start_embedded=False)
    redis = redis_client(redis_url, settings.redis_cluster)
    try:
        store = RedisStore(redis, Keys(settings.key_prefix))
        state: dict[str, str] = {}
        for queue in sorted({c.queue_of(settings.tasks) for c in settings.cron.values()}):
            state.update(await store.queue(queue).cron_state())
        job_ids = [v for k, v in state.items() if k.endswith(":job")]
        found = await store.job_states(job_ids)
        job_states: dict[str, str | None] = {job_id: found.get(job_id) for job_id in job_ids}
    finally:
        await redis.aclose()
    docs = []
    for name, c in sorted(settings.cron.items()):
        schedule = Schedule(c.schedule, c.timezone)
        ticks = schedule.ticks_after(now)
        upcoming = [rfc3339_at(next(ticks).astimezone(schedule.zone)) for _ in range(3)]
        docs.append(
            {
                "name": name,
                "schedule": c.schedule,
                "timezone": c.timezone,
                "task": c.task,
                "misfire": c.misfire,
                "misfire_grace_s": c.misfire_grace,
                "overlap": c.overlap,
                "queue": c.queue_of(settings.tasks),
                "next": upcoming,
                "last": _last(state, name, job_states),
            }
        )
    return docs
