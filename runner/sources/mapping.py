"""One message -> one job, or the reason it cannot be one.

The message is someone else's data: every field is checked (JSON that parses, of
the right shape, a task in the allow-list, a size within `max_message`), and the
job is then built by the client's own `new_job`, so a source enforces exactly what
any enqueue enforces (payload size, JSON PostgreSQL can hold, job id rules). A
reason is a sentence for the dead-letter stream, naming the field at fault.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from runner.client.client import Client
from runner.config.sources import SourceSettings
from runner.errors import UsageError
from runner.jobs import NewJob
from runner.store import SourceMessage


class Rejected(ValueError):
    """Why a message is no job: its text goes to the dead-letter stream."""


def job_id_of(source: SourceSettings, message: SourceMessage) -> str:
    """The id a message's job gets when it names none: the stream's (or list's) name and
    the message's own id, the same at every redelivery."""
    return f"{source.key}:{message.id}"


def to_job(client: Client, source: SourceSettings, message: SourceMessage) -> NewJob:
    """The job this message asks for; Rejected saying why not."""
    if message.problem is not None:
        raise Rejected(message.problem)
    if not message.size_within(source.max_message):
        size = message.size_bytes()
        raise Rejected(f"too big: {size:,} bytes, over max_message ({source.max_message:,})")
    fields = _fields(source, message)
    task = source.task or _text(fields, source.task_field, required=True)
    args = [message.item] if source.format == "text" else _value(fields, source.args_field, list)
    kwargs = {} if source.format == "text" else _value(fields, source.kwargs_field, dict)
    job_id = (source.id_field and _text(fields, source.id_field)) or job_id_of(source, message)
    try:
        return client.new_job(
            str(task), args or [], kwargs or {}, job_id=job_id,
            delay=_delay(fields, source.delay_field), at=_due(fields, source.due_field),
        )  # fmt: skip
    except UsageError as exc:
        raise Rejected(str(exc)) from None


def _fields(source: SourceSettings, message: SourceMessage) -> Mapping[str, Any]:
    """A stream entry's fields; a JSON list item's object ({} for a text item)."""
    if message.fields is not None:
        return message.fields
    if source.format == "text":
        return {}
    try:
        value = orjson.loads(message.item or "")
    except orjson.JSONDecodeError as exc:
        raise Rejected(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise Rejected(f"not a JSON object: got {type(value).__name__}")
    return value


def _text(fields: Mapping[str, Any], name: str, required: bool = False) -> str | None:
    value = fields.get(name)
    if value is None:
        if required:
            raise Rejected(f"field {name!r} missing: it names the task")
        return None
    if not isinstance(value, str) or not value:
        raise Rejected(f"field {name!r}: must be a non-empty string, got {value!r:.80}")
    return value


def _value(fields: Mapping[str, Any], name: str, kind: type) -> Any:
    """A JSON array (args) or object (kwargs): JSON text in a stream field, or either
    JSON text or the value itself in a JSON list item."""
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise Rejected(f"field {name!r}: not JSON ({exc})") from None
    if not isinstance(value, kind):
        wanted = "a JSON array" if kind is list else "a JSON object"
        raise Rejected(f"field {name!r}: must be {wanted}, got {type(value).__name__}")
    return value


def _number(fields: Mapping[str, Any], name: str) -> float | None:
    value = fields.get(name)
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise Rejected(f"field {name!r}: must be a number, got {value!r:.80}") from None
    if not math.isfinite(number) or number < 0:
        raise Rejected(f"field {name!r}: must be a finite number >= 0, got {value!r:.80}")
    return number


def _delay(fields: Mapping[str, Any], name: str | None) -> float | None:
    """Seconds from now."""
    return _number(fields, name) if name else None


def _due(fields: Mapping[str, Any], name: str | None) -> datetime | None:
    """A due time: ms since the epoch, or RFC 3339 text with an offset."""
    if not name or fields.get(name) is None:
        return None
    value = fields[name]
    if isinstance(value, str) and not value.strip().isdigit():
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise Rejected(f"field {name!r}: not RFC 3339 nor ms since the epoch") from None
        if moment.tzinfo is None:
            raise Rejected(f"field {name!r}: give the time with an offset (Z or +HH:MM)")
        return moment
    ms = _number(fields, name)
    try:
        return datetime.fromtimestamp((ms or 0) / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise Rejected(f"field {name!r}: {value!r:.80} is out of range") from None
