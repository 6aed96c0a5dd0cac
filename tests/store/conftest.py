"""Fixtures of the store tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from runner.client.client import Client
from runner.config.settings import Settings
from runner.store.postgres.store import PgStore
from tests.store.parked import HORIZON_S


@pytest.fixture
def parking_client(make_settings: Callable[..., Settings], redis: Redis, pg: PgStore) -> Client:
    """A client that parks jobs due beyond HORIZON_S."""
    return Client(make_settings(park_horizon=HORIZON_S), redis, pg)
