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
from typing import Any

import orjson

from runner.cli.arguments import duration_arg, json_arg, settings_of, when
from runner.cli.parser import EXIT_OK
from runner.cli.requests import cmd_request
from runner.cli.time_text import TimeText
from runner.clock import SYSTEM_CLOCK
from runner.config.settings import Settings, config_path
from runner.errors import ConfigError, JobNotFound, UsageError

Command = Callable[[argparse.Namespace], int]


def cmd_enqueue(args: argparse.Namespace) -> int:
    from runner.client.client import Client  # noqa: PLC0415  # keeps `runner --help` fast
    from runner.client.input import due_at_ms  # noqa: PLC0415
    from runner.jobs import EnqueueResult  # noqa: PLC0415

    if args.args == "-" and args.kwargs == "-":
        raise UsageError("--args and --kwargs cannot both read stdin: give one as @FILE")
    payload = json_arg(args.args, "--args", list), json_arg(args.kwargs, "--kwargs", dict)
    due = when(args)
    due_at_ms(SYSTEM_CLOCK, names=("--in", "--at"), **due)  # the client's checks, our names
    wait = duration_arg(args.wait, "--wait") if args.wait is not None else None
    settings = settings_of(args)

    async def enqueue() -> EnqueueResult:
        async with await Client.connect(settings) as client:
            return await client.enqueue_result(
                args.task, payload[0], payload[1], job_id=args.id, queue=args.queue,
                priority=args.priority, wait=wait, depends_on=args.after,
                on_failure=args.on_failure, pass_results=args.pass_results, **due,
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

    doc = asyncio.run(workflow_document(settings_of(args), args.workflow_id))
    print(orjson.dumps(doc).decode() if args.json else workflow_text(doc))
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from runner.cli.render.show import show_text  # noqa: PLC0415  # keeps `runner --help` fast
    from runner.client.show import show_document  # noqa: PLC0415

    settings = settings_of(args)
    try:
        doc = asyncio.run(show_document(settings, args.job_id))
    except JobNotFound:
        return _show_workflow(args, settings)  # `runner show WF` lists a workflow
    print(
        orjson.dumps(doc).decode() if args.json else show_text(doc, args.full, TimeText(args.local))
    )
    return EXIT_OK


def _show_workflow(args: argparse.Namespace, settings: Settings) -> int:
    """The workflow the id names, as `runner workflow` lists it; JobNotFound if none."""
    from runner.cli.render.workflow import workflow_text  # noqa: PLC0415
    from runner.client.workflows import workflow_document  # noqa: PLC0415

    try:
        doc = asyncio.run(workflow_document(settings, args.job_id))
    except UsageError:
        raise JobNotFound(args.job_id) from None
    print(orjson.dumps(doc).decode() if args.json else workflow_text(doc))
    return EXIT_OK


def cmd_wait(args: argparse.Namespace) -> int:
    from runner.cli.wait import wait_for_job  # noqa: PLC0415  # keeps `runner --help` fast

    return wait_for_job(args, settings_of(args))


def cmd_cron(args: argparse.Namespace) -> int:
    from runner.cli.render.cron import render  # noqa: PLC0415  # keeps `runner --help` fast
    from runner.client.cron import cron_documents  # noqa: PLC0415

    docs = asyncio.run(cron_documents(settings_of(args)))
    print(render(docs, args.json, TimeText(args.local)))
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from runner.cli.render.status import render  # noqa: PLC0415  # keeps `runner --help` fast
    from runner.client.status import status_document  # noqa: PLC0415

    doc = asyncio.run(status_document(settings_of(args)))
    print(render(doc, args.json, TimeText(args.local)))
    return EXIT_OK


def cmd_notify(args: argparse.Namespace) -> int:
    """`runner notify replay NAME --event ID | --all`."""
    from runner.client.client import Client  # noqa: PLC0415  # keeps `runner --help` fast
    from runner.client.webhooks import replay  # noqa: PLC0415

    settings = settings_of(args)

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
    settings = settings_of(args)
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
        return settings_of(args).log_file or "-"
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

    settings = settings_of(args)

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

    return run_daemon(settings_of(args), drain=args.drain)


def cmd_web(args: argparse.Namespace) -> int:
    from runner.web.serve import run_web  # noqa: PLC0415  # pulls in aiohttp

    return run_web(settings_of(args), listen_flag=args.listen)


def cmd_jobs(args: argparse.Namespace) -> int:
    from runner.cli.render.listing import render  # noqa: PLC0415
    from runner.client.client import Client  # noqa: PLC0415  # keeps `runner --help` fast
    from runner.client.listing import Page, moment_arg  # noqa: PLC0415

    since = moment_arg(args.since, "--since") if args.since else None
    until = moment_arg(args.until, "--until") if args.until else None
    settings = settings_of(args)
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
