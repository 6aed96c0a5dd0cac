"""Passwords never reach a log line, an error message or a repr."""

from __future__ import annotations

import re

# The password runs to the LAST '@' (in free text: the last before whitespace), so one
# with an unencoded '/', '@', '?' or '#', which URL parsers split in the wrong place, is
# still hidden whole. Where that takes in more than the password, more is hidden.
_USERINFO = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/\s]*):(?P<password>\S*)@", re.IGNORECASE
)
_URL_USERINFO = re.compile(
    r"^(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/]*):(?P<password>.*)@",
    re.IGNORECASE | re.DOTALL,
)


def _hide(match: re.Match[str]) -> str:
    return f"{match['scheme']}{match['user']}:***@"


def redact_url(url: str | None) -> str | None:
    """The URL with any password replaced by '***' (user and host stay, for diagnosis)."""
    if url is None:
        return None
    return _URL_USERINFO.sub(_hide, url)


def redact_text(text: str) -> str:
    """Redact every URL password inside free text, e.g. a driver's exception message."""
    return _USERINFO.sub(_hide, text)
