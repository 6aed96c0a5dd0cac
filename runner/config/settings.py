"""One immutable Settings, built in one place from a TOML file and the environment.

Every problem is collected with its key path (``tasks.resize.timeout: must be
> 0, got -3``) and reported together, so an operator fixes a file in one pass.
Unknown keys are errors: a typo must not silently fall back to a default.

A relative ``[embedded] dir`` (default ``var``) is taken from the folder of the
config file it came from, so one file finds the same embedded servers from any
working directory; an absolute one is used as it is. Settings parsed from a
mapping with no file behind them (``parse_settings`` without ``folder``) keep
it relative to the working directory: ``source`` there is only a label for
messages, not a path to guess a folder from.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from runner.config.cron import CronSettings, read_cron
from runner.config.notify import NotifySettings, read_notify
from runner.config.queues import read_queue_limits
from runner.config.reader import TableReader
from runner.config.sources import SourceSettings, read_sources
from runner.config.values import (
    boolean,
    concurrency_key,
    duration_or,
    fraction,
    lead_duration,
    listen_address,
    non_negative_duration,
    non_negative_int,
    one_of,
    positive_duration,
    positive_int,
    positive_size,
    priority,
    queue_name,
    queue_weights,
    secret,
    string,
    unique_mode,
)
from runner.errors import ConfigError
from runner.limits.rates import interval_us
from runner.redact import redact_url

TaskKind = Literal["async", "io", "cpu"]
TASK_KINDS: tuple[TaskKind, ...] = ("async", "io", "cpu")
LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_CONFIG = Path("config/runner.toml")
REDIS_SCHEMES = ("redis", "rediss", "unix")
POSTGRES_SCHEMES = ("postgresql", "postgres")

PARK_HORIZON: float | None = 3600.0  # jobs due later wait in Postgres; None: never
POOLS_FULL_WARNING: float | None = 60.0  # [pools] warn_full_after
KEEP_HISTORY: float | None = 30 * 86400.0  # finished history kept; None: for good
EVENTS_KEEP = 120.0  # [events] keep: how long the transition stream keeps an entry


@dataclass(frozen=True)
class TaskSettings:
    name: str
    target: str
    kind: TaskKind
    queue: str = "default"  # where its jobs wait unless an enqueue names another
    priority: int = 0  # its jobs' priority unless an enqueue says otherwise
    timeout: float | None = None
    retries: int = 0
    backoff: float = 1.0
    backoff_max: float = 300.0
    backoff_jitter: float = 0.1
    concurrency: int | None = None  # at most this many running at once, every daemon
    concurrency_key: str | None = None  # ...per value of this ("kwargs.NAME", "args.N")
    unique: str | None = None  # queued, running, until_done, or "for:<ms>" (limits/unique.py)
    unique_key: str | None = None  # where the key is in the args; None: all of them
    rate_interval_us: int | None = None  # `rate`: us between starts (limits/rates.py)
    rate_burst: int = 1  # starts at once after a quiet spell
    rate_key: str | None = None  # ...per value of this argument
    max_queued: int | None = None  # refuse enqueues while this many wait (limits/bounds.py)
    fair_key: str | None = None  # starts shared in turn between its values (limits/fair.py)

    @property
    def max_attempts(self) -> int:
        return self.retries + 1


@dataclass(frozen=True)
class Settings:
    redis_url: str | None = field(default=None, repr=False)
    database_url: str | None = field(default=None, repr=False)
    key_prefix: str = "runner"
    redis_cluster: bool = False  # the URL names one node of a Redis Cluster
    wait_replicas: int = 0  # enqueues and outcomes return once this many replicas hold them
    embedded_dir: Path = Path("var")
    shutdown_grace: float = 30.0
    lease_ttl: float = 30.0
    claim_batch: int = 500
    # The queues this daemon claims from, each with its weight; None: every queue,
    # each weighing 1 (see runner/daemon/shares.py).
    queues: Mapping[str, int] | None = None
    priority_aging: float = 1.0  # what one level of priority is worth in waiting time
    keep_finished: float = 86400.0
    park_horizon: float | None = PARK_HORIZON  # jobs due later wait in Postgres
    keep_history: float | None = KEEP_HISTORY
    max_payload: int = 1_000_000
    max_result: int = 1_000_000
    metrics_listen: str | None = None  # host:port of /metrics; None: no endpoint
    web_listen: str = "127.0.0.1:8080"
    web_token: str | None = field(default=None, repr=False)
    timer_spin: float = 0.002
    # How long before its due time a delayed job may be claimed and held (at most 5 ms;
    # None: measured, see runner/daemon/lead.py; 0: never).
    lead: float | None = None
    async_concurrency: int = 200
    io_threads: int = 8
    cpu_processes: int = 2
    # A kind with no free slot this long while its jobs are due is logged (None: never).
    pools_full_warning: float | None = POOLS_FULL_WARNING
    recorder_batch: int = 2000
    recorder_interval: float = 0.1
    recorder_reclaim_after: float = 30.0
    events_keep: float = EVENTS_KEEP  # the transition stream keeps entries this long
    log_level: str = "info"
    log_file: str | None = None
    log_format: str = "auto"
    tasks: Mapping[str, TaskSettings] = field(default_factory=dict)
    cron: Mapping[str, CronSettings] = field(default_factory=dict)
    sources: Mapping[str, SourceSettings] = field(default_factory=dict)
    notify: Mapping[str, NotifySettings] = field(default_factory=dict)  # webhook sinks
    queue_limits: Mapping[str, int] = field(default_factory=dict)  # [queues.X] max_queued
    source: str = "<defaults>"

    def __repr__(self) -> str:
        return (
            f"Settings(source={self.source!r}, redis_url={redact_url(self.redis_url)!r}, "
            f"database_url={redact_url(self.database_url)!r}, key_prefix={self.key_prefix!r}, "
            f"tasks={sorted(self.tasks)!r})"
        )


_TASK_KEYS = {"target", "kind", "timeout", "retries", "backoff", "backoff_max", "backoff_jitter",
              "queue", "priority", "concurrency", "concurrency_key", "unique",
              "unique_key", "rate", "rate_burst", "rate_key", "max_queued", "fair_key"}  # fmt: skip


def _task(read: TableReader, name: str, raw: Any) -> TaskSettings | None:
    path = f"tasks.{name}"
    if not isinstance(raw, dict):
        read.problems.append(f"{path}: must be a table, got {raw!r}")
        return None
    before = len(read.problems)
    read.unknown_keys(raw, path, _TASK_KEYS)
    if "target" not in raw:
        read.problems.append(f"{path}.target: missing; give it as 'package.module:function'")
    target = read.get(raw, f"{path}.target", "", _target)
    kind = read.get(raw, f"{path}.kind", "async", one_of(*TASK_KINDS))
    task = TaskSettings(
        name=name,
        target=target,
        kind=kind,  # type: ignore[arg-type]  # one_of checked it is a TaskKind
        queue=read.get(raw, f"{path}.queue", "default", queue_name),
        priority=read.get(raw, f"{path}.priority", 0, priority),
        timeout=read.get(raw, f"{path}.timeout", None, positive_duration),
        retries=read.get(raw, f"{path}.retries", 0, non_negative_int),
        backoff=read.get(raw, f"{path}.backoff", 1.0, positive_duration),
        backoff_max=read.get(raw, f"{path}.backoff_max", 300.0, positive_duration),
        backoff_jitter=read.get(raw, f"{path}.backoff_jitter", 0.1, fraction),
        concurrency=read.get(raw, f"{path}.concurrency", None, positive_int),
        concurrency_key=read.get(raw, f"{path}.concurrency_key", None, concurrency_key),
        unique=read.get(raw, f"{path}.unique", None, unique_mode),
        unique_key=read.get(raw, f"{path}.unique_key", None, concurrency_key),
        rate_interval_us=read.get(raw, f"{path}.rate", None, interval_us),
        rate_burst=read.get(raw, f"{path}.rate_burst", 1, positive_int),
        rate_key=read.get(raw, f"{path}.rate_key", None, concurrency_key),
        max_queued=read.get(raw, f"{path}.max_queued", None, positive_int),
        fair_key=read.get(raw, f"{path}.fair_key", None, concurrency_key),
    )
    if task.concurrency_key is not None and task.concurrency is None:
        read.problems.append(f"{path}.concurrency_key: needs concurrency = N beside it")
    if task.unique_key is not None and task.unique is None:
        read.problems.append(f"{path}.unique_key: needs unique = ... beside it")
    if task.rate_interval_us is None and ("rate_key" in raw or "rate_burst" in raw):
        read.problems.append(f'{path}: rate_key and rate_burst need rate = "N/s" beside them')
    return task if len(read.problems) == before else None


def _target(value: Any) -> str:
    text = string(value)
    module, _, attr = text.partition(":")
    if not module or not attr:
        raise ValueError(f"must look like 'package.module:function', got {text!r}")
    return text


_SECTIONS = {
    "redis", "postgres", "embedded", "daemon", "jobs", "pools", "recorder", "log", "tasks",
    "cron", "metrics", "web", "history", "events", "sources", "notify", "queues",
}  # fmt: skip


def parse_settings(
    data: Mapping[str, Any], source: str, env: Mapping[str, str], folder: Path | None = None
) -> Settings:
    """Settings from parsed TOML; raises ConfigError listing every problem found.
    `folder` is the config file's, which a relative [embedded] dir is taken from."""
    settings, problems = collect_settings(data, source, env, folder)
    if problems:
        raise ConfigError(problems, source)
    return settings


