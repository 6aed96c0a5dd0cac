"""`[sources.NAME]`: where applications already put work, and how a message becomes a job.

A source names a Redis stream (read through a consumer group) or a Redis list (the
reliable-queue pattern) on runner's Redis or its own `url`, and the mapping of a
message to a job: a fixed `task` or a field naming one (checked against the
allow-list, [tasks]), the fields holding args, kwargs, an id, a delay or a due
time. Every key is checked here, with its path, so a typo fails `check-config`
instead of a source that silently reads nothing.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runner.config.reader import TableReader
from runner.config.values import (
    one_of,
    positive_duration,
    positive_int,
    positive_size,
    string,
    url_of,
)
from runner.redact import redact_url

SOURCE_KINDS = ("redis-stream", "redis-list", "kafka")
FORMATS = ("json", "text")
REDIS_SCHEMES = ("redis", "rediss", "unix")

_KEYS = {
    "kind", "url", "stream", "list", "task", "task_field", "args_field", "kwargs_field",
    "id_field", "delay_field", "due_field", "dead_letter", "group", "claim_idle", "batch",
    "block", "max_message", "max_backlog", "format", "bootstrap", "topic",
}  # fmt: skip
_WHERE = {"redis-stream": "stream", "redis-list": "list", "kafka": "topic"}


@dataclass(frozen=True)
class SourceSettings:
    """One source: where to read (`key` is the stream's or the list's name) and how a
    message maps to a job. `url` None: runner's own Redis."""

    name: str
    kind: str
    key: str
    dead_letter: str
    url: str | None = field(default=None, repr=False)
    task: str | None = None  # a fixed task; else the message's `task_field` names it
    task_field: str = "task"
    args_field: str = "args"
    kwargs_field: str = "kwargs"
    id_field: str | None = None
    delay_field: str | None = None  # seconds from now
    due_field: str | None = None  # ms since the epoch, or RFC 3339
    group: str = "runner"
    claim_idle: float = 30.0  # a dead consumer's messages are taken over after this
    batch: int = 500
    block: float = 1.0  # how long one blocking read waits for a message
    max_message: int = 1_000_000  # bytes; a longer message is dead-lettered
    max_backlog: int | None = None  # due jobs of the task's kind past which reading stops
    format: str = "json"  # lists, Kafka: "text" makes the whole item the one positional argument
    bootstrap: str | None = None  # Kafka: the brokers to start from, "host:port,..."

    @property
    def is_stream(self) -> bool:
        return self.kind == "redis-stream"

    @property
    def is_kafka(self) -> bool:
        return self.kind == "kafka"

    def __repr__(self) -> str:
        return (
            f"SourceSettings(name={self.name!r}, kind={self.kind!r}, key={self.key!r}, "
            f"url={redact_url(self.url)!r}, task={self.task!r})"
        )


def read_sources(
    read: TableReader, data: Mapping[str, Any], tasks: Mapping[str, Any]
) -> dict[str, SourceSettings]:
    """Every `[sources.NAME]` that is sound; each problem recorded with its key path."""
    raw = read.table(data, "sources", set(data.get("sources", {})))
    sources = {name: _source(read, name, table, tasks) for name, table in raw.items()}
    return {name: source for name, source in sources.items() if source is not None}


def _source(
    read: TableReader, name: str, raw: Any, tasks: Mapping[str, Any]
) -> SourceSettings | None:
    path = f"sources.{name}"
    if not isinstance(raw, dict):
        read.problems.append(f"{path}: must be a table, got {raw!r}")
        return None
    before = len(read.problems)
    read.unknown_keys(raw, path, _KEYS)
    if "kind" not in raw:
        read.problems.append(f"{path}.kind: missing; use one of {', '.join(SOURCE_KINDS)}")
    kind = read.get(raw, f"{path}.kind", "", one_of(*SOURCE_KINDS))
    key = _key(read, path, raw, kind)
    task = read.get(raw, f"{path}.task", None, string)
    if task is not None and task not in tasks:
        read.problems.append(
            f"{path}.task: unknown task {task!r} (declared: {', '.join(sorted(tasks)) or 'none'})"
        )
    text = read.get(raw, f"{path}.format", "json", one_of(*FORMATS))
    _check_format(read, path, kind, text, task)
    bootstrap = _bootstrap(read, path, raw, kind)
    source = SourceSettings(
        name=name,
        kind=kind,
        key=key,
        dead_letter=read.get(raw, f"{path}.dead_letter", f"{key}:dead-letter", string),
        url=read.get(raw, f"{path}.url", None, url_of(*REDIS_SCHEMES)),
        task=task,
        **_fields(read, path, raw),
        group=read.get(raw, f"{path}.group", "runner", string),
        claim_idle=read.get(raw, f"{path}.claim_idle", 30.0, positive_duration),
        batch=read.get(raw, f"{path}.batch", 500, positive_int),
        block=read.get(raw, f"{path}.block", 1.0, positive_duration),
        max_message=read.get(raw, f"{path}.max_message", 1_000_000, positive_size),
        max_backlog=read.get(raw, f"{path}.max_backlog", None, positive_int),
        format=text,
        bootstrap=bootstrap,
    )
    return source if len(read.problems) == before else None


