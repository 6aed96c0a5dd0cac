"""The real servers the tests run against: the environment's, or embedded ones.

RUNNER_REDIS_URL and RUNNER_DATABASE_URL name existing servers; otherwise a
private Valkey and PostgreSQL are started for the session (never a fake, never
a skip). The Postgres URL must allow CREATE DATABASE: each test gets its own
database cloned from a migrated template.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from runner.servers.embedded import EmbeddedServers


@dataclass
class Servers:
    redis_url: str
    admin_database_url: str
    embedded: EmbeddedServers | None

    def database_url(self, name: str) -> str:
        parts = urlsplit(self.admin_database_url)
        return urlunsplit(parts._replace(path=f"/{name}"))


def start_servers() -> Servers:
    redis_url = os.environ.get("RUNNER_REDIS_URL")
    database_url = os.environ.get("RUNNER_DATABASE_URL")
    embedded = None
    if not (redis_url and database_url):
        embedded = EmbeddedServers(Path(tempfile.mkdtemp(prefix="runner-tests-")), durable=False)
        redis_url = redis_url or embedded.start_redis()
        database_url = database_url or embedded.start_postgres()
    return Servers(redis_url, database_url, embedded)
