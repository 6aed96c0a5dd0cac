"""The dashboard: one page and its assets, served by `runner web` itself.

Everything the browser needs (runner/web/static: index.html, app.js, charts.js,
style.css) ships in the package, so the dashboard works on a host with no
internet and needs no build step. The page reads and acts through the JSON API
alone, with the token the operator pastes (kept in sessionStorage, sent as an
Authorization header: no cookie, so a request forged by another site carries no
credentials). The headers set here are the second line of defence: a Content
Security Policy that runs only the process's own scripts, so a job argument that
somehow reached the DOM as markup still could not execute.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).with_name("static")

_CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # Revalidate each time (aiohttp answers 304 from the file's mtime): an upgraded
    # package's page and scripts are never mixed with a cached older one.
    "Cache-Control": "no-cache",
}


async def index(request: web.Request) -> web.FileResponse:
    """The single page; routing inside it is by the URL's #fragment."""
    return web.FileResponse(STATIC / "index.html", headers=_HEADERS)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """The dashboard's headers on its assets too (the API sets its own)."""
    if request.path.startswith("/static/"):
        for name, value in _HEADERS.items():
            response.headers.setdefault(name, value)


def add_dashboard_routes(app: web.Application) -> None:
    """GET / and /static/*; call before the app is frozen (make_app does)."""
    app.router.add_get("/", index, name="dashboard")
    app.router.add_static("/static/", STATIC, name="static", follow_symlinks=False)
    app.on_response_prepare.append(_security_headers)
