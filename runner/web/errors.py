"""What each error becomes over HTTP: one table, a status and a JSON body.

The message is the one the CLI prints for the same error, so a person reading
either learns the same thing; a refusal also carries the job's state, so a script
can act on it without parsing the sentence.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from runner.client.webhooks import NothingToReplay, SinkNotFound
from runner.errors import (
    JobDeleted,
    JobNotFound,
    QueueFull,
    RequestRefused,
    RunnerError,
    StoreError,
    StoreUnavailable,
    UnknownTask,
    UsageError,
)
from runner.redact import redact_text
from runner.web.auth import AuthError
from runner.web.output import json_response


class TaskNotFound(RunnerError):
    """A task named in a route's path that the config does not declare."""

    def __init__(self, task: str, known: list[str]) -> None:
        super().__init__(
            f"no such task {task!r}: the config declares {', '.join(sorted(known)) or 'none'}"
        )


# The first match wins, so subclasses come before their base (as in cli.py).
STATUSES: tuple[tuple[type[Exception], int, str], ...] = (
    (UnknownTask, 422, ""),
    (SinkNotFound, 404, ""),
    (NothingToReplay, 404, ""),
    (UsageError, 400, ""),
    (JobNotFound, 404, ""),
    (TaskNotFound, 404, ""),
    (JobDeleted, 410, ""),
    (RequestRefused, 409, ""),
    (QueueFull, 429, ""),
    (StoreUnavailable, 503, "cannot reach a server: "),
    (StoreError, 500, ""),
    (RunnerError, 500, ""),
)


def error_response(status: int, error: str, extra: dict[str, Any] | None = None) -> web.Response:
    return json_response({"error": error, **(extra or {})}, status=status)


def response_for(exc: Exception) -> web.Response | None:
    """The response for one of runner's errors; None for anything else (a bug, which
    aiohttp reports as a 500 and logs with its traceback)."""
    if isinstance(exc, AuthError):
        return error_response(exc.status, str(exc))
    for kind, status, prefix in STATUSES:
        if isinstance(exc, kind):
            extra = {"state": exc.state} if isinstance(exc, RequestRefused) else {}
            return error_response(status, f"{prefix}{redact_text(str(exc))}", extra)
    return None


def http_error_response(exc: web.HTTPException, request: web.Request) -> web.Response:
    """aiohttp's own refusals (no such route, wrong method, a body too large) as JSON
    with the same status, for clients that always parse the body; a 404 under /api
    lists the routes there are, a 405 the methods the route takes."""
    asked = f"{request.method} {request.path}"
    if exc.status == 404 and (request.path + "/").startswith("/api/"):
        error = f"no route {asked}; the API's routes: {', '.join(api_routes(request.app))}"
    elif exc.status == 404:
        error = f"no page {request.path}: the dashboard is at / and the API under /api"
    elif isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods - {"HEAD"}))
        error = f"{asked}: this route takes {allowed}"
    elif exc.status == 413:
        error = "the request body is too large"
    else:
        error = exc.reason
    return error_response(exc.status, error)


def api_routes(app: web.Application) -> list[str]:
    """ "METHOD /path" of every API route, by path then method."""
    found = {
        (route.resource.canonical, route.method)
        for route in app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith("/api/")
        and route.method != "HEAD"
    }
    return [f"{method} {path}" for path, method in sorted(found)]
