"""The `runner` command line.

Exit codes: 0 success, 1 failure (invalid config, a store down, a job not
found), 2 usage (a malformed argument, an unknown task). Errors are one or a
few readable lines on stderr, each starting with `runner:` (their continuation
lines indented), never a bare traceback for bad input. A reader that stops
early (`runner jobs | head`) ends any command quietly, as it ends other Unix tools.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import select
import shlex
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import orjson

from runner.cli.parser import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, build_parser
from runner.cli.time_text import TimeText
from runner.clock import SYSTEM_CLOCK
from runner.config.durations import parse_duration
from runner.config.settings import Settings, config_path, load_settings
from runner.errors import ConfigError, RunnerError, StoreError, StoreUnavailable, UsageError
from runner.redact import redact_text, redact_url

Command = Callable[[argparse.Namespace], int]


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(config_path(getattr(args, "config", None), os.environ))
    args.loaded_settings = settings  # for naming the config and URL if a server is down
    return settings


def _payload_text(value: str, name: str) -> str:
    """A JSON argument given inline, as @FILE, or as - (stdin): payloads too big for a
    command line come from a file or a pipe."""
    if value == "-":
        return sys.stdin.read()
    if value.startswith("@"):
        try:
            return open(value[1:], encoding="utf-8").read()  # read at once
        except OSError as exc:
            raise UsageError(f"{name}: cannot read {value[1:]!r}: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise UsageError(f"{name}: {value[1:]!r} is not UTF-8 text: {exc}") from None
    return value


def _json_arg(value: str, name: str, kind: type) -> Any:
    from runner.client.input import refuse_nul  # noqa: PLC0415  # keeps `runner --help` fast

    text = _payload_text(value, name)
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"{name}: not valid JSON ({exc}); e.g. {name} '[1, \"two\"]'") from None
    if not isinstance(value, kind):
        wanted = "a JSON array" if kind is list else "a JSON object"
        raise UsageError(f"{name}: must be {wanted}, got {text[:200]!r}")
    refuse_nul(name, orjson.dumps(value).decode())
    return value


def _when(args: argparse.Namespace) -> dict[str, Any]:
    if args.in_ and args.at:
        raise UsageError("give --in or --at, not both")
    if args.in_:
        try:
            return {"delay": parse_duration(args.in_)}
        except ValueError as exc:
            raise UsageError(f"--in: {exc}") from None
    if args.at:
        try:
            at = datetime.fromisoformat(args.at)
        except ValueError:
            raise UsageError(f"--at: not an ISO 8601 time: {args.at!r}") from None
        if at.tzinfo is None:
            raise UsageError(f"--at: give a UTC offset, e.g. {args.at}+00:00 or {args.at}Z")
        return {"at": at}
    return {}


def cmd_enqueue(args: argparse.Namespace) -> int:
    from runner.client.client import Client  # noqa: PLC0415  # keeps `runner --help` fast
    from runner.client.input import due_at_ms  # noqa: PLC0415
    from runner.jobs import EnqueueResult  # noqa: PLC0415

    if args.args == "-" and args.kwargs == "-":
        raise UsageError("--args and --kwargs cannot both read stdin: give one as @FILE")
    payload = _json_arg(args.args, "--args", list), _json_arg(args.kwargs, "--kwargs", dict)
    when = _when(args)
    due_at_ms(SYSTEM_CLOCK, names=("--in", "--at"), **when)  # the client's checks, our names
    settings = _settings(args)

    async def enqueue() -> EnqueueResult:
        async with await Client.connect(settings) as client:
            return await client.enqueue_result(
                args.task, payload[0], payload[1], job_id=args.id, **when
            )

    result = asyncio.run(enqueue())
    if not result.created:
        held = "was deleted" if result.state == "deleted" else f"already exists ({result.state})"
        print(
            f"runner: job {result.id} {held}; nothing was enqueued. A job id names one job "
            "for as long as its history is kept: choose another id, or leave out --id.",
            file=sys.stderr,
        )
    doc = {"id": result.id, "created": result.created, "state": result.state}
    print(orjson.dumps(doc).decode() if args.json else result.id)
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from runner.cli.render.show import show_text  # noqa: PLC0415  # keeps `runner --help` fast
    from runner.client.show import show_document  # noqa: PLC0415

    doc = asyncio.run(show_document(_settings(args), args.job_id))
    print(
        orjson.dumps(doc).decode() if args.json else show_text(doc, args.full, TimeText(args.local))
    )
    return EXIT_OK


def cmd_cron(args: argparse.Namespace) -> int:
    from runner.cli.render.cron import render  # noqa: PLC0415  # keeps `runner --help` fast
    from runner.client.cron import cron_documents  # noqa: PLC0415

    docs = asyncio.run(cron_documents(_settings(args)))
    print(render(docs, args.json, TimeText(args.local)))
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from runner.cli.render.status import render  # noqa: PLC0415  # keeps `runner --help` fast
    from runner.client.status import status_document  # noqa: PLC0415

    doc = asyncio.run(status_document(_settings(args)))
    print(render(doc, args.json, TimeText(args.local)))
    return EXIT_OK


def cmd_logs(args: argparse.Namespace) -> int:
    from runner.cli.logs import LogFilter, show_logs, since_from  # noqa: PLC0415

    try:
        since = since_from(args.since) if args.since else None
    except ValueError:
        raise UsageError(
            f"--since: give a duration like 10m or an ISO 8601 time, got {args.since!r}"
        ) from None
    source = args.source or _default_log_source(args)
    if source == "-" and not args.source and sys.stdin.isatty():
        print(
            "runner: logs: reading JSON log lines from standard input, as the config has no "
            "[log] file. Pipe them in (journalctl -u runner -o cat | runner logs), or give "
            "a FILE; Ctrl-D ends.",
            file=sys.stderr,
        )
    flt = LogFilter(job_id=args.job, task=args.task, level=args.level, since=since)
    try:
        show_logs(source, args.follow, flt, args.json, times=TimeText(args.local))
    except FileNotFoundError:
        raise UsageError(f"no log file at {source}; give a FILE, or - to read stdin") from None
    return EXIT_OK


def _default_log_source(args: argparse.Namespace) -> str:
    """The config's [log] file, else stdin (`journalctl -u runner -o cat | runner logs`)."""
    try:
        return _settings(args).log_file or "-"
    except ConfigError:
        return "-"


