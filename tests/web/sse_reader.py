"""Server-Sent Events read off an aiohttp response, as a browser's EventSource would:
fields up to a blank line make an event; comment lines are kept apart (heartbeats)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientResponse


@dataclass
class SseEvent:
    name: str
    data: Any
    id: str | None


@dataclass
class SseReader:
    response: ClientResponse
    comments: list[str] = field(default_factory=list)

    async def next(self, timeout: float = 10.0) -> SseEvent | None:
        """The next event; None at the end of the stream."""
        fields: dict[str, str] = {}
        async with asyncio.timeout(timeout):
            while True:
                raw = await self.response.content.readline()
                if not raw:
                    return None
                line = raw.decode().rstrip("\n")
                if line.startswith(":"):
                    self.comments.append(line[1:].strip())
                elif line:
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
                elif "data" in fields:
                    data = json.loads(fields["data"])
                    return SseEvent(fields.get("event", "message"), data, fields.get("id"))
                else:
                    fields = {}  # a retry: line alone

    async def next_comment(self, timeout: float = 10.0) -> str:
        """The next comment line's text (a heartbeat), skipping anything else."""
        async with asyncio.timeout(timeout):
            while True:
                raw = await self.response.content.readline()
                assert raw, "the stream ended before a comment"
                if raw.startswith(b":"):
                    return raw.decode()[1:].strip()

    async def until(self, count: int, timeout: float = 10.0) -> list[SseEvent]:
        """The next `count` events (AssertionError if the stream ends first)."""
        events: list[SseEvent] = []
        while len(events) < count:
            event = await self.next(timeout)
            assert event is not None, f"the stream ended after {events}"
            events.append(event)
        return events
