"""runner: an asyncio job-runner daemon on Redis and PostgreSQL."""

from runner.client import Client, JobInfo
from runner.errors import (
    ConfigError,
    JobNotFound,
    PayloadError,
    RunnerError,
    UnknownTask,
    UsageError,
)

__all__ = [
    "Client",
    "ConfigError",
    "JobInfo",
    "JobNotFound",
    "PayloadError",
    "RunnerError",
    "UnknownTask",
    "UsageError",
]
__version__ = "0.1.0"
