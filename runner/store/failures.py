"""Driver exceptions become runner's own, here and nowhere else.

The engine decides what to do by kind, never by driver: `StoreUnavailable`
(retry after a pause), `StoreDataError` (isolate the datum), `StoreError`
(anything else the server refused: log it, pause, carry on). A message keeps
the server's words, with any URL password redacted.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

import asyncpg
from redis import exceptions as redis_errors

from runner.errors import StoreDataError, StoreError, StoreUnavailable
from runner.redact import redact_text

P = ParamSpec("P")
R = TypeVar("R")

# A Redis that is restarting, a read-only replica after a fail-over, a full
# memory or a busy script all pass: waiting is the answer, as for a lost socket.
_REDIS_PASSING = (
    redis_errors.ConnectionError,  # includes BusyLoadingError (the server is loading)
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,
    redis_errors.OutOfMemoryError,
    redis_errors.MasterDownError,
    redis_errors.TryAgainError,
    redis_errors.ClusterDownError,
    redis_errors.MaxConnectionsError,
    OSError,
    asyncio.TimeoutError,
)
_REDIS_PASSING_REPLIES = ("BUSY", "LOADING", "READONLY", "OOM", "MASTERDOWN", "TRYAGAIN")

# PostgreSQL: a lost or refused connection, a server shutting down or starting up
# (class 57), too many connections or a full disk (53), and a deadlock or a
# serialization failure (40) all pass on their own.
_PG_PASSING = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.TransactionRollbackError,
    # A pooled connection caught mid-operation by the server's shutdown message.
    asyncpg.InternalClientError,
)
# Class 22 (data exception), 23 (integrity constraint) and 54 (program limit, e.g.
# a value too large): the batch's data is at fault, not the server.
_PG_DATA = (
    asyncpg.exceptions.DataError,
    asyncpg.exceptions.IntegrityConstraintViolationError,
    asyncpg.exceptions.ProgramLimitExceededError,
)


def _text(exc: BaseException) -> str:
    return redact_text(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)


def redis_failure(exc: BaseException) -> StoreError:
    """The runner error for an exception raised by redis-py."""
    text = _text(exc)
    if isinstance(exc, redis_errors.AuthenticationError | redis_errors.AuthorizationError):
        return StoreError(f"redis refused the credentials: {text}", "redis")
    if isinstance(exc, _REDIS_PASSING) or (
        isinstance(exc, redis_errors.ResponseError) and str(exc).startswith(_REDIS_PASSING_REPLIES)
    ):
        return StoreUnavailable(f"redis unavailable: {text}", "redis")
    return StoreError(f"redis refused the request: {text}", "redis")


def postgres_failure(exc: BaseException) -> StoreError:
    """The runner error for an exception raised by asyncpg."""
    text = _text(exc)
    if isinstance(exc, _PG_PASSING):
        return StoreUnavailable(f"postgres unavailable: {text}", "postgres")
    if isinstance(exc, _PG_DATA):
        return StoreDataError(f"postgres rejected the data: {text}", "postgres")
    return StoreError(f"postgres refused the request: {text}", "postgres")


_REDIS_RAISES = (redis_errors.RedisError, OSError, asyncio.TimeoutError)
_PG_RAISES = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    asyncio.TimeoutError,
)


def _translating(
    raises: tuple[type[BaseException], ...], translate: Callable[[BaseException], StoreError]
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """A decorator for store verbs: a driver's `raises` leave them as `translate` says."""

    def decorate(func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(func)
        async def verb(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return await func(*args, **kwargs)
            except raises as exc:
                raise translate(exc) from exc

        return verb

    return decorate


on_redis = _translating(_REDIS_RAISES, redis_failure)
on_postgres = _translating(_PG_RAISES, postgres_failure)
