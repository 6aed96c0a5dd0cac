"""The audit: after the work drained, did runner keep every promise for every job?

For each accepted job it reads the live record (the Redis hash), the latest
state in Postgres (runner_jobs) and the history (runner_job_events), and the
ledger of executions the chaos tasks wrote. A job is

- lost when neither Redis nor Postgres knows it, or it has no history;
- not terminal when it is not succeeded, failed or cancelled;
- in disagreement when Redis, runner_jobs and the history's last event differ
  on its state or sequence number;
- gapped when its history is not seq 1, 2, 3... with each event starting from
  the state the previous one ended in, beginning with (none -> scheduled);
- an unexplained duplicate when it ran more than once and the history does not
  say why (a lease that expired, a job handed back at shutdown, a retry after
  the task failed), or when the ledger shows more executions than the history
  shows claims (it ran without a claim).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from redis.asyncio import Redis

from runner.store.job_fields import named
from runner.store.keys import Keys

TERMINAL = ("succeeded", "failed", "cancelled")
CHUNK = 1000


@dataclass
class AuditReport:
    jobs: int = 0
    terminal: int = 0
    states: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    not_terminal: dict[str, str] = field(default_factory=dict)
    disagreements: dict[str, str] = field(default_factory=dict)
    gaps: dict[str, str] = field(default_factory=dict)
    unexplained: dict[str, str] = field(default_factory=dict)
    reruns: Counter[str] = field(default_factory=Counter)  # explanation -> re-runs
    executions: int = 0

    @property
    def clean(self) -> bool:
        return not (
            self.lost or self.not_terminal or self.disagreements or self.gaps or self.unexplained
        )

    def counts(self) -> dict[str, Any]:
        return {
            "jobs": self.jobs,
            "terminal": self.terminal,
            "lost": len(self.lost),
            "not terminal": len(self.not_terminal),
            "disagreements": len(self.disagreements),
            "gaps": len(self.gaps),
            "unexplained duplicates": len(self.unexplained),
            "re-runs explained": sum(self.reruns.values()),
        }

    def describe(self, limit: int = 8) -> str:
        parts = [f"audit: {self.counts()}", f"re-runs by cause: {dict(self.reruns)}"]
        problems: Sequence[tuple[str, Iterable[Any]]] = (
            ("lost", self.lost),
            ("not terminal", self.not_terminal.items()),
            ("disagreements", self.disagreements.items()),
            ("gaps", self.gaps.items()),
            ("unexplained duplicates", self.unexplained.items()),
        )
        for name, items in problems:
            shown = list(items)
            if shown:
                parts.append(f"{name} ({len(shown)}): " + "; ".join(map(str, shown[:limit])))
        return "\n".join(parts)


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


async def read_hashes(redis: Redis, keys: Keys, ids: Sequence[str]) -> dict[str, dict[str, str]]:
    """The job hashes that exist (a key of another type reads as missing)."""
    found: dict[str, dict[str, str]] = {}
    for chunk in _chunks(ids):
        async with redis.pipeline(transaction=False) as pipe:
            for job_id in chunk:
                pipe.hgetall(keys.job(job_id))
            replies = await pipe.execute(raise_on_error=False)
        for job_id, reply in zip(chunk, replies, strict=True):
            if isinstance(reply, dict) and reply:
                found[job_id] = named(reply)
    return found


async def read_postgres(
    database_url: str, ids: Sequence[str]
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """runner_jobs rows and runner_job_events histories (in seq order) of `ids`."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT id, state, seq, attempt, error FROM runner_jobs WHERE id = ANY($1::text[])",
            list(ids),
        )
        events = await conn.fetch(
            "SELECT job_id, seq, from_state, to_state, attempt, detail FROM runner_job_events"
            " WHERE job_id = ANY($1::text[]) ORDER BY job_id, seq",
            list(ids),
        )
    finally:
        await conn.close()
    histories: dict[str, list[Any]] = {}
    for event in events:
        histories.setdefault(event["job_id"], []).append(event)
    return {row["id"]: row for row in rows}, histories


