"""Every JSON response the API sends, encoded one way, and the headers every API
response carries."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

SAFETY_HEADERS = {
    "X-Content-Type-Options": "nosniff",  # JSON is never sniffed into HTML
    "Cache-Control": "no-store",  # job data stays out of shared caches
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def dumps(value: Any) -> str:
    """JSON with <, > and & escaped: these can only occur inside a JSON string, so the
    escape changes no value, and no job data reads as markup wherever the text ends
    up (a page that embeds it, a browser that ignores the content type)."""
    text = orjson.dumps(value).decode()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def json_response(value: Any, status: int = 200) -> web.Response:
    return web.Response(text=dumps(value), status=status, content_type="application/json")
