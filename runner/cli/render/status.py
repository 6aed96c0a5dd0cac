"""`runner status` as text: a line per figure, Redis's strings made safe for a terminal."""

from __future__ import annotations

import re
from typing import Any

import orjson

from runner.cli.time_text import UTC_TEXT, TimeText

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def render(doc: dict[str, Any], as_json: bool, times: TimeText = UTC_TEXT) -> str:
    """JSON for a script, or lines for a person, with times as `times` shows them."""
    if as_json:
        return orjson.dumps(doc).decode()
    states = ", ".join(f"{s} {n}" for s, n in doc["states"].items()) or "none recorded"
    aside = doc["set_aside"]
    lines = [
        f"at {times(doc['at'])}",
        _due_line(doc),
        f"  waiting      {sum(doc['waiting'].values())} in the schedule",
        *_blocked_line(doc.get("blocked") or {}),
        *_queue_lines(doc.get("queues") or {}),
        *_parked_line(doc, times),
        _running_line(doc),
        f"  daemons      {len(doc['daemons'])}: {', '.join(map(_show, doc['daemons'])) or '-'}",
        *(line for daemon in doc["daemon_details"] for line in _daemon_lines(daemon, times)),
        *_paused_lines(doc["paused_tasks"], times),
        _maintenance_line(doc, times),
        _recorder_line(doc),
        *_source_lines(doc.get("sources") or {}),
        f"  set aside    {aside['jobs']} malformed jobs ({_show(aside['jobs_key'])}), "
        f"{aside['events']} stream entries ({_show(aside['events_key'])})",
        *_webhook_lines(doc.get("webhooks", [])),
        *_limit_lines(doc.get("limits") or {}, times),
        f"  states       {states} (Postgres)",
        *_task_lines(doc["tasks"]),
    ]
    return "\n".join(lines)


def _blocked_line(blocked: dict[str, int]) -> list[str]:
    """Jobs waiting for the jobs they depend on, per task (none: no line)."""
    if not blocked:
        return []
    tasks = ", ".join(f"{_show(task)} {n}" for task, n in blocked.items())
    return [f"  blocked      {sum(blocked.values())} waiting for their dependencies ({tasks})"]


def _show(value: Any) -> str:
    """A value read from Redis, fit for a terminal: "unknown" for None, and no control
    character (anyone who can write to Redis chooses these strings)."""
    return "unknown" if value is None else _CONTROL.sub("?", str(value))


def _show_time(value: Any, times: TimeText) -> str:
    """A time read from Redis: as `times` shows it, made safe like any value there."""
    return "unknown" if value is None else _show(times(str(value)))


def _took(ms: int) -> str:
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    if ms < 3_600_000:
        return f"{ms / 60_000:.1f} min"
    return f"{ms / 3_600_000:.1f} h"


def _due_line(doc: dict[str, Any]) -> str:
    kinds = ", ".join(f"{k} {n}" for k, n in doc["due"].items())
    lag = doc["oldest_due_lag_ms"]
    late = "" if lag is None else f"; the oldest is {_took(lag)} late"
    return f"  due now      {sum(doc['due'].values())} ({kinds}){late}"


def _queue_lines(queues: dict[str, dict[str, Any]]) -> list[str]:
    """A line per queue, once there is more than the default one."""
    if len(queues) < 2:
        return []
    lines = []
    for name, q in queues.items():
        lag = q["oldest_due_lag_ms"]
        late = "" if lag is None else f", the oldest late by {_took(lag)}"
        lines.append(
            f"  queue {_show(name)}: due {sum(q['due'].values())}, waiting "
            f"{sum(q['waiting'].values())}, running {q['running']}{late}"
        )
    return lines


def _running_line(doc: dict[str, Any]) -> str:
    """Running jobs by owner; an owner that is no live daemon died or stopped, and its
    jobs go back to the schedule once their leases expire."""
    live = set(doc["daemons"])
    owners = [
        f"{n} on {_show(owner)}{'' if owner in live else ' (not live)'}"
        for owner, n in doc["running_by_daemon"].items()
    ]
    return f"  running      {doc['running']}{': ' if owners else ''}{', '.join(owners)}"


def _daemon_lines(daemon: dict[str, Any], times: TimeText) -> list[str]:
    age = daemon["heartbeat_age_ms"]
    ago = "" if age is None else f" ({_took(age)} ago)"
    about = (
        f"    {_show(daemon['id'])}: host {_show(daemon['host'])}, pid {_show(daemon['pid'])},"
        f" version {_show(daemon['version'])}, started {_show_time(daemon['started'], times)},"
        f" heartbeat {_show_time(daemon['last_heartbeat'], times)}{ago}"
    )
    pools = daemon.get("pools") or {}
    if not pools:
        return [about]
    return [about, "      pools: " + ", ".join(_pool(k, p) for k, p in pools.items())]


def _pool(kind: str, pool: dict[str, Any]) -> str:
    """One kind's slots: "io 8 in use, 0 free (3 held by timed-out jobs; the oldest,
    job X, for 5.0 min)"."""
    text = f"{_show(kind)} {_show(pool['in_use'])} in use, {_show(pool['free'])} free"
    oldest = pool.get("oldest_held")
    if pool.get("held_by_timed_out") and oldest:
        text += (
            f" ({_show(pool['held_by_timed_out'])} held by timed-out jobs; the oldest,"
            f" job {_show(oldest['job_id'])}, for {_took(oldest['age_ms'])})"
        )
    return text


