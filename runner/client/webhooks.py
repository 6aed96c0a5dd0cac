"""Webhook sinks as an operator sees them: the part of `runner status` about each
`[notify.NAME]` (dead letters, replays waiting, what it has not delivered yet, which
daemon delivers), and sending dead letters again (`runner notify replay`,
`POST /api/notify/NAME/replay`)."""

from __future__ import annotations

from typing import Any

from runner.client.client import Client
from runner.errors import RunnerError, UsageError
from runner.redact import redact_url


class SinkNotFound(UsageError):
    """A sink name the config does not declare."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(
            f"no webhook sink {name!r}: the config declares "
            f"{', '.join(sorted(known)) or 'none'} under [notify]"
        )


class NothingToReplay(RunnerError):
    """No dead letter matched a replay."""


async def webhook_status(client: Client) -> list[dict[str, Any]]:
    """One entry per configured sink, in name order."""
    found = []
    queues = await client.store.queue_names(fresh=True)
    for name, sink in sorted(client.settings.notify.items()):
        summary = await client.store.sink(name).summary()
        for queue in queues[1:]:  # what the sink owes in each queue's stream too
            owed = (await client.store.queue(queue).sink(name).summary())["backlog"]
            if owed is not None and summary["backlog"] is not None:
                summary["backlog"]["entries"] += owed["entries"]
        found.append({"name": name, "url": redact_url(sink.url), **summary})
    return found


async def replay(client: Client, name: str, event_id: str | None) -> dict[str, Any]:
    """Send the dead letter of `event_id` (or, with None, every dead letter) of sink
    `name` again: the sink's delivering daemon takes them with a fresh retry budget.
    SinkNotFound for an unknown sink; NothingToReplay when no dead letter matched."""
    if name not in client.settings.notify:
        raise SinkNotFound(name, list(client.settings.notify))
    moved = await client.store.sink(name).replay(event_id)
    if event_id is not None and not moved:
        raise NothingToReplay(f"sink {name!r} has no dead letter for event {event_id!r}")
    return {"sink": name, "event_id": event_id, "replayed": moved}