def cmd_check_config(args: argparse.Namespace) -> int:
    from runner.config.checks import check_config  # noqa: PLC0415  # imports task modules

    path = config_path(getattr(args, "config", None), os.environ)
    settings, problems = check_config(path, os.environ)
    if settings is None:
        raise ConfigError(problems, str(path))
    names = sorted(settings.tasks)
    print(f"{settings.source}: OK ({len(names)} tasks: {', '.join(names)})")
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace) -> int:
    from runner.servers.connect import resolve_urls  # noqa: PLC0415
    from runner.store import PgStore  # noqa: PLC0415

    settings = _settings(args)

    async def migrate() -> list[str]:
        _, database_url, _ = resolve_urls(settings, start_embedded=False)
        pg = await PgStore.connect(database_url, max_size=1)
        try:
            return await pg.migrate()
        finally:
            await pg.close()

    applied = asyncio.run(migrate())
    print(f"applied: {', '.join(applied)}" if applied else "schema is up to date")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from runner.daemon.main import run_daemon  # noqa: PLC0415  # pulls in the whole engine

    return run_daemon(_settings(args), drain=args.drain)


def cmd_web(args: argparse.Namespace) -> int:
    from runner.web.serve import run_web  # noqa: PLC0415  # pulls in aiohttp

    return run_web(_settings(args), listen_flag=args.listen)


# What each error becomes: a line on stderr (with a prefix) and an exit code.
# The first match wins, so subclasses come before their base.
_FAILURES: tuple[tuple[type[Exception], str, int], ...] = (
    (UsageError, "", EXIT_USAGE),
    (StoreUnavailable, "cannot reach a server: ", EXIT_FAILURE),
    (StoreError, "", EXIT_FAILURE),
    (RunnerError, "", EXIT_FAILURE),
    (OSError, "", EXIT_FAILURE),
)


def cmd_jobs(args: argparse.Namespace) -> int:
    from runner.cli.render.listing import render  # noqa: PLC0415
    from runner.client.client import Client  # noqa: PLC0415  # keeps `runner --help` fast
    from runner.client.listing import Page, moment_arg  # noqa: PLC0415

    since = moment_arg(args.since, "--since") if args.since else None
    until = moment_arg(args.until, "--until") if args.until else None
    settings = _settings(args)
    config = getattr(args, "config", None)
    command = f"runner --config {shlex.quote(config)} jobs" if config else "runner jobs"

    async def page() -> Page:
        async with await Client.connect(settings) as client:
            return await client.list(
                state=args.state, task=args.task, since=since, until=until,
                limit=args.limit, after=args.after,
            )  # fmt: skip

    print(render(asyncio.run(page()), args.json, command, TimeText(args.local)))
    return EXIT_OK


def cmd_request(args: argparse.Namespace) -> int:
    """pause, resume, cancel, retry, delete: several ids at once (pause and resume also
    a whole task, or every task); exit 1 if any id was refused or not found."""
    from runner.client.client import Client  # noqa: PLC0415

    action = args.command
    task = getattr(args, "task", None)
    every = getattr(args, "all", False)
    if bool(args.job_ids) + bool(task) + bool(every) != 1:
        where = "job ids, --task NAME or --all" if action in ("pause", "resume") else "job ids"
        raise UsageError(f"{action}: give {where} (one of them)")
    changes = _update_changes(args) if action == "update" else {}
    settings = _settings(args)

    async def run() -> list[dict[str, Any]]:
        async with await Client.connect(settings) as client:
            if task or every:
                return [await _task_request(client, action, task)]
            results = await client.request(action, args.job_ids, **changes)
            return [vars(result) for result in results]

    docs = asyncio.run(run())
    if args.json:
        print(orjson.dumps(docs).decode())
    else:
        for doc in docs:  # applied on stdout; refused, as every error, on stderr
            if doc["ok"]:
                print(doc["message"])
            else:
                print(f"runner: {doc['message']}", file=sys.stderr)
    return EXIT_OK if all(doc["ok"] for doc in docs) else EXIT_FAILURE


