"""Mistakes of a first hour with runner that must get a clear answer, not bad data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from redis.asyncio import Redis

from runner.store.keys import Keys
from tests.daemon.process import cli


async def test_arguments_with_a_nul_character_are_refused_at_enqueue(
    daemon_config: Callable[..., Path], redis: Redis, keys: Keys
) -> None:
    """Postgres cannot store \\u0000 in the history: exit 2 with the reason, and nothing
    reaches Redis; a literal backslash-u0000 text is fine."""
    config = daemon_config()
    done = cli("enqueue", "echo", "--args", '["a \\u0000 b"]', "--id", "nul", config=config)
    assert done.returncode == 2 and "NUL character" in done.stderr and "--args" in done.stderr
    assert not await redis.exists(keys.job("nul"))
    fine = cli("enqueue", "echo", "--args", '["a \\\\u0000 b"]', config=config)
    assert fine.returncode == 0, fine.stderr


async def test_ids_starting_with_cron_are_reserved(
    daemon_config: Callable[..., Path], redis: Redis, keys: Keys
) -> None:
    """A user's id cannot pre-empt a cron tick's deterministic id."""
    job_id = "cron:nightly:2030-01-01T00:00:00+00:00"
    done = cli("enqueue", "echo", "--id", job_id, config=daemon_config())
    assert done.returncode == 2 and "reserved for cron ticks" in done.stderr
    assert not await redis.exists(keys.job(job_id))


def test_version(daemon_config: Callable[..., Path]) -> None:
    """`runner --version` names the version."""
    done = cli("--version", config=daemon_config())
    assert done.returncode == 0 and done.stdout.startswith("runner 0.")
