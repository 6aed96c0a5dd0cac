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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from runner.durations import parse_duration
from runner.errors import ConfigError
from runner.redact import redact_url
from runner.sizes import parse_size

TaskKind = Literal["async", "io", "cpu"]
TASK_KINDS: tuple[TaskKind, ...] = ("async", "io", "cpu")
LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_CONFIG = Path("config/runner.toml")
REDIS_SCHEMES = ("redis", "rediss", "unix")
POSTGRES_SCHEMES = ("postgresql", "postgres")

T = TypeVar("T")


@dataclass(frozen=True)
class TaskSettings:
    name: str
    target: str
    kind: TaskKind
    timeout: float | None = None
    retries: int = 0
    backoff: float = 1.0
    backoff_max: float = 300.0
    backoff_jitter: float = 0.1

    @property
    def max_attempts(self) -> int:
        return self.retries + 1


@dataclass(frozen=True)
class CronSettings:
    name: str
    schedule: str
    task: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    timezone: str = "UTC"
    misfire: str = "once"
    misfire_grace: float = 3600.0
    overlap: str = "allow"


@dataclass(frozen=True)
class Settings:
    redis_url: str | None = field(default=None, repr=False)
    database_url: str | None = field(default=None, repr=False)
    key_prefix: str = "runner"
    embedded_dir: Path = Path("var")
    shutdown_grace: float = 30.0
    lease_ttl: float = 30.0
    claim_batch: int = 500
    keep_finished: float = 86400.0
    max_payload: int = 1_000_000
    metrics_listen: str | None = None  # host:port of /metrics; None: no endpoint
    web_listen: str = "127.0.0.1:8080"
    web_token: str | None = field(default=None, repr=False)
    timer_spin: float = 0.002
    async_concurrency: int = 200
    io_threads: int = 8
    cpu_processes: int = 2
    recorder_batch: int = 2000
    recorder_interval: float = 0.1
    recorder_reclaim_after: float = 30.0
    log_level: str = "info"
    log_file: str | None = None
    log_format: str = "auto"
    tasks: Mapping[str, TaskSettings] = field(default_factory=dict)
    cron: Mapping[str, CronSettings] = field(default_factory=dict)
    source: str = "<defaults>"

    def __repr__(self) -> str:
        return (
            f"Settings(source={self.source!r}, redis_url={redact_url(self.redis_url)!r}, "
            f"database_url={redact_url(self.database_url)!r}, key_prefix={self.key_prefix!r}, "
            f"tasks={sorted(self.tasks)!r})"
        )


class _Reader:
    """Reads typed values out of a TOML table, recording problems instead of raising."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems

    def table(self, data: Mapping[str, Any], path: str, allowed: set[str]) -> Mapping[str, Any]:
        value = data.get(path.rsplit(".", 1)[-1], {})
        if not isinstance(value, dict):
            self.problems.append(f"{path}: must be a table, got {value!r}")
            return {}
        self.unknown_keys(value, path, allowed)
        return value

    def unknown_keys(self, table: Mapping[str, Any], path: str, allowed: set[str]) -> None:
        for key in sorted(set(table) - allowed):
            self.problems.append(
                f"{path}.{key}: unknown key (allowed: {', '.join(sorted(allowed))})"
            )

    def get(self, table: Mapping[str, Any], path: str, default: T, check: Callable[[Any], T]) -> T:
        key = path.rsplit(".", 1)[-1]
        if key not in table:
            return default
        try:
            return check(table[key])
        except ValueError as exc:
            self.problems.append(f"{path}: {exc}")
            return default

    def url(
        self,
        env: Mapping[str, str],
        variable: str,
        table: Mapping[str, Any],
        path: str,
        schemes: tuple[str, ...],
    ) -> str | None:
        """The URL from the environment if set there, else from the file: checked alike,
        a problem named by the variable or the key it came from."""
        if not env.get(variable):
            return self.get(table, path, None, _url(*schemes))
        try:
            return _url(*schemes)(env[variable])
        except ValueError as exc:
            self.problems.append(f"{variable}: {exc}")
            return None


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"must be a whole number > 0, got {value!r}")
    return value


def _non_negative_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"must be a whole number >= 0, got {value!r}")
    return value


def _positive_duration(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"must be > 0, got {value!r}")
    return seconds


def _non_negative_duration(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds < 0:
        raise ValueError(f"must be >= 0, got {value!r}")
    return seconds


def _positive_size(value: Any) -> int:
    size = parse_size(value)
    if size <= 0:
        raise ValueError(f"must be > 0 bytes, got {value!r}")
    return size


def _listen(value: Any) -> str:
    """host:port to listen on; [v6]:port for IPv6."""
    text = _string(value)
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"must be host:port, e.g. 127.0.0.1:9464, got {text!r}")
    return text


def split_listen(listen: str) -> tuple[str, int]:
    """(host, port) of a "host:port" or "[v6]:port" that _listen accepted."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def _secret(value: Any) -> str:
    if not isinstance(value, str) or len(value) < 16:
        raise ValueError("must be a string of at least 16 characters (the value is not shown)")
    return value


