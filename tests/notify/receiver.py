"""A real HTTP endpoint for webhook tests: records every request it accepts, refuses
a chosen share of them, and can go down (its port closed) and come back."""

from __future__ import annotations

import random
import socket
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from runner.notify.signing import verify


@dataclass
class Received:
    event_id: str
    body: dict[str, Any]
    signed: bool
    at: float  # the receiver's clock (unix seconds) when it accepted the request


@dataclass
class Receiver:
    secret: str
    fail_share: float = 0.0
    seed: int = 7
    accepted: list[Received] = field(default_factory=list)
    refused: int = 0
    port: int = 0
    _runner: web.AppRunner | None = None
    _site: web.TCPSite | None = None

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        if not self.port:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                self.port = probe.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await self.up()

    @property
    def is_up(self) -> bool:
        return self._site is not None

    async def up(self) -> None:
        assert self._runner is not None
        if self._site is not None:
            return
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()

    async def down(self) -> None:
        """Close the port: requests meet a refused connection until `up`."""
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.rng.random() < self.fail_share:
            self.refused += 1
            return web.Response(status=500, text="not now")
        signed = verify(
            self.secret, request.headers.get("Runner-Timestamp", ""), body,
            request.headers.get("Runner-Signature", ""), time.time(),
        )  # fmt: skip
        self.accepted.append(
            Received(request.headers.get("Runner-Event-Id", ""), orjson.loads(body), signed,
                     time.time())
        )  # fmt: skip
        return web.Response(status=204)

    def by_job(self) -> dict[str, list[int]]:
        """Each job's seqs in the order they were accepted (duplicates included)."""
        seqs: dict[str, list[int]] = defaultdict(list)
        for received in self.accepted:
            seqs[received.body["job_id"]].append(received.body["seq"])
        return seqs


def in_seq_order(seqs: list[int]) -> bool:
    """Each seq accepted for the first time comes after every seq accepted before it;
    a repeat (an at-least-once duplicate, recognised by its event id) may come late."""
    seen: set[int] = set()
    highest = 0
    for seq in seqs:
        if seq not in seen and seq < highest:
            return False
        seen.add(seq)
        highest = max(highest, seq)
    return True
