"""Chaos fixtures: a cluster per test (its own servers, prefix and daemons), always
cleaned up (the figures of every scenario are printed by tests/conftest.py).

The daemons' logs live under the test's tmp_path, which pytest prunes after a few
sessions; RUNNER_CHAOS_KEEP names a folder to copy them to (`make chaos` keeps
them under var/chaos).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.cluster import Cluster, ClusterOptions

OpenCluster = Callable[..., Awaitable[Cluster]]
KEEP_ENV = "RUNNER_CHAOS_KEEP"


@pytest.fixture
async def open_cluster(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[OpenCluster]:
    """`await open_cluster(daemons=3, ...)`: a started cluster (ClusterOptions' fields);
    its daemons and servers are stopped after the test, whatever happened. The logs
    stay under the test's tmp_path."""
    clusters: list[Cluster] = []

    async def open_one(**options: Any) -> Cluster:
        cluster = Cluster(tmp_path / f"cluster{len(clusters)}", ClusterOptions(**options))
        clusters.append(cluster)
        await cluster.start()
        return cluster

    yield open_one
    for cluster in clusters:
        await cluster.close()
        if os.environ.get(KEEP_ENV):
            kept = Path(os.environ[KEEP_ENV]) / request.node.name / cluster.folder.name
            shutil.copytree(cluster.folder / "logs", kept / "logs", dirs_exist_ok=True)
            shutil.copy(cluster.folder / "runner.toml", kept)
