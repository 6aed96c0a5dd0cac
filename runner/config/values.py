"""Checks of single config values: each returns the value as Settings holds it or
raises ValueError saying what is accepted (the reader adds the key path)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from runner.config.durations import parse_duration
from runner.config.sizes import parse_size
from runner.jobs import check_priority, check_queue_name
from runner.redact import redact_url


def positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"must be a whole number > 0, got {value!r}")
    return value


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


def non_negative_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"must be a whole number >= 0, got {value!r}")
    return value


def positive_duration(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"must be > 0, got {value!r}")
    return seconds


def duration_or(word: str) -> Callable[[Any], float | None]:
    """A positive duration, or `word` ("off", "forever") for None: no limit."""

    def check(value: Any) -> float | None:
        if value == word:
            return None
        try:
            return positive_duration(value)
        except ValueError as exc:
            raise ValueError(f"{exc}; or {word!r}") from None

    return check


MAX_LEAD_S = 0.005  # a daemon holds a delayed job at most this long before its due time


def lead_duration(value: Any) -> float | None:
    """The lead of delayed jobs: "auto" (None: from the measured claim round trip), or
    a duration from 0 (off) to 5 ms."""
    if value == "auto":
        return None
    try:
        seconds = non_negative_duration(value)
    except ValueError as exc:
        raise ValueError(f"{exc}; or 'auto'") from None
    if seconds > MAX_LEAD_S:
        raise ValueError(
            f"must be at most 5ms (a daemon holds a job no longer before its due time), "
            f"got {value!r}; or 'auto'"
        )
    return seconds


def non_negative_duration(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds < 0:
        raise ValueError(f"must be >= 0, got {value!r}")
    return seconds


def positive_size(value: Any) -> int:
    size = parse_size(value)
    if size <= 0:
        raise ValueError(f"must be > 0 bytes, got {value!r}")
    return size


def listen_address(value: Any) -> str:
    """host:port to listen on; [v6]:port for IPv6."""
    text = string(value)
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"must be host:port, e.g. 127.0.0.1:9464, got {text!r}")
    return text


def split_listen(listen: str) -> tuple[str, int]:
    """(host, port) of a "host:port" or "[v6]:port" that listen_address accepted."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def secret(value: Any) -> str:
    if not isinstance(value, str) or len(value) < 16:
        raise ValueError("must be a string of at least 16 characters (the value is not shown)")
    return value


def fraction(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"must be a number between 0 and 1, got {value!r}")
    return float(value)


def string(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be a non-empty string, got {value!r}")
    return value


def concurrency_key(value: Any) -> str:
    """Where a job's concurrency key is in its arguments: `kwargs.NAME` or `args.INDEX`."""
    path = string(value)
    where, dot, name = path.partition(".")
    if not dot or not name or where not in ("args", "kwargs"):
        raise ValueError(f"must be 'kwargs.NAME' or 'args.INDEX', got {path!r}")
    if where == "args" and not name.isdigit():
        raise ValueError(f"args takes an index from 0 ('args.0'), got {path!r}")
    return path


UNIQUE_MODES = ("queued", "running", "until_done")


def unique_mode(value: Any) -> str:
    """How long a unique job keeps its duplicates out: one of UNIQUE_MODES, or a
    duration ("10m"), kept as "for:<ms>"."""
    if value in UNIQUE_MODES:
        return str(value)
    try:
        ms = round(parse_duration(value) * 1000)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(
            f"must be {', '.join(UNIQUE_MODES)} or a duration like '10m', got {value!r}"
        ) from None
    if ms <= 0:
        raise ValueError(f"must be a duration above 0, got {value!r}")
    return f"for:{ms}"


def one_of(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}; got {value!r}")
        return str(value)

    return check


def url_of(*schemes: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = string(value)
        if not text.startswith(tuple(f"{s}://" for s in schemes)):
            raise ValueError(
                f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}, "
                f"got {redact_url(text)!r}"
            )
        problem = _url_problem(text)
        if problem:
            raise ValueError(f"cannot parse the URL {redact_url(text)!r}: {problem}")
        return text

    return check


_ENCODE_HINT = (
    "percent-encode special characters in the password (/ is %2F, @ is %40, ? is %3F, # is %23)"
)


def _url_problem(text: str) -> str | None:
    """What keeps a driver from reading the URL as meant, in words that never quote
    the password: an unencoded '/', '?' or '#' in it ends the host part early, so the
    password turns into a port, or the host into a path, and a driver's own error
    ("Port could not be cast to integer value as 'pa'") would print part of it."""
    try:
        parts = urlsplit(text)
        _ = parts.port  # ValueError unless a number in 0-65535
    except ValueError as exc:
        return _ENCODE_HINT if "@" in text else str(exc)
    if "@" in parts.path + parts.query + parts.fragment:
        return _ENCODE_HINT
    if parts.scheme in ("redis", "rediss") and not parts.hostname:
        return "no host; e.g. redis://localhost:6379/0"
    return None


def queue_name(value: Any) -> str:
    return check_queue_name(string(value))


def priority(value: Any) -> int:
    return check_priority(value)


def queue_weights(value: Any) -> dict[str, int]:
    """{queue: weight}: the queues a daemon serves; a weight is a whole number >= 1."""
    if not isinstance(value, dict) or not value:
        raise ValueError(
            f"must be a table of queue = weight, like {{ default = 1, reports = 3 }}; got {value!r}"
        )
    weights = {}
    for name, weight in value.items():
        try:
            weights[check_queue_name(name)] = positive_int(weight)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    return weights
