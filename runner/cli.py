"""The `runner` command line.

Exit codes: 0 success, 1 failure (invalid config, a store down, a job not
found), 2 usage (a malformed argument, an unknown task). Errors are one or a
few readable lines on stderr, never a bare traceback for bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import orjson

from runner import __version__
from runner.client import refuse_nul
from runner.clock import SYSTEM_CLOCK
from runner.config import Settings, config_path, load_settings
from runner.durations import parse_duration
from runner.errors import ConfigError, RunnerError, StoreUnavailable, UsageError
from runner.redact import redact_text

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

Command = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's own usage errors exit 2 as well
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"runner: error: {message}\n")


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(config_path(getattr(args, "config", None), os.environ))


def _json_arg(text: str, name: str, kind: type) -> Any:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"{name}: not valid JSON ({exc}); e.g. {name} '[1, \"two\"]'") from None
    if not isinstance(value, kind):
        wanted = "a JSON array" if kind is list else "a JSON object"
        raise UsageError(f"{name}: must be {wanted}, got {text!r}")
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
    from runner.client import Client, due_at_ms  # noqa: PLC0415  # keeps `runner --help` fast

    payload = _json_arg(args.args, "--args", list), _json_arg(args.kwargs, "--kwargs", dict)
    when = _when(args)
    due_at_ms(SYSTEM_CLOCK, names=("--in", "--at"), **when)  # the client's checks, our names
    settings = _settings(args)

    async def enqueue() -> str:
        async with await Client.connect(settings) as client:
            return await client.enqueue(args.task, payload[0], payload[1], job_id=args.id, **when)

    job_id = asyncio.run(enqueue())
    print(orjson.dumps({"id": job_id}).decode() if args.json else job_id)
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from runner.show import show_job  # noqa: PLC0415  # keeps `runner --help` fast

    print(asyncio.run(show_job(_settings(args), args.job_id, args.json)))
    return EXIT_OK


def cmd_cron(args: argparse.Namespace) -> int:
    from runner.cron_view import cron_documents, render  # noqa: PLC0415  # keeps `runner --help` fast

    docs = asyncio.run(cron_documents(_settings(args)))
    print(render(docs, args.json))
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from runner.status import render, status_document  # noqa: PLC0415  # keeps `runner --help` fast

    print(render(asyncio.run(status_document(_settings(args))), args.json))
    return EXIT_OK


def cmd_logs(args: argparse.Namespace) -> int:
    from runner.logview import LogFilter, show_logs, since_from  # noqa: PLC0415

    try:
        since = since_from(args.since) if args.since else None
    except ValueError:
        raise UsageError(
            f"--since: give a duration like 10m or an ISO 8601 time, got {args.since!r}"
        ) from None
    source = args.source or _default_log_source(args)
    flt = LogFilter(job_id=args.job, task=args.task, level=args.level, since=since)
    try:
        show_logs(source, args.follow, flt, args.json)
    except FileNotFoundError:
        raise UsageError(f"no log file at {source}; give a FILE, or - to read stdin") from None
    except BrokenPipeError:
        pass
    return EXIT_OK


def _default_log_source(args: argparse.Namespace) -> str:
    """The config's [log] file, else stdin (`journalctl -u runner -o cat | runner logs`)."""
    try:
        return _settings(args).log_file or "-"
    except ConfigError:
        return "-"


def cmd_check_config(args: argparse.Namespace) -> int:
    from runner.tasks import TaskRegistry  # noqa: PLC0415  # imports task modules

    settings = _settings(args)
    registry = TaskRegistry.from_settings(settings)
    print(f"{settings.source}: OK ({len(registry.names())} tasks: {', '.join(registry.names())})")
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace) -> int:
    from runner.connections import resolve_urls  # noqa: PLC0415
    from runner.store.pg_store import PgStore  # noqa: PLC0415

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
    from runner.main import run_daemon  # noqa: PLC0415  # pulls in the whole engine

    return run_daemon(_settings(args), drain=args.drain)


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--config",
        default=argparse.SUPPRESS,  # so `runner --config X run` and `runner run --config X` agree
        help="config file (default: $RUNNER_CONFIG or config/runner.toml)",
    )
    parser = _Parser(prog="runner", description="asyncio job runner", parents=[common])
    parser.add_argument("--version", action="version", version=f"runner {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", parents=[common], help="run the daemon")
    run.add_argument("--drain", action="store_true", help="exit once no work is left")
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check-config", parents=[common], help="validate the config")
    check.set_defaults(func=cmd_check_config)

    migrate = sub.add_parser("migrate", parents=[common], help="create or upgrade the schema")
    migrate.set_defaults(func=cmd_migrate)

    enqueue = sub.add_parser("enqueue", parents=[common], help="enqueue a job")
    enqueue.add_argument("task")
    enqueue.add_argument("--args", default="[]", help="positional arguments, a JSON array")
    enqueue.add_argument("--kwargs", default="{}", help="keyword arguments, a JSON object")
    enqueue.add_argument("--in", dest="in_", metavar="DURATION", help="run after e.g. 10s, 5m")
    enqueue.add_argument("--at", metavar="ISO8601", help="run at, e.g. 2030-01-01T09:00:00Z")
    enqueue.add_argument("--id", help="job id (enqueue is idempotent by id)")
    enqueue.add_argument("--json", action="store_true", help='print {"id": ...}')
    enqueue.set_defaults(func=cmd_enqueue)

    show = sub.add_parser("show", parents=[common], help="a job's state, data and history")
    show.add_argument("job_id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_show)

    logs = sub.add_parser("logs", parents=[common], help="read, filter and follow the JSON log")
    logs.add_argument("source", nargs="?", help="a log file, or - for stdin (default: [log] file)")
    logs.add_argument("-f", "--follow", action="store_true", help="follow, across rotation")
    logs.add_argument("--job", help="only this job id")
    logs.add_argument("--task", help="only this task")
    logs.add_argument("--level", choices=["debug", "info", "warning", "error"], help="at least")
    logs.add_argument("--since", help="e.g. 10m, 2h, or an ISO 8601 time")
    logs.add_argument("--json", action="store_true", help="print the JSON lines as they are")
    logs.set_defaults(func=cmd_logs)

    status = sub.add_parser("status", parents=[common], help="backlog, daemons, set-aside jobs")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    cron = sub.add_parser("cron", parents=[common], help="cron schedules: last and next fires")
    cron.add_argument("--json", action="store_true")
    cron.set_defaults(func=cmd_cron)
    return parser


# What each error becomes: a line on stderr (with a prefix) and an exit code.
# The first match wins, so subclasses come before their base.
_FAILURES: tuple[tuple[type[Exception], str, int], ...] = (
    (UsageError, "", EXIT_USAGE),
    (StoreUnavailable, "cannot reach a server: ", EXIT_FAILURE),
    (RunnerError, "", EXIT_FAILURE),
    (OSError, "", EXIT_FAILURE),
)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    func: Command = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        for kind, prefix, code in _FAILURES:
            if isinstance(exc, kind):
                print(f"runner: {prefix}{redact_text(str(exc))}", file=sys.stderr)
                return code
        raise