async def _task_request(client: Any, action: str, task: str | None) -> dict[str, Any]:
    """pause or resume of one task, or of every task (maintenance mode, --all)."""
    if task is None:
        changed, message = await _maintenance(client, action)
    elif action == "pause":
        changed = await client.pause_task(task)
        message = f"paused task {task}" if changed else f"task {task} was paused already"
    else:
        changed = await client.resume_task(task)
        message = f"resumed task {task}" if changed else f"task {task} was not paused"
    return {"task": task, "all": task is None, "action": action, "ok": True,
            "changed": changed, "message": message}  # fmt: skip


async def _maintenance(client: Any, action: str) -> tuple[bool, str]:
    """Maintenance mode on or off (whether that changed anything), and what it means
    for the daemons."""
    if action == "pause":
        if not await client.pause_all():
            return False, "maintenance mode was on already"
        return True, "maintenance mode on: no daemon starts a job until `runner resume --all`"
    if not await client.resume_all():
        return False, "maintenance mode was not on"
    still = sorted(await client.paused())
    held = f"; tasks still paused on their own: {', '.join(still)}" if still else ""
    return True, f"maintenance mode ended: daemons start jobs again{held}"


def _update_changes(args: argparse.Namespace) -> dict[str, Any]:
    changes: dict[str, Any] = _when(args)
    if args.args is not None:
        changes["args"] = _json_arg(args.args, "--args", list)
    if args.kwargs is not None:
        changes["kwargs"] = _json_arg(args.kwargs, "--kwargs", dict)
    if args.retries is not None:
        changes["retries"] = args.retries
    if args.timeout is not None:
        try:
            changes["timeout"] = parse_duration(args.timeout)
        except ValueError as exc:
            raise UsageError(f"--timeout: {exc}") from None
    return changes


COMMANDS: dict[str, Command] = {
    "run": cmd_run,
    "web": cmd_web,
    "check-config": cmd_check_config,
    "migrate": cmd_migrate,
    "enqueue": cmd_enqueue,
    "show": cmd_show,
    "jobs": cmd_jobs,
    "logs": cmd_logs,
    "status": cmd_status,
    "cron": cmd_cron,
    "pause": cmd_request,
    "resume": cmd_request,
    "cancel": cmd_request,
    "retry": cmd_request,
    "delete": cmd_request,
    "update": cmd_request,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit code. A reader that went away (`runner jobs | head`)
    ends every command here, quietly and with exit 0, as `head` leaves other Unix
    tools: whether the write failed during the command or at the final flush."""
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
    except BrokenPipeError as exc:
        if not _stdout_unread():
            print(f"runner: {exc}", file=sys.stderr)  # a socket's, not our reader's
            return EXIT_FAILURE
        # What is still buffered goes nowhere, so the exit flushes without an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _run(argv: Sequence[str] | None) -> int:
    args = build_parser(COMMANDS).parse_args(argv)
    func: Command = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        raise  # see main
    except Exception as exc:
        for kind, prefix, code in _FAILURES:
            if isinstance(exc, kind):
                print(f"runner: {prefix}{redact_text(str(exc))}", file=sys.stderr)
                if isinstance(exc, StoreError) and (where := _where(args, exc.server)):
                    print(where, file=sys.stderr)
                return code
        raise


def _stdout_unread() -> bool:
    """Whether nobody reads standard output any more: the reader of its pipe (or
    socket) is gone. A broken pipe elsewhere (a server's socket) is a failure."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(event & (select.POLLERR | select.POLLHUP) for _, event in poller.poll(0))
    except (OSError, ValueError):  # no stdout, or not a file descriptor
        return False


def _where(args: argparse.Namespace, server: str) -> str:
    """Which config was read and which server it names: the first thing to check
    when a server cannot be reached (a forgotten --config, a stale variable)."""
    settings: Settings | None = getattr(args, "loaded_settings", None)
    if settings is None:
        return ""
    if getattr(args, "config", None):
        chosen = "from --config"
    elif os.environ.get("RUNNER_CONFIG"):
        chosen = "from RUNNER_CONFIG"
    else:
        chosen = "the default; pass --config PATH or set RUNNER_CONFIG"
    lines = [f"  config: {settings.source} ({chosen})"]
    for name, url, key, variable in (
        ("redis", settings.redis_url, "[redis] url", "RUNNER_REDIS_URL"),
        ("postgres", settings.database_url, "[postgres] url", "RUNNER_DATABASE_URL"),
    ):
        if server and server != name:
            continue
        if url is None:
            origin = f"the embedded server under {settings.embedded_dir} (no {key})"
            lines.append(f"  {name}: {origin}")
        else:
            origin = variable if os.environ.get(variable) else key
            lines.append(f"  {name}: {redact_url(url)} (from {origin})")
    return "\n".join(lines)
