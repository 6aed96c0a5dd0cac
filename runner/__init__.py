"""runner: an asyncio job-runner daemon on Redis and PostgreSQL."""

from runner.client import Client, JobInfo
from runner.errors import (
    ConfigError,
    InvalidTransition,
    JobNotFound,
    PayloadError,
    RunnerError,
    UnknownTask,
    UsageError,
)

__all__ = [
    "Client",
    "ConfigError",
    "InvalidTransition",
    "JobInfo",
    "JobNotFound",
    "PayloadError",
    "RunnerError",
    "UnknownTask",
    "UsageError",
]
__version__ = "0.1.0"
