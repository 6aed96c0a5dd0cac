"""runner: an asyncio job-runner daemon on Redis and PostgreSQL.

The client is imported on first use: `runner --version`, the CLI's help and every
cpu worker process start without loading Redis, Postgres and the client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runner.errors import (
    ConfigError,
    JobDeleted,
    JobFailed,
    JobNotFound,
    NotReplicated,
    PayloadError,
    QueueFull,
    RequestRefused,
    ResultTimeout,
    RunnerError,
    StoreDataError,
    StoreError,
    StoreUnavailable,
    TaskTimeout,
    UnknownDependency,
    UnknownTask,
    UnserialisableResult,
    UsageError,
)
from runner.workflows.canvas import chain, chord, group, step
from runner.workflows.fan_out import fan_out

# The client, what it returns, the shapes of a workflow, and every error a caller may
# catch (each a RunnerError).
__all__ = [
    "Client",
    "ConfigError",
    "JobDeleted",
    "JobFailed",
    "JobInfo",
    "JobNotFound",
    "NotReplicated",
    "PayloadError",
    "QueueFull",
    "RequestRefused",
    "ResultTimeout",
    "RunnerError",
    "StoreDataError",
    "StoreError",
    "StoreUnavailable",
    "TaskTimeout",
    "UnknownDependency",
    "UnknownTask",
    "UnserialisableResult",
    "UsageError",
    "chain",
    "chord",
    "fan_out",
    "group",
    "step",
]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from runner.client.client import Client
    from runner.client.job_info import JobInfo


def __getattr__(name: str) -> Any:
    if name in ("Client", "JobInfo"):
        from runner.client import client  # noqa: PLC0415  # on first use, see above

        return getattr(client, name)
    raise AttributeError(f"module 'runner' has no attribute {name!r}")
