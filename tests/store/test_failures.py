"""Driver exceptions become runner's own by kind: what decides retry, isolate or log."""

from __future__ import annotations

import asyncpg
import pytest
from redis import exceptions as redis_errors

from runner.errors import StoreDataError, StoreError, StoreUnavailable
from runner.store.failures import postgres_failure, redis_failure


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (ConnectionRefusedError(111, "refused"), StoreUnavailable),
        (asyncpg.exceptions.DeadlockDetectedError("deadlock detected"), StoreUnavailable),
        (asyncpg.exceptions.SerializationError("could not serialize"), StoreUnavailable),
        (asyncpg.exceptions.AdminShutdownError("terminating"), StoreUnavailable),
        (asyncpg.exceptions.CannotConnectNowError("starting up"), StoreUnavailable),
        (asyncpg.InternalClientError("cannot switch to state 12"), StoreUnavailable),
        (asyncpg.exceptions.InvalidTextRepresentationError("bad int"), StoreDataError),
        (asyncpg.exceptions.NotNullViolationError("null to_state"), StoreDataError),
        (asyncpg.exceptions.UndefinedTableError("no table"), StoreError),
        (asyncpg.exceptions.InvalidPasswordError("wrong password"), StoreError),
    ],
)
def test_postgres_errors_are_sorted_by_kind(exc: Exception, kind: type[StoreError]) -> None:
    """Passing failures are retried, data errors isolated, the rest logged and retried."""
    assert type(postgres_failure(exc)) is kind


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (redis_errors.ConnectionError("lost"), StoreUnavailable),
        (redis_errors.BusyLoadingError("loading"), StoreUnavailable),
        (redis_errors.ReadOnlyError("READONLY replica"), StoreUnavailable),
        (redis_errors.OutOfMemoryError("OOM"), StoreUnavailable),
        (redis_errors.ResponseError("BUSY script running"), StoreUnavailable),
        (redis_errors.AuthenticationError("invalid password"), StoreError),
        (redis_errors.ResponseError("ERR Error running script"), StoreError),
    ],
)
def test_redis_errors_are_sorted_by_kind(exc: Exception, kind: type[StoreError]) -> None:
    """A server that is away or busy is waited out; credentials and script errors are not."""
    assert type(redis_failure(exc)) is kind


def test_a_password_in_a_driver_message_is_redacted() -> None:
    """The server's words are kept, without the password of a URL they quote."""
    failure = redis_failure(redis_errors.ConnectionError("redis://u:s3cr3t@host:6379 refused"))
    assert "s3cr3t" not in str(failure) and "u:***@host" in str(failure)
