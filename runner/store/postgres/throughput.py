"""Jobs finished and start lateness per minute, from the recorded transitions: what
the dashboard's overview charts (GET /api/throughput)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from runner.jobs import rfc3339_at
from runner.store.failures import on_postgres
from runner.store.postgres.queries import query


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


@on_postgres
async def throughput(pool: Any, minutes: int, now: datetime) -> list[dict[str, Any]]:
    """One bucket per minute of the last `minutes` (the current, partial one last),
    empty minutes included so a chart's axis is even; `pool` is asyncpg's and `now`
    an aware datetime (time is a parameter)."""
    end = now.astimezone(UTC).replace(second=0, microsecond=0)
    start = end - timedelta(minutes=minutes - 1)
    rows = {row["minute"]: row for row in await pool.fetch(query("throughput"), start)}
    buckets = []
    for i in range(minutes):
        minute = start + timedelta(minutes=i)
        row = rows.get(minute)
        buckets.append(
            {
                "at": rfc3339_at(minute),
                "succeeded": row["succeeded"] if row else 0,
                "failed": row["failed"] if row else 0,
                "lateness_p50_ms": _ms(row["lateness_p50_ms"]) if row else None,
                "lateness_p99_ms": _ms(row["lateness_p99_ms"]) if row else None,
            }
        )
    return buckets
