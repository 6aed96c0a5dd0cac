"""The audit of a run with operator requests: after everything settled, for every job,

- agreement: Redis, its runner_jobs row and the last event of its history say the
  same state and sequence number; a deleted job is recorded as deleted, and Redis
  holds at most the deletion's record (state deleted, the same seq); every other
  job ended (succeeded, failed or cancelled);
- a legal path, as every chaos audit judges it (tests/chaos/history.py): seqs
  1, 2, 3... from (none -> scheduled), each step a transition of
  runner.states.TRANSITIONS (an update keeps the state), deleted only last;
- requests as recorded: the events the client wrote are exactly the requests
  that applied, one each, in the order they were made, each stamped between
  the request's sending and its return;
- no start after a stop: no claim was made after a pause, cancel or delete
  request for the job had returned, unless a resume or retry came in between;
- no run without a claim: no more "job started" lines than claims.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
from redis.asyncio import Redis

from runner.states import TERMINAL, State
from runner.store.redis.keys import Keys
from tests.chaos.audit import CHUNK, read_hashes
from tests.chaos.history import Event, illegal_step
from tests.chaos.requests import Applied

STOPS = ("pause", "cancel", "delete")
RESTARTS = ("resume", "retry")


@dataclass
class ControlReport:
    jobs: int = 0
    states: Counter[str] = field(default_factory=Counter)
    claims: int = 0
    starts: int = 0
    disagreements: dict[str, str] = field(default_factory=dict)
    illegal: dict[str, str] = field(default_factory=dict)
    unmatched: dict[str, str] = field(default_factory=dict)
    late_starts: dict[str, str] = field(default_factory=dict)
    unclaimed_runs: dict[str, str] = field(default_factory=dict)
    stops_checked: int = 0  # pause, cancel and delete requests checked for later claims
    running_cancelled: int = 0  # cancel requests that found the job running

    @property
    def violations(self) -> int:
        return sum(
            map(len, (self.disagreements, self.illegal, self.unmatched, self.late_starts,
                      self.unclaimed_runs))
        )  # fmt: skip

    def counts(self) -> dict[str, Any]:
        return {
            "jobs": self.jobs,
            "states": dict(self.states),
            "claims": self.claims,
            "starts": self.starts,
            "cancelled running": self.running_cancelled,
            "disagreements": len(self.disagreements),
            "illegal paths": len(self.illegal),
            "requests unmatched": len(self.unmatched),
            "starts after a stop": len(self.late_starts),
            "runs without a claim": len(self.unclaimed_runs),
        }

    def describe(self, limit: int = 8) -> str:
        parts = [f"control audit: {self.counts()}"]
        problems: Sequence[tuple[str, Iterable[Any]]] = (
            ("disagreements", self.disagreements.items()),
            ("illegal paths", self.illegal.items()),
            ("requests unmatched", self.unmatched.items()),
            ("starts after a stop", self.late_starts.items()),
            ("runs without a claim", self.unclaimed_runs.items()),
        )
        for name, items in problems:
            shown = list(items)
            if shown:
                parts.append(f"{name} ({len(shown)}): " + "; ".join(map(str, shown[:limit])))
        return "\n".join(parts)


async def read_records(
    database_url: str, ids: Sequence[str]
) -> tuple[dict[str, Any], dict[str, list[Event]]]:
    """runner_jobs rows and histories (seq order, `at` in ms, detail decoded) of `ids`."""
    conn = await asyncpg.connect(database_url)
    rows: dict[str, Any] = {}
    histories: dict[str, list[Event]] = {}
    try:
        for start in range(0, len(ids), CHUNK * 5):
            chunk = list(ids[start : start + CHUNK * 5])
            for row in await conn.fetch(
                "SELECT id, state, seq FROM runner_jobs WHERE id = ANY($1::text[])", chunk
            ):
                rows[row["id"]] = row
            events = await conn.fetch(
                "SELECT job_id, seq, from_state, to_state, daemon, detail::text AS detail,"
                " round(extract(epoch FROM at) * 1000)::int8 AS at_ms FROM runner_job_events"
                " WHERE job_id = ANY($1::text[]) ORDER BY job_id, seq",
                chunk,
            )
            for job_id, group in itertools.groupby(events, key=lambda e: e["job_id"]):
                histories[job_id] = [
                    {**event, "detail": orjson.loads(event["detail"] or "{}")} for event in group
                ]
    finally:
        await conn.close()
    return rows, histories


def request_of(event: Event) -> str | None:
    """Which operator's request wrote this event, judged by its states alone."""
    source, target = event["from_state"], event["to_state"]
    if source == target:
        detail = event["detail"]
        return "update" if isinstance(detail, dict) and detail.get("update") else None
    if target in (State.DELETED, State.PAUSED, State.CANCELLED):
        return {State.DELETED: "delete", State.PAUSED: "pause", State.CANCELLED: "cancel"}[target]
    if target == State.SCHEDULED and source == State.PAUSED:
        return "resume"
    if target == State.SCHEDULED and source in (State.FAILED, State.CANCELLED):
        return "retry"
    return None