def read_ledger(path: Path) -> Counter[str]:
    """Executions per job id, as the chaos tasks noted them."""
    if not path.exists():
        return Counter()
    return Counter(line for line in path.read_text().splitlines() if line)


def _gap(history: Sequence[Any]) -> str | None:
    if not history:
        return None
    first = history[0]
    if (first["seq"], first["from_state"], first["to_state"]) != (1, None, "scheduled"):
        return f"starts with seq {first['seq']}: {first['from_state']} -> {first['to_state']}"
    for before, after in itertools.pairwise(history):
        if after["seq"] != before["seq"] + 1:
            return f"seq {before['seq']} is followed by seq {after['seq']}"
        if after["from_state"] != before["to_state"]:
            return (
                f"seq {after['seq']} starts from {after['from_state']} but seq "
                f"{before['seq']} ended in {before['to_state']}"
            )
    return None


def _why_again(event: Any) -> str | None:
    """Why a job left `running` to be claimed again, from the transition that did it."""
    detail = orjson.loads(event["detail"] or "{}")
    detail = detail if isinstance(detail, dict) else {}
    reason = str(detail.get("reason", ""))
    if event["from_state"] != "running":
        return None
    if "lease expired" in reason:
        return "lease expired"
    if event["to_state"] == "scheduled" and "stopped" in reason:
        return "handed back at shutdown"
    if event["to_state"] == "retrying" and detail.get("error"):
        return "retry after a task failure"
    return None


def _explain_reruns(history: Sequence[Any], report: AuditReport) -> str | None:
    """Count each re-run by its cause; the first one nothing explains, or None."""
    for index, event in enumerate(history):
        if event["to_state"] != "running" or index < 2:
            continue  # not a claim, or the first one (seq 2, right after the enqueue)
        why = _why_again(history[index - 1])
        if why is None:
            return f"run at seq {event['seq']} follows {dict(history[index - 1])}"
        report.reruns[why] += 1
    return None


def _disagreement(live: dict[str, str] | None, row: Any, last: Any) -> str | None:
    if row["seq"] != last["seq"] or row["state"] != last["to_state"]:
        return (
            f"runner_jobs {row['state']}/{row['seq']} vs history {last['to_state']}/{last['seq']}"
        )
    if live is not None and (live.get("state"), live.get("seq")) != (row["state"], str(row["seq"])):
        return (
            f"redis {live.get('state')}/{live.get('seq')} vs postgres {row['state']}/{row['seq']}"
        )
    return None


def _audit_job(
    report: AuditReport,
    job_id: str,
    live: dict[str, str] | None,
    row: Any,
    history: list[Any],
    executions: int,
) -> None:
    if (live is None and row is None) or not history or row is None:
        report.lost.append(job_id)
        return
    state = live["state"] if live is not None else row["state"]
    report.states[state] += 1
    if state in TERMINAL:
        report.terminal += 1
    else:
        report.not_terminal[job_id] = state
    problem = _disagreement(live, row, history[-1])
    if problem:
        report.disagreements[job_id] = problem
    gap = _gap(history)
    if gap:
        report.gaps[job_id] = gap
        return
    unexplained = _explain_reruns(history, report)
    claims = sum(1 for event in history if event["to_state"] == "running")
    if executions > claims:
        unexplained = f"ran {executions} times for {claims} claims"
    if unexplained:
        report.unexplained[job_id] = unexplained


async def audit(
    redis: Redis, keys: Keys, database_url: str, ids: Sequence[str], ledger: Path | None = None
) -> AuditReport:
    """Audit the given jobs; call once the work drained and the recorder caught up."""
    ids = list(dict.fromkeys(ids))
    live = await read_hashes(redis, keys, ids)
    rows, histories = await read_postgres(database_url, ids)
    executions = read_ledger(ledger) if ledger else Counter()
    report = AuditReport(jobs=len(ids), executions=sum(executions[i] for i in ids))
    for job_id in ids:
        _audit_job(
            report, job_id, live.get(job_id), rows.get(job_id), histories.get(job_id, []),
            executions[job_id],
        )  # fmt: skip
    return report
