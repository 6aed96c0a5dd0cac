"""The commands of `runner`: each reads its arguments, calls the client, the daemon or
the web server, and prints what it got (its text from cli/render/). Everything heavy
is imported inside the command that needs it: `runner --help` and every cpu worker
start without the engine, the drivers or aiohttp."""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from runner.cli.parser import EXIT_FAILURE, EXIT_OK
from runner.cli.time_text import TimeText
from runner.clock import SYSTEM_CLOCK
from runner.config.durations import parse_duration
from runner.config.settings import Settings, config_path, load_settings
from runner.errors import ConfigError, UsageError

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


def _duration_arg(text: str, option: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


def _when(args: argparse.Namespace) -> dict[str, Any]:
    if args.in_ and args.at:
        raise UsageError("give --in or --at, not both")
    if args.in_:
        return {"delay": _duration_arg(args.in_, "--in")}
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
    wait = _duration_arg(args.wait, "--wait") if args.wait is not None else None
    settings = _settings(args)

    async def enqueue() -> EnqueueResult:
        async with await Client.connect(settings) as client:
            return await client.enqueue_result(
                args.task, payload[0], payload[1], job_id=args.id, queue=args.queue,
                priority=args.priority, wait=wait, depends_on=args.after,
                on_failure=args.on_failure, pass_results=args.pass_results, **when,
            )  # fmt: skip

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


def cmd_workflow(args: argparse.Namespace) -> int:
    from runner.cli.render.workflow import workflow_text  # noqa: PLC0415
    from runner.client.workflows import workflow_document  # noqa: PLC0415  # keeps --help fast

    doc = asyncio.run(workflow_document(_settings(args), args.workflow_id))
    print(orjson.dumps(doc).decode() if args.json else workflow_text(doc))
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from runner.cli.render.show import show_text  # noqa: PLC0415  # keeps `runner --help` fast
    from runner.client.show import show_document  # noqa: PLC0415

    doc = asyncio.run(show_document(_settings(args), args.job_id))
    print(
        orjson.dumps(doc).decode() if args.json else show_text(doc, args.full, TimeText(args.local))
    )
    return EXIT_OK


def cmd_wait(args: argparse.Namespace) -> int:
    from runner.cli.wait import wait_for_job  # noqa: PLC0415  # keeps `runner --help` fast

    return wait_for_job(args, _settings(args))


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


def cmd_notify(args: argparse.Namespace) -> int:
    """`runner notify replay NAME --event ID | --all`."""
    from runner.client.client import Client  # noqa: PLC0415  # keeps `runner --help` fast
    from runner.client.webhooks import replay  # noqa: PLC0415

    settings = _settings(args)

    async def run() -> dict[str, Any]:
        async with await Client.connect(settings) as client:
            return await replay(client, args.sink, None if args.all else args.event)

    done = asyncio.run(run())
    if args.json:
        print(orjson.dumps(done).decode())
    else:
        print(f"{done['replayed']} dead letter(s) of {args.sink!r} sent again")
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


def cmd_events(args: argparse.Namespace) -> int:
    """The stream's transitions, then with -f new ones until Ctrl-C (exit 0)."""
    from runner.cli.render.events import render  # noqa: PLC0415  # keeps `runner --help` fast
    from runner.client.client import Client  # noqa: PLC0415
    from runner.client.events import stream_transitions  # noqa: PLC0415
    from runner.events.filters import TransitionFilter  # noqa: PLC0415

    wanted = TransitionFilter.of(args.task or (), args.job or (), args.state or ())
    settings = _settings(args)
    times = TimeText(args.local)

    async def show() -> None:
        async with await Client.connect(settings) as client:
            async for batch in stream_transitions(client, wanted, args.follow):
                print(render(batch, args.json, times), flush=True)

    try:
        asyncio.run(show())
    except KeyboardInterrupt:  # how -f ends: asked for, not a failure
        return EXIT_OK
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
                limit=args.limit, after=args.after, queue=args.queue,
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
    if args.priority is not None:
        changes["priority"] = args.priority
    if args.timeout is not None:
        changes["timeout"] = _duration_arg(args.timeout, "--timeout")
    return changes


COMMANDS: dict[str, Command] = {
    "run": cmd_run,
    "web": cmd_web,
    "check-config": cmd_check_config,
    "migrate": cmd_migrate,
    "enqueue": cmd_enqueue,
    "show": cmd_show,
    "workflow": cmd_workflow,
    "wait": cmd_wait,
    "jobs": cmd_jobs,
    "logs": cmd_logs,
    "events": cmd_events,
    "status": cmd_status,
    "cron": cmd_cron,
    "notify": cmd_notify,
    "pause": cmd_request,
    "resume": cmd_request,
    "cancel": cmd_request,
    "retry": cmd_request,
    "delete": cmd_request,
    "update": cmd_request,
}
