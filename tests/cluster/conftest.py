"""A real Redis Cluster (3 primaries, 3 replicas) for the session, and settings on it.

The tests that only use the cluster share it, each with its own key prefix (so its
own slot, served by one of the three primaries); a test that kills a node starts a
cluster of its own (tests/redis_cluster.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from runner.config.settings import Settings
from tests.conftest import TEST_TASKS
from tests.redis_cluster import RedisClusterServers, start_cluster


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterServers]:
    cluster = start_cluster()
    yield cluster
    cluster.close()


@pytest.fixture
def cluster_prefix() -> str:
    return f"cluster-{secrets.token_hex(4)}"


@pytest.fixture
def cluster_settings(
    redis_cluster: RedisClusterServers, database_url: str, cluster_prefix: str
) -> Callable[..., Settings]:
    """Settings for a daemon or client on the cluster (`cluster = true`)."""

    def make(**overrides: Any) -> Settings:
        base = Settings(
            redis_url=redis_cluster.url, redis_cluster=True, database_url=database_url,
            key_prefix=cluster_prefix, lease_ttl=5, shutdown_grace=5,
            recorder_interval=0.05, io_threads=4, cpu_processes=2, tasks=TEST_TASKS,
            source="tests",
        )  # fmt: skip
        return replace(base, **overrides)

    return make