def _key(read: TableReader, path: str, raw: Mapping[str, Any], kind: str) -> str:
    """The stream's name for a stream source, the list's for a list source, the
    topic's for a Kafka source."""
    if not kind:
        return ""
    wanted = _WHERE[kind]
    for other in sorted(set(_WHERE.values()) - {wanted}):
        if other in raw:
            read.problems.append(
                f"{path}.{other}: a {kind} source reads a {wanted}; use {wanted} ="
            )
    if wanted not in raw:
        read.problems.append(f"{path}.{wanted}: missing; name the {wanted} to read")
    return read.get(raw, f"{path}.{wanted}", "", _key_name)


def _bootstrap(read: TableReader, path: str, raw: Mapping[str, Any], kind: str) -> str | None:
    """A Kafka source's brokers ("host:port,host:port"); no other kind has any, and a
    Kafka source reads no Redis of its own (its dead letters go to runner's)."""
    if kind and kind != "kafka":
        if "bootstrap" in raw:
            read.problems.append(f"{path}.bootstrap: only a kafka source has brokers")
        return None
    if not kind:
        return None
    if "url" in raw:
        read.problems.append(
            f"{path}.url: a kafka source names its brokers with bootstrap = 'host:port'; "
            "its dead letters go to runner's own Redis"
        )
    if "bootstrap" not in raw:
        read.problems.append(f"{path}.bootstrap: missing; give the brokers as 'host:port,...'")
        return None
    _kafka_client(read, path)
    return read.get(raw, f"{path}.bootstrap", None, _brokers)


def _brokers(value: Any) -> str:
    text = string(value)
    for broker in text.split(","):
        host, sep, port = broker.strip().rpartition(":")
        if not (sep and host and port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"expected 'host:port' brokers separated by commas, got {text!r}")
    return ",".join(broker.strip() for broker in text.split(","))


def _kafka_client(read: TableReader, path: str) -> None:
    """The Kafka client is an optional dependency: say how to install it."""
    if importlib.util.find_spec("aiokafka") is None:  # looked up, not imported
        read.problems.append(
            f"{path}.kind: a kafka source needs the aiokafka package: pip install 'runner[kafka]'"
        )


def _key_name(value: Any) -> str:
    """A stream's or list's name: it starts the ids of the jobs made from it, so it holds
    no space or control character and does not start like a cron tick's id."""
    text = string(value)
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in text):
        raise ValueError(f"must have no spaces or control characters, got {text!r}")
    if text == "cron" or text.startswith("cron:"):
        raise ValueError(f"names starting with 'cron:' are kept for cron ticks, got {text!r}")
    return text


def _check_format(read: TableReader, path: str, kind: str, text: str, task: str | None) -> None:
    if text == "text" and kind == "redis-stream":
        read.problems.append(
            f"{path}.format: only redis-list and kafka sources have items of plain text"
        )
    if text == "text" and task is None:
        read.problems.append(
            f"{path}.task: a text item names no task; set a fixed task = for format = 'text'"
        )


def _fields(read: TableReader, path: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The names of the message's fields that make the job."""
    out = {
        "task_field": read.get(raw, f"{path}.task_field", "task", string),
        "args_field": read.get(raw, f"{path}.args_field", "args", string),
        "kwargs_field": read.get(raw, f"{path}.kwargs_field", "kwargs", string),
        "id_field": read.get(raw, f"{path}.id_field", None, string),
        "delay_field": read.get(raw, f"{path}.delay_field", None, string),
        "due_field": read.get(raw, f"{path}.due_field", None, string),
    }
    if out["delay_field"] and out["due_field"]:
        read.problems.append(f"{path}.due_field: give a delay_field or a due_field, not both")
    return out
