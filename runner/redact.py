"""Passwords never reach a log line, an error message or a repr."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/]*):(?P<password>[^@/]*)@")


def redact_url(url: str | None) -> str | None:
    """The URL with any password replaced by '***' (user and host stay, for diagnosis)."""
    if url is None:
        return None
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", url)


def redact_text(text: str) -> str:
    """Redact every URL password inside free text, e.g. a driver's exception message."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