def _paused_lines(paused: dict[str, dict[str, Any]], times: TimeText) -> list[str]:
    if not paused:
        return ["  paused       -"]
    return [f"  paused       {len(paused)}: {', '.join(map(_show, paused))}"] + [
        f"    {_show(task)}: by {_show(note['by'])} at {_show_time(note['at'], times)},"
        f" {_show(note['held'])} due jobs held"
        for task, note in paused.items()
    ]


def _parked_line(doc: dict[str, Any], times: TimeText) -> list[str]:
    parked = doc.get("parked")
    if not parked:
        return []
    soonest = parked["soonest_due"]
    due = "" if soonest is None else f", the soonest due {times(soonest)}"
    return [f"  parked       {parked['jobs']} in Postgres (due beyond the park horizon{due})"]


def _maintenance_line(doc: dict[str, Any], times: TimeText) -> str:
    since = doc["maintenance_since"]
    if not doc["maintenance"] or since is None:
        return "  maintenance  off"
    return (
        f"  maintenance  ON since {_show_time(since['at'], times)} by {_show(since['by'])}: "
        "no daemon claims anything (runner resume --all)"
    )


def _recorder_line(doc: dict[str, Any]) -> str:
    age = doc["unrecorded_oldest_age_ms"]
    oldest = "" if age is None else f", the oldest written {_took(age)} ago"
    return (
        f"  unrecorded   {doc['unrecorded_entries']} stream entries "
        f"({doc['recorder_pending']} read by a recorder, not yet in Postgres{oldest})"
    )


def _source_lines(sources: dict[str, dict[str, Any]]) -> list[str]:
    """Per source: messages accepted as jobs, redelivered ones, dead-lettered ones, and
    whether it is held back by runner's backlog."""
    lines = []
    for i, (name, figures) in enumerate(sources.items()):
        held = figures.get("held")
        state = f"HELD BACK (backlog {held['backlog']} over {held['bound']})" if held else "reading"
        lines.append(
            f"  {'sources' if i == 0 else '':<12} {_show(name)}: {state}; "
            f"{figures['accepted']} jobs, {figures['duplicates']} redelivered, "
            f"{figures['dead_lettered']} dead-lettered"
        )
    return lines


def _task_lines(tasks: dict[str, dict[str, int]]) -> list[str]:
    """One line per task: its jobs per state, as Postgres has them."""
    lines = []
    for i, (task, states) in enumerate(tasks.items()):
        counts = ", ".join(f"{s} {n}" for s, n in states.items())
        lines.append(f"  {'per task' if i == 0 else '':<12} {_show(task)}: {counts}")
    return lines


def _webhook_lines(sinks: list[dict[str, Any]]) -> list[str]:
    """A line per webhook sink: where it posts, what it owes, its dead letters."""
    lines = []
    for sink in sinks:
        backlog = sink["backlog"]
        owed = "no group yet" if backlog is None else f"{backlog['entries']} entries undelivered"
        dead = f"{sink['dead']} dead letters" + (
            f" (replay: runner notify replay {_show(sink['name'])} --all)" if sink["dead"] else ""
        )
        replaying = f", {sink['replaying']} replaying" if sink["replaying"] else ""
        lines.append(
            f"  webhook      {_show(sink['name'])} -> {_show(sink['url'])}: {owed}, {dead}"
            f"{replaying}; delivered by {_show(sink['holder'] or 'no daemon')}"
        )
    return lines


def _limit_lines(limits: dict[str, dict[str, Any]], times: TimeText) -> list[str]:
    """Per task with a cap, a rate or a fair key: what runs against it and what waits
    on each limit; then its busiest key values."""
    lines = []
    for i, (task, figures) in enumerate(limits.items()):
        lines.append(
            f"  {'limits' if i == 0 else '':<12} {_show(task)}: {_limit_text(figures, times)}"
        )
        lines += [f"{'':<16}{_show(key['key'])}: {_limit_text(key, times)}"
                  for key in figures.get("keys", [])]  # fmt: skip
    return lines


def _limit_text(figures: dict[str, Any], times: TimeText) -> str:
    cap, running = figures.get("concurrency"), f"running {figures['running']}"
    if cap and figures.get("concurrency_key"):
        running += f" (at most {cap} per {_show(figures['concurrency_key'])})"
    elif cap:
        running += f" of {cap}"
    waiting = figures["waiting"]
    parts = [running] + [f"{n} waiting for {what}" for what, n in (
        ("a slot", waiting["cap"]), ("the rate", waiting["rate"]),
        ("their key's turn", waiting["turn"])) if n]  # fmt: skip
    rate = figures.get("rate_per_s")
    if rate:
        parts.append(f"rate {rate:g}/s, {figures['rate_starts']} starts so far")
    if figures.get("next_start"):
        parts.append(f"next start {_show_time(figures['next_start'], times)}")
    return ", ".join(parts)
