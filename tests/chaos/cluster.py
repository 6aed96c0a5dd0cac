"""One chaos cluster: private servers, N daemons on one config, a client, the verdict.

A scenario opens a cluster, puts load and faults on it, then calls `finish`:
wait for the work to drain, audit every accepted job, stop the daemons with
SIGTERM, and read their exit codes and logs. Whatever happens, `close` kills
every process and server the cluster started.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from runner.client.client import Client
from runner.config.settings import load_settings
from runner.store import redis_client
from runner.store.postgres.store import PgStore
from runner.store.redis.keys import Keys
from tests.chaos.audit import AuditReport, audit
from tests.chaos.daemons import ChaosDaemon, Fleet
from tests.chaos.drain import Drain, wait_drained
from tests.chaos.health import Health, check_health
from tests.chaos.memory import MemorySampler
from tests.chaos.servers import ChaosServers, servers_kind, start_servers
from tests.chaos.tasks import LEDGER_ENV, WRITES_LEDGER
from tests.daemon.process import write_config


def _task(target: str, kind: str, **options: Any) -> dict[str, Any]:
    return {"target": f"tests.chaos.tasks:{target}", "kind": kind, **options}


def ledger_tasks(tasks: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """The configured tasks whose target notes each execution in the ledger."""
    noting = {f"tests.chaos.tasks:{name}" for name in WRITES_LEDGER}
    return {name for name, values in tasks.items() if values.get("target") in noting}


_RETRY = {"backoff": "100ms", "backoff_max": "500ms", "backoff_jitter": 0}

# Normal work may be retried: a daemon killed mid-job costs the job an attempt.
TASKS: dict[str, dict[str, Any]] = {
    "async_work": _task("async_work", "async", timeout="10s", retries=3, **_RETRY),
    "io_work": _task("io_work", "io", timeout="10s", retries=3, **_RETRY),
    "cpu_work": _task("cpu_work", "cpu", timeout="10s", retries=3, **_RETRY),
    "flaky_io": _task("flaky_io", "io", retries=6, **_RETRY),
    "flaky_async": _task("flaky_async", "async", retries=6, **_RETRY),
    "always_fails": _task("always_fails", "async", retries=2, **_RETRY),
}


@dataclass(frozen=True)
class ClusterOptions:
    daemons: int = 3
    servers: str = field(default_factory=servers_kind)
    appendfsync: str = "everysec"
    lease_ttl: str = "2s"
    # Tasks that kill their own cpu worker make it print its last words on the
    # daemon's output; elsewhere a traceback there is a failure.
    allow_tracebacks: bool = False
    extra_tasks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass
class Verdict:
    """Everything a scenario asserts on, and the figures it reports."""

    drain: Drain
    audit: AuditReport
    health: Health
    stop_codes: dict[str, int | None]
    peak_daemon_mb: float
    peak_tree_mb: float

    def figures(self) -> dict[str, Any]:
        return {
            **self.audit.counts(),
            "drain_s": round(self.drain.seconds, 1),
            "daemon_runs": self.health.runs,
            "daemon_exits": len(self.health.exits),
            "tracebacks_after_kill": len(self.health.notes),
            "peak_daemon_rss_mb": round(self.peak_daemon_mb, 1),
            "peak_daemon_with_workers_mb": round(self.peak_tree_mb, 1),
        }

    def problems(self) -> list[str]:
        found = []
        if not self.drain.drained:
            found.append(self.drain.describe())
        if not self.audit.clean:
            found.append(self.audit.describe())
        if self.health.failures:
            found.append(self.health.describe())
        return found

    def assert_clean(self) -> None:
        problems = self.problems()
        assert not problems, "\n\n".join(problems)


class Cluster:
    def __init__(self, folder: Path, options: ClusterOptions) -> None:
        self.folder = folder
        self.options = options
        self.prefix = f"chaos-{secrets.token_hex(3)}"
        self.keys = Keys(self.prefix)
        self.ledger = folder / "ledger.txt"
        self.servers: ChaosServers | None = None
        self.fleet = Fleet([])
        self.memory = MemorySampler(
            lambda: [d.current.pid for d in self.fleet.daemons if d.alive()]
        )
        self._redis: Redis | None = None
        self._client: Client | None = None

    @property
    def redis_url(self) -> str:
        assert self.servers is not None
        return self.servers.redis.url

    @property
    def database_url(self) -> str:
        assert self.servers is not None
        return self.servers.postgres.url

    @property
    def redis(self) -> Redis:
        """The scenario's own connection, for writing bad data and reading results."""
        assert self._redis is not None
        return self._redis

    @property
    def tasks(self) -> dict[str, Mapping[str, Any]]:
        """Every task the daemons know, by name: the chaos mix and the scenario's own."""
        return {**TASKS, **self.options.extra_tasks}

    @property
    def client(self) -> Client:
        assert self._client is not None
        return self._client

    def _write_config(self) -> Path:
        sections: dict[str, Mapping[str, Any]] = {
            "redis": {"url": self.redis_url, "key_prefix": self.prefix},
            "postgres": {"url": self.database_url},
            "daemon": {"lease_ttl": self.options.lease_ttl, "shutdown_grace": "5s"},
            "pools": {"async": 100, "io": 8, "cpu": 2},
            "recorder": {"flush_interval": "50ms", "reclaim_after": "1s"},
            "log": {"level": "info", "format": "json"},
        }
        tasks = self.tasks
        sections.update({f"tasks.{name}": values for name, values in tasks.items()})
        return write_config(self.folder / "runner.toml", sections)

    async def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.servers = await asyncio.to_thread(
            start_servers, self.options.servers, self.folder / "servers", self.options.appendfsync
        )
        pg = await PgStore.connect(self.database_url)
        try:
            await pg.migrate()
        finally:
            await pg.close()
        config = self._write_config()
        logs = self.folder / "logs"
        logs.mkdir(exist_ok=True)
        env = {LEDGER_ENV: str(self.ledger)}
        self.fleet = Fleet(
            [ChaosDaemon(f"d{n}", config, logs, env) for n in range(self.options.daemons)]
        )
        self._redis = redis_client(self.redis_url)
        # As an application's client is: with Postgres, so that a chosen id is checked
        # as it would be (by Redis alone once the daemons filled the retired ids).
        self._client = Client(
            load_settings(config, env={}), redis_client(self.redis_url),
            database_url=self.database_url,
        )  # fmt: skip
        await self.fleet.start()
        self.memory.start()

    async def finish(self, ids: Sequence[str], drain_timeout: float = 60.0) -> Verdict:
        """Drain, audit, stop the daemons, judge their health."""
        drain = await wait_drained(self.redis, self.keys, self.database_url, ids, drain_timeout)
        report = await audit(
            self.redis, self.keys, self.database_url, ids, self.ledger, ledger_tasks(self.tasks)
        )
        self.memory.stop()
        codes = await self.fleet.stop()
        return Verdict(
            drain,
            report,
            check_health(self.fleet, self.options.allow_tracebacks),
            codes,
            self.memory.peak_daemon_kb / 1024,
            self.memory.peak_tree_kb / 1024,
        )

    async def close(self) -> None:
        """Kill what is left and stop the servers; safe after any failure."""
        self.memory.stop()
        self.fleet.cleanup()
        if self._client is not None:
            await self._client.close()
        if self._redis is not None:
            await self._redis.aclose()
        if self.servers is not None:
            await asyncio.to_thread(self.servers.close)
