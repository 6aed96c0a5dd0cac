"""The audit: after the work drained, did runner keep every promise for every job?

For each accepted job it reads the live record (the Redis hash), the latest
state in Postgres (runner_jobs) and the history (runner_job_events), and the
ledger of executions the chaos tasks wrote. A job is

- lost when neither Redis nor Postgres knows it, or it has no history;
- not terminal when it is not succeeded, failed or cancelled;
- in disagreement when Redis, runner_jobs and the history's last event differ
  on its state or sequence number;
- on an illegal path when its history is not seq 1, 2, 3... from
  (none -> scheduled), each step a transition of the state table (judged by
  tests/chaos/history.py, as in every chaos audit);
- never run when it succeeded and its task writes the ledger, yet the ledger
  shows no execution of it (a success recorded for a run that never happened);
- an unexplained duplicate when it ran more than once and the history does not
  say why (a lease that expired, a job handed back at shutdown, a retry after
  the task failed), or when the ledger shows more executions than the history
  shows claims (it ran without a claim).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from redis.asyncio import Redis

from runner.store.redis.fields import named
from runner.store.redis.keys import Keys
from tests.chaos.history import illegal_step

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
    illegal: dict[str, str] = field(default_factory=dict)
    never_ran: dict[str, str] = field(default_factory=dict)
    unexplained: dict[str, str] = field(default_factory=dict)
    reruns: Counter[str] = field(default_factory=Counter)  # explanation -> re-runs
    executions: int = 0
    blocked: int = 0  # jobs that waited for their dependencies (enqueued blocked)

    @property
    def clean(self) -> bool:
        return not (
            self.lost or self.not_terminal or self.disagreements or self.illegal
            or self.never_ran or self.unexplained
        )  # fmt: skip

    def counts(self) -> dict[str, Any]:
        return {
            "jobs": self.jobs,
            "terminal": self.terminal,
            "lost": len(self.lost),
            "not terminal": len(self.not_terminal),
            "disagreements": len(self.disagreements),
            "illegal paths": len(self.illegal),
            "succeeded, never ran": len(self.never_ran),
            "unexplained duplicates": len(self.unexplained),
            "re-runs explained": sum(self.reruns.values()),
            "waited blocked": self.blocked,
        }

    def describe(self, limit: int = 8) -> str:
        parts = [f"audit: {self.counts()}", f"re-runs by cause: {dict(self.reruns)}"]
        problems: Sequence[tuple[str, Iterable[Any]]] = (
            ("lost", self.lost),
            ("not terminal", self.not_terminal.items()),
            ("disagreements", self.disagreements.items()),
            ("illegal paths", self.illegal.items()),
            ("succeeded, never ran", self.never_ran.items()),
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
            "SELECT id, task, state, seq, attempt, error FROM runner_jobs"
            " WHERE id = ANY($1::text[])",
            list(ids),
        )
        events = await conn.fetch(
            "SELECT job_id, seq, from_state, to_state, attempt, daemon, detail"
            " FROM runner_job_events"
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


def why_again(event: Any) -> str | None:
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


def _first_claim(history: Sequence[Any]) -> int:
    """Where the first claim may be: right after the enqueue (seq 2), or, for a job
    enqueued blocked, right after the release that made it due (seq 3)."""
    if history and history[0]["to_state"] == "blocked":
        return 2
    return 1


def _explain_reruns(history: Sequence[Any], report: AuditReport) -> str | None:
    """Count each re-run by its cause; the first one nothing explains, or None."""
    first = _first_claim(history)
    for index, event in enumerate(history):
        if event["to_state"] != "running" or index <= first:
            continue  # not a claim, or the first one
        why = why_again(history[index - 1])
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


def audit_job(
    report: AuditReport,
    job_id: str,
    live: dict[str, str] | None,
    row: Any,
    history: Sequence[Any],
    executions: int | None,
) -> None:
    """Judge one job into `report`; `executions`: how many times the ledger shows it
    ran, None when its task writes no ledger."""
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
    report.blocked += history[0]["to_state"] == "blocked"
    illegal = illegal_step(history)
    if illegal:
        report.illegal[job_id] = illegal
        return
    unexplained = _explain_reruns(history, report)
    claims = sum(1 for event in history if event["to_state"] == "running")
    if executions is not None and executions > claims:
        unexplained = f"ran {executions} times for {claims} claims"
    if unexplained:
        report.unexplained[job_id] = unexplained
    if state == "succeeded" and executions == 0:
        report.never_ran[job_id] = f"succeeded at seq {history[-1]['seq']}, no execution"


async def audit(
    redis: Redis,
    keys: Keys,
    database_url: str,
    ids: Sequence[str],
    ledger: Path,
    ledger_tasks: Collection[str],
) -> AuditReport:
    """Audit the given jobs; call once the work drained and the recorder caught up.
    `ledger_tasks`: the tasks whose every execution the `ledger` notes."""
    ids = list(dict.fromkeys(ids))
    live = await read_hashes(redis, keys, ids)
    rows, histories = await read_postgres(database_url, ids)
    executions = read_ledger(ledger)
    report = AuditReport(jobs=len(ids), executions=sum(executions[i] for i in ids))
    for job_id in ids:
        row = rows.get(job_id)
        noted = row is not None and row["task"] in ledger_tasks
        audit_job(
            report, job_id, live.get(job_id), row, histories.get(job_id, []),
            executions[job_id] if noted else None,
        )  # fmt: skip
    return report
