"""Who may call the API: a bearer token, and where the server listens.

Mutating requests (POST, PATCH, DELETE) always need the token. Reads need it too
once the server listens beyond loopback, where anyone on the network could read
job data. The token travels only in the Authorization header, never in a cookie,
so a page on another site cannot make a browser send it: that is the whole CSRF
defence, and it needs no form tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from dataclasses import dataclass

from runner.config.values import secret
from runner.errors import ConfigError, RunnerError, UsageError

MUTATING = frozenset({"POST", "PATCH", "PUT", "DELETE"})
NO_TOKEN = (
    "this server has no token configured, so it refuses every change: set [web] token "
    "in the config (at least 16 characters) or RUNNER_WEB_TOKEN, restart `runner web`, "
    "and send it as 'Authorization: Bearer <token>'"
)


class AuthError(RunnerError):
    """A request without the right token: 401 when none was sent, 403 when it is wrong
    (or the server has none to compare with)."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


def check_listen(text: str, name: str) -> str:
    """`text` if it is "host:port" (or "[v6]:port"), else a UsageError naming `name`."""
    host, sep, port = text.rpartition(":")
    if not sep or not host.strip("[]") or not port.isdigit() or not 0 <= int(port) < 65536:
        raise UsageError(f"{name}: must be HOST:PORT, e.g. 127.0.0.1:8080, got {text!r}")
    return text


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach `host`: "localhost" or a loopback address.
    Anything else (0.0.0.0, a LAN address, a name) counts as the network."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# Host = uri-host [":" port] (RFC 9110 7.2, RFC 3986 3.2.2): an IP literal in brackets,
# or a name or IPv4 address made of the characters a reg-name allows.
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%!$&'()*+,;=-]+)(?::([0-9]{0,5}))?")


class BadHost(UsageError):
    """A request with no Host header, or one that names no host: a 400."""


def host_of(header: str | None) -> str:
    """The host of a Host header ("localhost:8080" -> "localhost", "[::1]:80" -> "::1");
    BadHost when there is none or it is not HOST[:PORT]."""
    if not header:
        raise BadHost(
            "the request has no Host header: send the server's name, e.g. "
            "'Host: localhost:8080' (every HTTP/1.1 client does)"
        )
    match = _HOST.fullmatch(header)
    if match is None or (match[2] and int(match[2]) > 65535):
        raise BadHost(
            f"malformed Host header {header!r}: it must be HOST[:PORT], e.g. localhost:8080 "
            "or [::1]:8080"
        )
    return match[1].strip("[]")


def check_host(loopback: bool, header: str | None) -> None:
    """Every request names a well-formed host (BadHost otherwise). On loopback, reads
    need no token, so a page on another site must not reach this server by pointing
    its own name at 127.0.0.1 (DNS rebinding): the Host a browser sends then names
    that site. Only loopback names are answered there."""
    host = host_of(header)
    if loopback and not is_loopback(host):
        raise AuthError(
            403,
            f"this server listens on loopback and answers only for localhost, 127.0.0.1 or "
            f"[::1], not for Host {header!r}; bind [web] listen to another address (with "
            "a token) to serve other names",
        )


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class TokenPolicy:
    """The token rules of one server: its token (None: none configured) and whether it
    listens on loopback only. A token shorter than the config allows is refused here
    too, whatever built the settings."""

    token: str | None
    loopback: bool

    def __post_init__(self) -> None:
        if self.token is not None:
            try:
                secret(self.token)
            except ValueError as exc:
                raise ConfigError([f"web.token (or RUNNER_WEB_TOKEN): {exc}"]) from None

    def check(self, method: str, authorization: str | None) -> None:
        """Raise AuthError unless a request with this method and Authorization header
        may proceed. A token sent with a read is checked even where reads need none,
        so a client with a stale token learns it at once."""
        needed = method in MUTATING or not self.loopback
        if authorization is None:
            if not needed:
                return
            if self.token is None:
                raise AuthError(403, NO_TOKEN)
            raise AuthError(
                401,
                "this request needs the token: send 'Authorization: Bearer <token>' "
                "([web] token in the config, or RUNNER_WEB_TOKEN)",
            )
        if self.token is None:
            raise AuthError(403, NO_TOKEN)
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise AuthError(401, "the Authorization header must be 'Bearer <token>'")
        # Digests of equal length, compared in constant time: how long the sent token
        # is, or how much of it matches, takes no measurable time to find out.
        if not hmac.compare_digest(_digest(given.strip()), _digest(self.token)):
            raise AuthError(403, "wrong token")
