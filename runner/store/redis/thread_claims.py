"""claim.lua called from an io thread: a freed thread claims its own next job.

The loop's claims go through the asyncio client; a thread whose job just ended
would have to hand its slot to the loop, wait for the pump to wake, claim, and be
handed the next job: a round trip through the loop on every job's critical path.
Here the thread makes the same fenced claim itself, on a connection of its own,
and the loop takes the claimed job over (runner/daemon/self_claim.py). Same
script, same keys, same arguments: nothing about the claim differs from the pump's.

A thread holds the GIL while it builds a command and reads the reply, time the
loop and the other threads wait for; redis-py's blocking client spends about
115 µs of it on an EVALSHA here, a bare RESP connection (hiredis reading the
reply, as redis-py itself does) about 40. So a plain server gets the bare
connection; a cluster, TLS or a Unix socket, redis-py's client.
"""

from __future__ import annotations

import socket
import threading
from typing import Any
from urllib.parse import unquote, urlsplit

import hiredis
from redis import Redis as BlockingRedis
from redis.cluster import RedisCluster as BlockingCluster
from redis.exceptions import RedisError

from runner.jobs import ClaimResult
from runner.store.redis.connect import blocking_options
from runner.store.redis.keys import Keys
from runner.store.redis.runs import claim_args, claimed
from runner.store.redis.scripts import script_source

TIMEOUT_S = 5.0  # a thread cannot be cancelled: a server that stops answering is left


class ThreadClaims:
    """Claims of one kind's jobs, one at a time, from threads; thread-safe (each
    thread has a connection of its own)."""

    def __init__(self, url: str, cluster: bool, keys: Keys) -> None:
        self.keys = keys
        self._source = script_source("claim")
        parts = urlsplit(url)
        self._bare = parts.scheme == "redis" and not cluster
        if self._bare:
            self._url = parts
            self._local = threading.local()
            self._all: list[_Connection] = []
        else:
            client = BlockingCluster if cluster else BlockingRedis
            self._redis: Any = client.from_url(url, **blocking_options())
            self._script = self._redis.register_script(self._source)

    def claim_one(
        self, queue: str, kind: str, now_ms: int, daemon: str, *, lease_until_ms: int,
        aging_ms: int,
    ) -> ClaimResult | None:  # fmt: skip
        """At most one due job of `kind` from `queue`, claimed for `daemon`; None when
        Redis cannot be reached (the loop's pump claims then, as always)."""
        keys = list(self.keys.of_queue(queue).claim)
        args = claim_args(now_ms, {kind: 1}, daemon, lease_until_ms, aging_ms=aging_ms)
        try:
            if self._bare:
                reply = self._connection().script(self._source, keys, args)
            else:
                reply = self._script(keys=keys, args=args)
            return claimed(reply, queue)
        except (RedisError, OSError, hiredis.ProtocolError):
            self._drop()
            return None

    def warm(self) -> None:
        """In a thread: open its connection and load the script now, so that its first
        claim is one round trip like the others (50 threads opening theirs at once, as
        their first jobs end together, held each one's next job back by tens of ms)."""
        if not self._bare:
            return
        try:
            self._connection().load(self._source)
        except (RedisError, OSError, hiredis.ProtocolError):
            self._drop()  # its first claim tries again

    def _connection(self) -> _Connection:
        conn: _Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _Connection(self._url)
            self._local.conn = conn
            self._all.append(conn)
        return conn

    def _drop(self) -> None:
        """After an error, this thread's next claim opens a new connection."""
        conn = getattr(self._local, "conn", None) if self._bare else None
        if conn is not None:
            conn.close()
            self._local.conn = None
            self._all.remove(conn)

    def close(self) -> None:
        if self._bare:
            for conn in self._all:
                conn.close()
        else:
            self._redis.close()


class _Connection:
    """One RESP2 connection: EVALSHA, loading the script when the server lacks it."""

    def __init__(self, url: Any) -> None:
        self._sock = socket.create_connection((url.hostname, url.port or 6379), TIMEOUT_S)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._reader = hiredis.Reader(encoding="utf-8", errors="replace")
        self._sha: str | None = None
        if url.password is not None:
            user = [unquote(url.username)] if url.username else []
            self._call("AUTH", *user, unquote(url.password))
        db = url.path.strip("/")
        if db and db != "0":
            self._call("SELECT", db)

    def load(self, source: str) -> None:
        if self._sha is None:
            self._sha = str(self._call("SCRIPT", "LOAD", source))

    def script(self, source: str, keys: list[str], args: list[Any]) -> Any:
        if self._sha is not None:
            try:
                return self._call("EVALSHA", self._sha, len(keys), *keys, *args)
            except RedisError as exc:  # NOSCRIPT: the server restarted, or was flushed
                if not str(exc).startswith("NOSCRIPT"):
                    raise
        self._sha = str(self._call("SCRIPT", "LOAD", source))
        return self._call("EVALSHA", self._sha, len(keys), *keys, *args)

    def _call(self, *parts: Any) -> Any:
        self._sock.sendall(_pack(parts))
        while (reply := self._reader.gets()) is False:
            data = self._sock.recv(65536)
            if not data:
                raise OSError("Redis closed the connection")
            self._reader.feed(data)
        if isinstance(reply, hiredis.ReplyError):
            raise RedisError(str(reply))
        return reply

    def close(self) -> None:
        self._sock.close()


def _pack(parts: tuple[Any, ...]) -> bytes:
    chunks = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part.encode() if isinstance(part, str) else str(part).encode()
        chunks.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(chunks)