def collect_settings(
    data: Mapping[str, Any], source: str, env: Mapping[str, str], folder: Path | None = None
) -> tuple[Settings, list[str]]:
    """Settings from parsed TOML and every problem found, without raising, so that a
    check can go on to the tasks whose own tables are fine. The Settings hold only
    those tasks and cron entries, and defaults where a value was bad: never run on
    them unless the problems are empty."""
    problems: list[str] = []
    read = TableReader(problems)
    for key in sorted(set(data) - _SECTIONS):
        problems.append(f"{key}: unknown section (allowed: {', '.join(sorted(_SECTIONS))})")
    redis = read.table(data, "redis", {"url", "key_prefix", "cluster", "wait_replicas"})
    pg = read.table(data, "postgres", {"url"})
    embedded = read.table(data, "embedded", {"dir"})
    daemon = read.table(
        data,
        "daemon",
        {
            "shutdown_grace", "lease_ttl", "claim_batch", "keep_finished", "timer_spin",
            "park_horizon", "queues", "priority_aging", "lead",
        },
    )  # fmt: skip
    history = read.table(data, "history", {"keep"})
    jobs = read.table(data, "jobs", {"max_payload", "max_result"})
    metrics = read.table(data, "metrics", {"listen"})
    web = read.table(data, "web", {"listen", "token"})
    pools = read.table(data, "pools", {"async", "io", "cpu", "warn_full_after"})
    recorder = read.table(data, "recorder", {"batch_events", "flush_interval", "reclaim_after"})
    events = read.table(data, "events", {"keep"})
    log = read.table(data, "log", {"level", "file", "format"})
    tasks_raw = read.table(data, "tasks", set(data.get("tasks", {})))
    tasks = {name: _task(read, name, raw) for name, raw in tasks_raw.items()}
    cron_raw = read.table(data, "cron", set(data.get("cron", {})))
    cron = {name: read_cron(read, name, raw, tasks_raw) for name, raw in cron_raw.items()}
    settings = Settings(
        redis_url=read.url(env, "RUNNER_REDIS_URL", redis, "redis.url", REDIS_SCHEMES),
        database_url=read.url(env, "RUNNER_DATABASE_URL", pg, "postgres.url", POSTGRES_SCHEMES),
        key_prefix=env.get("RUNNER_KEY_PREFIX")
        or read.get(redis, "redis.key_prefix", "runner", string),
        redis_cluster=read.get(redis, "redis.cluster", False, boolean),
        wait_replicas=read.get(redis, "redis.wait_replicas", 0, non_negative_int),
        embedded_dir=_embedded_dir(read.get(embedded, "embedded.dir", "var", string), folder),
        shutdown_grace=read.get(daemon, "daemon.shutdown_grace", 30.0, positive_duration),
        lease_ttl=read.get(daemon, "daemon.lease_ttl", 30.0, positive_duration),
        claim_batch=read.get(daemon, "daemon.claim_batch", 500, positive_int),
        queues=read.get(daemon, "daemon.queues", None, queue_weights),
        priority_aging=read.get(daemon, "daemon.priority_aging", 1.0, non_negative_duration),
        keep_finished=read.get(daemon, "daemon.keep_finished", 86400.0, positive_duration),
        timer_spin=read.get(daemon, "daemon.timer_spin", 0.002, non_negative_duration),
        lead=read.get(daemon, "daemon.lead", None, lead_duration),
        park_horizon=read.get(daemon, "daemon.park_horizon", PARK_HORIZON, duration_or("off")),
        keep_history=read.get(history, "history.keep", KEEP_HISTORY, duration_or("forever")),
        max_payload=read.get(jobs, "jobs.max_payload", 1_000_000, positive_size),
        max_result=read.get(jobs, "jobs.max_result", 1_000_000, positive_size),
        metrics_listen=read.get(metrics, "metrics.listen", None, listen_address),
        web_listen=read.get(web, "web.listen", "127.0.0.1:8080", listen_address),
        web_token=read.overridden(env, "RUNNER_WEB_TOKEN", web, "web.token", secret),
        async_concurrency=read.get(pools, "pools.async", 200, positive_int),
        io_threads=read.get(pools, "pools.io", 8, positive_int),
        cpu_processes=read.get(pools, "pools.cpu", 2, positive_int),
        pools_full_warning=read.get(
            pools, "pools.warn_full_after", POOLS_FULL_WARNING, duration_or("off")
        ),
        recorder_batch=read.get(recorder, "recorder.batch_events", 2000, positive_int),
        recorder_interval=read.get(recorder, "recorder.flush_interval", 0.1, positive_duration),
        recorder_reclaim_after=read.get(
            recorder, "recorder.reclaim_after", 30.0, positive_duration
        ),
        events_keep=read.get(events, "events.keep", EVENTS_KEEP, non_negative_duration),
        log_level=read.get(log, "log.level", "info", one_of(*LOG_LEVELS)),
        log_file=read.get(log, "log.file", None, string),
        log_format=read.get(log, "log.format", "auto", one_of("auto", "json", "console")),
        tasks={name: task for name, task in tasks.items() if task is not None},
        cron={name: entry for name, entry in cron.items() if entry is not None},
        sources=read_sources(read, data, tasks_raw),
        notify=read_notify(read, data, tasks_raw),
        queue_limits=read_queue_limits(read, data),
        source=source,
    )
    if settings.redis_cluster:
        problems += _cluster_problems(settings)
    return settings, problems