def unmatched(history: Sequence[Event], applied: Sequence[Applied], origin: str) -> str | None:
    """The client's events after the enqueue must be the applied requests, in order,
    each stamped within its request's sending and return."""
    written = [event for event in history[1:] if event["daemon"] == origin]
    if [request_of(e) for e in written] != [a.action for a in applied]:
        return (
            f"events {[request_of(e) for e in written]} for requests {[a.action for a in applied]}"
        )
    for event, request in zip(written, applied, strict=True):
        if not request.sent_ms <= event["at_ms"] <= request.returned_ms:
            return f"seq {event['seq']} at {event['at_ms']} outside its request's {request}"
    return None


def late_start(history: Sequence[Event], applied: Sequence[Applied], origin: str) -> str | None:
    """A claim made after a pause, cancel or delete had returned, with no resume or retry
    of the job in between (the client's events are the applied requests, in order)."""
    written = [event for event in history[1:] if event["daemon"] == origin]
    for event, request in zip(written, applied, strict=False):
        if request.action not in STOPS:
            continue
        for claim in history:
            if claim["to_state"] != State.RUNNING or claim["at_ms"] <= request.returned_ms:
                continue
            restarted = any(
                request_of(e) in RESTARTS and event["seq"] < e["seq"] < claim["seq"]
                for e in written
            )
            if not restarted:
                return (
                    f"claimed at seq {claim['seq']} (at {claim['at_ms']}) after a {request.action}"
                    f" (seq {event['seq']}) had returned at {request.returned_ms:.1f}"
                )
    return None


def _agreement(live: Mapping[str, str] | None, row: Any, last: Event, deleted: bool) -> str | None:
    if row is None:
        return "no runner_jobs row"
    if (row["state"], row["seq"]) != (last["to_state"], last["seq"]):
        return (
            f"runner_jobs {row['state']}/{row['seq']} vs history {last['to_state']}/{last['seq']}"
        )
    if deleted:
        # What Redis keeps of a deleted job until it forgets it: the deletion's record.
        kept = None if live is None else (live.get("state"), live.get("seq"))
        if kept not in (None, (State.DELETED, str(row["seq"]))) or row["state"] != State.DELETED:
            return f"deleted, yet redis has {live} and postgres {row['state']}"
        return None
    return _live_agreement(live, row)


def _live_agreement(live: Mapping[str, str] | None, row: Any) -> str | None:
    """A job not deleted: in Redis, ended, as Postgres has it."""
    if live is None:
        return f"gone from redis, postgres has {row['state']}/{row['seq']}"
    if (live.get("state"), live.get("seq")) != (row["state"], str(row["seq"])):
        return (
            f"redis {live.get('state')}/{live.get('seq')} vs postgres {row['state']}/{row['seq']}"
        )
    if row["state"] not in TERMINAL:
        return f"still {row['state']}"
    return None


async def audit_control(
    redis: Redis,
    keys: Keys,
    database_url: str,
    ids: Sequence[str],
    applied: Mapping[str, Sequence[Applied]],
    origin: str,
    starts: Counter[str],
) -> ControlReport:
    """Audit every job once the work drained and the recorder caught up; `starts`: the
    "job started" lines of every daemon, by job id."""
    ids = list(dict.fromkeys(ids))
    live = await read_hashes(redis, keys, ids)
    rows, histories = await read_records(database_url, ids)
    report = ControlReport(jobs=len(ids), starts=sum(starts[i] for i in ids))
    for job_id in ids:
        history, requests = histories.get(job_id, []), applied.get(job_id, [])
        deleted = any(request.action == "delete" for request in requests)
        report.states["deleted" if deleted else (live.get(job_id) or {}).get("state", "?")] += 1
        claims = sum(1 for event in history if event["to_state"] == State.RUNNING)
        report.claims += claims
        if starts[job_id] > claims:
            report.unclaimed_runs[job_id] = f"started {starts[job_id]} times for {claims} claims"
        problem = illegal_step(history)
        if problem:
            report.illegal[job_id] = problem
            continue
        checks = (
            (
                report.disagreements,
                _agreement(live.get(job_id), rows.get(job_id), history[-1], deleted),
            ),
            (report.unmatched, unmatched(history, requests, origin)),
            (report.late_starts, late_start(history, requests, origin)),
        )
        for found, problem in checks:
            if problem:
                found[job_id] = problem
        report.stops_checked += sum(1 for request in requests if request.action in STOPS)
        report.running_cancelled += sum(
            1
            for event in history
            if event["daemon"] == origin
            and (event["from_state"], event["to_state"]) == (State.RUNNING, State.CANCELLED)
        )
    return report