def _fraction(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"must be a number between 0 and 1, got {value!r}")
    return float(value)


def _string(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be a non-empty string, got {value!r}")
    return value


def _one_of(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}; got {value!r}")
        return str(value)

    return check


def _url(*schemes: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = _string(value)
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


_TASK_KEYS = {"target", "kind", "timeout", "retries", "backoff", "backoff_max", "backoff_jitter"}


def _task(read: _Reader, name: str, raw: Any) -> TaskSettings | None:
    path = f"tasks.{name}"
    if not isinstance(raw, dict):
        read.problems.append(f"{path}: must be a table, got {raw!r}")
        return None
    before = len(read.problems)
    read.unknown_keys(raw, path, _TASK_KEYS)
    if "target" not in raw:
        read.problems.append(f"{path}.target: missing; give it as 'package.module:function'")
    target = read.get(raw, f"{path}.target", "", _target)
    kind = read.get(raw, f"{path}.kind", "async", _one_of(*TASK_KINDS))
    task = TaskSettings(
        name=name,
        target=target,
        kind=kind,  # type: ignore[arg-type]  # _one_of checked it is a TaskKind
        timeout=read.get(raw, f"{path}.timeout", None, _positive_duration),
        retries=read.get(raw, f"{path}.retries", 0, _non_negative_int),
        backoff=read.get(raw, f"{path}.backoff", 1.0, _positive_duration),
        backoff_max=read.get(raw, f"{path}.backoff_max", 300.0, _positive_duration),
        backoff_jitter=read.get(raw, f"{path}.backoff_jitter", 0.1, _fraction),
    )
    return task if len(read.problems) == before else None


def _target(value: Any) -> str:
    text = _string(value)
    module, _, attr = text.partition(":")
    if not module or not attr:
        raise ValueError(f"must look like 'package.module:function', got {text!r}")
    return text


_CRON_KEYS = {
    "schedule", "task", "args", "kwargs", "timezone", "misfire", "misfire_grace", "overlap",
}  # fmt: skip


def _cron(read: _Reader, name: str, raw: Any, tasks: Mapping[str, Any]) -> CronSettings | None:
    from runner.cron import MISFIRE_POLICIES, OVERLAP_POLICIES  # noqa: PLC0415  # croniter only when needed

    path = f"cron.{name}"
    if not isinstance(raw, dict):
        read.problems.append(f"{path}: must be a table, got {raw!r}")
        return None
    before = len(read.problems)
    read.unknown_keys(raw, path, _CRON_KEYS)
    for key in ("schedule", "task"):
        if key not in raw:
            read.problems.append(f"{path}.{key}: missing")
    timezone = read.get(raw, f"{path}.timezone", "UTC", _timezone)
    schedule = read.get(raw, f"{path}.schedule", "", _cron_expression)
    task = read.get(raw, f"{path}.task", "", _string)
    if task and task not in tasks:
        read.problems.append(
            f"{path}.task: unknown task {task!r} (declared: {', '.join(sorted(tasks)) or 'none'})"
        )
    cron = CronSettings(
        name=name,
        schedule=schedule,
        task=task,
        args=tuple(read.get(raw, f"{path}.args", [], _array)),
        kwargs=read.get(raw, f"{path}.kwargs", {}, _table),
        timezone=timezone,
        misfire=read.get(raw, f"{path}.misfire", "once", _one_of(*MISFIRE_POLICIES)),
        misfire_grace=read.get(raw, f"{path}.misfire_grace", 3600.0, _positive_duration),
        overlap=read.get(raw, f"{path}.overlap", "allow", _one_of(*OVERLAP_POLICIES)),
    )
    return cron if len(read.problems) == before else None


def _timezone(value: Any) -> str:
    from runner.cron import zone  # noqa: PLC0415  # croniter only when needed

    text = _string(value)
    zone(text)
    return text


def _cron_expression(value: Any) -> str:
    """Checked on its own, whatever the time zone, so both faults show in one pass."""
    from runner.cron import check_expression  # noqa: PLC0415  # croniter only when needed

    text = _string(value)
    check_expression(text)
    return text


def _array(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"must be an array, got {value!r}")
    return value


def _table(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"must be a table, got {value!r}")
    return value


_SECTIONS = {
    "redis", "postgres", "embedded", "daemon", "jobs", "pools", "recorder", "log", "tasks",
    "cron", "metrics", "web",
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
    read = _Reader(problems)
    for key in sorted(set(data) - _SECTIONS):
        problems.append(f"{key}: unknown section (allowed: {', '.join(sorted(_SECTIONS))})")
    redis = read.table(data, "redis", {"url", "key_prefix"})
    pg = read.table(data, "postgres", {"url"})
    embedded = read.table(data, "embedded", {"dir"})
    daemon = read.table(
        data,
        "daemon",
        {"shutdown_grace", "lease_ttl", "claim_batch", "keep_finished", "timer_spin"},
    )
    jobs = read.table(data, "jobs", {"max_payload"})
    metrics = read.table(data, "metrics", {"listen"})
    web = read.table(data, "web", {"listen", "token"})
    pools = read.table(data, "pools", {"async", "io", "cpu"})
    recorder = read.table(data, "recorder", {"batch_events", "flush_interval", "reclaim_after"})
    log = read.table(data, "log", {"level", "file", "format"})
    tasks_raw = read.table(data, "tasks", set(data.get("tasks", {})))
    tasks = {name: _task(read, name, raw) for name, raw in tasks_raw.items()}
    cron_raw = read.table(data, "cron", set(data.get("cron", {})))
    cron = {name: _cron(read, name, raw, tasks_raw) for name, raw in cron_raw.items()}
    settings = Settings(
        redis_url=read.url(env, "RUNNER_REDIS_URL", redis, "redis.url", REDIS_SCHEMES),
        database_url=read.url(env, "RUNNER_DATABASE_URL", pg, "postgres.url", POSTGRES_SCHEMES),
        key_prefix=env.get("RUNNER_KEY_PREFIX")
        or read.get(redis, "redis.key_prefix", "runner", _string),
        embedded_dir=_embedded_dir(read.get(embedded, "embedded.dir", "var", _string), folder),
        shutdown_grace=read.get(daemon, "daemon.shutdown_grace", 30.0, _positive_duration),
        lease_ttl=read.get(daemon, "daemon.lease_ttl", 30.0, _positive_duration),
        claim_batch=read.get(daemon, "daemon.claim_batch", 500, _positive_int),
        keep_finished=read.get(daemon, "daemon.keep_finished", 86400.0, _positive_duration),
        timer_spin=read.get(daemon, "daemon.timer_spin", 0.002, _non_negative_duration),
        max_payload=read.get(jobs, "jobs.max_payload", 1_000_000, _positive_size),
        metrics_listen=read.get(metrics, "metrics.listen", None, _listen),
        web_listen=read.get(web, "web.listen", "127.0.0.1:8080", _listen),
        web_token=env.get("RUNNER_WEB_TOKEN") or read.get(web, "web.token", None, _secret),
        async_concurrency=read.get(pools, "pools.async", 200, _positive_int),
        io_threads=read.get(pools, "pools.io", 8, _positive_int),
        cpu_processes=read.get(pools, "pools.cpu", 2, _positive_int),
        recorder_batch=read.get(recorder, "recorder.batch_events", 2000, _positive_int),
        recorder_interval=read.get(recorder, "recorder.flush_interval", 0.1, _positive_duration),
        recorder_reclaim_after=read.get(
            recorder, "recorder.reclaim_after", 30.0, _positive_duration
        ),
        log_level=read.get(log, "log.level", "info", _one_of(*LOG_LEVELS)),
        log_file=read.get(log, "log.file", None, _string),
        log_format=read.get(log, "log.format", "auto", _one_of("auto", "json", "console")),
        tasks={name: task for name, task in tasks.items() if task is not None},
        cron={name: entry for name, entry in cron.items() if entry is not None},
        source=source,
    )
    return settings, problems


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