def _cluster_problems(settings: Settings) -> list[str]:
    """What `[redis] cluster = true` cannot serve yet: the embedded server, and a Redis
    source on runner's own cluster (its keys are not in runner's slot)."""
    problems = []
    if not settings.redis_url:
        problems.append(
            "redis.cluster: needs redis.url (or RUNNER_REDIS_URL) naming a node of the "
            "cluster; the embedded Valkey is a single server"
        )
    for name, source in sorted(settings.sources.items()):
        if source.is_kafka:  # its dead letters go to a stream on runner's Redis
            problems.append(
                f"sources.{name}: a kafka source cannot run with redis.cluster = true yet "
                "(its dead-letter stream would be outside runner's slot)"
            )
        elif source.url is None:
            problems.append(
                f"sources.{name}.url: with redis.cluster = true a Redis source needs a url "
                "of its own (a single server): runner's cluster cannot hold its keys yet"
            )
    return problems


def _embedded_dir(value: str, folder: Path | None) -> Path:
    """Taken from the config file's folder, so that running from another directory
    finds the servers the file's own checkout started instead of starting new ones."""
    path = Path(value)
    if path.is_absolute() or folder is None:
        return path
    return (folder / path).resolve()


def config_path(explicit: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path:
    """--config, else RUNNER_CONFIG, else config/runner.toml."""
    if explicit:
        return Path(explicit)
    return Path(env.get("RUNNER_CONFIG") or DEFAULT_CONFIG)


def load_settings(path: Path, env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate a config file; ConfigError for a missing file or bad TOML too."""
    env = os.environ if env is None else env
    return parse_settings(read_config_file(path), str(path), env, folder=path.parent)


def read_config_file(path: Path) -> dict[str, Any]:
    """The file's TOML as a dict; ConfigError, named by the path, if it cannot be read."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problem = f"file not found; pass --config PATH or set RUNNER_CONFIG (cwd: {Path.cwd()})"
    except OSError as exc:
        problem = f"cannot read the file: {exc.strerror or exc}"
    except UnicodeDecodeError as exc:
        problem = f"not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8"
    except tomllib.TOMLDecodeError as exc:
        problem = f"not valid TOML: {exc}"
    raise ConfigError([problem], str(path))
