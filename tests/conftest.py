"""Shared fixtures: real servers for the session; per test, a key prefix and a database.

Each test owns its data: a Redis key prefix of its own and a Postgres database
cloned from a migrated template, so tests run in any order.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from runner.client.client import Client
from runner.config.settings import Settings, TaskSettings
from runner.store import redis_client
from runner.store.postgres.migrate import migrate
from runner.store.postgres.store import PgStore
from runner.store.redis.keys import Keys
from runner.store.redis.store import RedisStore
from tests.chaos import figures
from tests.daemon.process import DaemonProcess, daemon_config_file
from tests.real_servers import Servers, start_servers

TEMPLATE_DB = f"runner_template_{secrets.token_hex(3)}"


def task(name: str, target: str, kind: str = "async", **options: Any) -> TaskSettings:
    return TaskSettings(name=name, target=f"tests.tasks:{target}", kind=kind, **options)  # type: ignore[arg-type]  # tests pass valid kinds


TEST_TASKS = {
    t.name: t
    for t in (
        task("echo", "echo"),
        task("noop", "noop"),
        task("sleep_async", "sleep_async", timeout=5),
        task("slow_async", "sleep_async", timeout=0.2),
        task("sleep_io", "sleep_io", "io", timeout=10),
        task("burn_cpu", "burn_cpu", "cpu", timeout=10),
        task("slow_cpu", "burn_cpu", "cpu", timeout=0.5),
        task("cpu_pid", "cpu_pid", "cpu"),
        task("crash_cpu", "crash_cpu", "cpu"),
        task("fail", "fail", "io", retries=3, backoff=0.2, backoff_max=2, backoff_jitter=0),
        task("fail_once", "fail", "io"),
        task("bad_result", "bad_result"),
        task("bad_result_cpu", "bad_result_cpu", "cpu"),
        task("noted_sleep", "noted_sleep", retries=2),
        task("noted_sleep_io", "noted_sleep_io", "io", retries=2),
    )
}


async def _admin(servers: Servers) -> Any:
    return await asyncpg.connect(servers.admin_database_url)


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    running = start_servers()
    asyncio.run(_create_template(running))
    yield running
    asyncio.run(_drop_database(running, TEMPLATE_DB))
    if running.embedded is not None:
        running.embedded.stop()


async def _create_template(servers: Servers) -> None:
    admin = await _admin(servers)
    try:
        await admin.execute(f"CREATE DATABASE {TEMPLATE_DB}")
    finally:
        await admin.close()
    conn = await asyncpg.connect(servers.database_url(TEMPLATE_DB))
    try:
        await migrate(conn)
    finally:
        await conn.close()


async def _drop_database(servers: Servers, name: str) -> None:
    admin = await _admin(servers)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture
async def database_url(servers: Servers) -> AsyncIterator[str]:
    """A fresh, migrated database for this test alone."""
    name = f"runner_test_{secrets.token_hex(4)}"
    admin = await _admin(servers)
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")
    finally:
        await admin.close()
    yield servers.database_url(name)
    await _drop_database(servers, name)


@pytest.fixture
async def redis(servers: Servers) -> AsyncIterator[Redis]:
    client = redis_client(servers.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(redis: Redis) -> AsyncIterator[str]:
    """A key prefix for this test alone; its keys are deleted afterwards."""
    name = f"test-{secrets.token_hex(4)}"
    yield name
    # {prefix}... and each queue's {prefix:q:NAME}...
    keys = [key async for key in redis.scan_iter(match=f"{{{name}[}}:]*", count=1000)]
    if keys:
        await redis.delete(*keys)


@pytest.fixture
def make_settings(servers: Servers, database_url: str, prefix: str) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        base = Settings(
            redis_url=servers.redis_url,
            database_url=database_url,
            key_prefix=prefix,
            lease_ttl=5,
            shutdown_grace=5,
            recorder_interval=0.05,
            io_threads=4,
            cpu_processes=2,
            tasks=TEST_TASKS,
            source="tests",
        )
        return replace(base, **overrides)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def keys(prefix: str) -> Keys:
    return Keys(prefix)


@pytest.fixture
def store(redis: Redis, keys: Keys) -> RedisStore:
    return RedisStore(redis, keys, keep_finished_ms=60_000)


@pytest.fixture
async def pg(database_url: str) -> AsyncIterator[PgStore]:
    pg_store = await PgStore.connect(database_url)
    yield pg_store
    await pg_store.close()


@pytest.fixture
async def client(settings: Settings, redis: Redis, pg: PgStore) -> Client:
    return Client(settings, redis, pg)


@pytest.fixture
def daemon_config(
    tmp_path: Path, servers: Servers, database_url: str, prefix: str
) -> Callable[..., Path]:
    def make(**sections: Any) -> Path:
        return daemon_config_file(
            tmp_path / "runner.toml", servers.redis_url, database_url, prefix, **sections
        )

    return make


@pytest.fixture
def spawn() -> Iterator[Callable[..., DaemonProcess]]:
    started: list[DaemonProcess] = []

    def start(config: Path, env: dict[str, str] | None = None) -> DaemonProcess:
        process = DaemonProcess(config, env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


# The figures of the chaos scenarios (tests/chaos/figures.py): each test's lines ride
# on its report from the worker process that ran it to the one that prints them.
FIGURES_PROPERTY = "chaos figures"
_figures_shown: list[str] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    report.user_properties.extend((FIGURES_PROPERTY, line) for line in figures.take())
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _figures_shown.extend(str(v) for k, v in report.user_properties if k == FIGURES_PROPERTY)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _figures_shown:
        terminalreporter.section("chaos figures")
        for line in _figures_shown:
            terminalreporter.write_line(line)
