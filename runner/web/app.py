"""The aiohttp application: the API's routes, the dashboard's, one
Client for the process, and the middleware every request passes through (token
rules, errors as JSON, headers that keep a browser from treating data as a page).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from runner.client.client import Client
from runner.config.settings import Settings
from runner.config.values import split_listen
from runner.logs import get_logger
from runner.web.api import CLIENT, COUNTS, SETTINGS, routes
from runner.web.auth import BadHost, TokenPolicy, check_host, is_loopback
from runner.web.errors import error_response, http_error_response, response_for
from runner.web.live import add_live_routes
from runner.web.output import SAFETY_HEADERS
from runner.web.pages import add_dashboard_routes
from runner.web.views import task_counter

log = get_logger()
ClientFactory = Callable[[Settings], Awaitable[Client]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
POLICY = web.AppKey("policy", TokenPolicy)
MAX_BODY = 64 * 1024 * 1024  # a batch of jobs; each job's payload is checked on its own


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Only loopback names on a loopback server, token rules for the API, runner's
    errors and aiohttp's refusals as JSON, and the safety headers on every response."""
    try:
        policy = request.app[POLICY]
        check_host(policy.loopback, request.headers.get("Host"))
        if request.path.startswith("/api/") or request.path == "/api":
            policy.check(request.method, request.headers.get("Authorization"))
        response = await handler(request)
    except BadHost as exc:
        # A client's mistake, or a scanner's: worth a line, not an error.
        log.info("request refused", status=400, error=str(exc), remote=request.remote)
        response = error_response(400, str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = http_error_response(exc, request)
    except Exception as exc:
        mapped = response_for(exc)
        if mapped is None:
            raise
        response = mapped
    if not response.prepared:  # a stream (live.py) sent the same with its own
        response.headers.update(SAFETY_HEADERS)
    return response


def make_app(settings: Settings, client_factory: ClientFactory = Client.connect) -> web.Application:
    """The application for `settings`; `client_factory` makes the one Client it uses
    (at startup, closed at cleanup), so tests can hand in their own servers."""
    app = web.Application(middlewares=[guard], client_max_size=MAX_BODY)
    app[SETTINGS] = settings
    host, _ = split_listen(settings.web_listen)
    app[POLICY] = TokenPolicy(settings.web_token, is_loopback(host))

    async def client_context(app: web.Application) -> AsyncIterator[None]:
        app[CLIENT] = await client_factory(settings)
        app[COUNTS] = task_counter(app[CLIENT])
        try:
            yield
        finally:
            await app[COUNTS].close()
            await app[CLIENT].close()

    app.cleanup_ctx.append(client_context)
    app.add_routes(routes)
    add_live_routes(app)
    add_dashboard_routes(app)
    return app
