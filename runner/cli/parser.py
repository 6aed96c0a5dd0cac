"""The `runner` command line's grammar and help: every command says what it does,
shows an example and the exit codes, so `runner CMD --help` answers most questions."""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Callable, Mapping
from typing import Any

from runner import __version__
from runner.cli.help_text import COMMANDS
from runner.client.paging import DEFAULT_LIMIT, MAX_LIMIT
from runner.states import State

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_TIMEOUT = 0, 1, 2, 3

EXIT_CODES = """\
exit codes:
  0  success
  1  failure: an invalid config, a server that cannot be reached, a job not found
  2  usage: a malformed argument, an unknown task, a payload that is too large"""

CONFIG_HELP = (
    "config file (default: $RUNNER_CONFIG, else config/runner.toml); "
    "RUNNER_REDIS_URL and RUNNER_DATABASE_URL override its URLs"
)
JSON_HELP = "print JSON for scripts instead of text"
LOCAL_HELP = (
    "print times in this machine's time zone (TZ) with its offset, instead of UTC "
    "(JSON is always UTC)"
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's own usage errors exit 2 as well
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"runner: error: {message}\n")


def _add(sub: Any, name: str, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    summary, description, examples = COMMANDS[name]
    return sub.add_parser(  # type: ignore[no-any-return]
        name,
        parents=[common],
        help=summary,
        description=textwrap.fill(description, 79),
        epilog=f"examples:\n{_indent(examples)}\n\n{EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


def build_parser(commands: Mapping[str, Callable[[argparse.Namespace], int]]) -> _Parser:
    """The parser; each command's namespace gets `func`, the function that runs it."""
    common = _Parser(add_help=False)
    # SUPPRESS: so `runner --config X run` and `runner run --config X` agree
    common.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help=CONFIG_HELP)
    parser = _Parser(
        prog="runner",
        description="runner: an asyncio job runner on Redis and PostgreSQL. "
        "`runner COMMAND --help` tells more about each command.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"runner {__version__}")
    sub = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser, metavar="COMMAND"
    )
    for name, func in commands.items():
        command = _add(sub, name, common)
        command.set_defaults(func=func)
        if name in _ARGUMENTS:
            _ARGUMENTS[name](command)
    return parser


def _run_arguments(run: argparse.ArgumentParser) -> None:
    run.add_argument("--drain", action="store_true", help="exit once no work is left")


def _web_arguments(web: argparse.ArgumentParser) -> None:
    web.add_argument(
        "--listen", metavar="HOST:PORT", help="where to listen, instead of [web] listen"
    )


def _enqueue_arguments(enqueue: argparse.ArgumentParser) -> None:
    enqueue.add_argument("task", help="a task declared under [tasks] in the config")
    enqueue.add_argument(
        "--args",
        default="[]",
        metavar="JSON",
        help="positional arguments: a JSON array, @FILE, or - for stdin (default: [])",
    )
    enqueue.add_argument(
        "--kwargs",
        default="{}",
        metavar="JSON",
        help="keyword arguments: a JSON object, @FILE, or - for stdin (default: {})",
    )
    enqueue.add_argument(
        "--in", dest="in_", metavar="DURATION", help="run after a delay, e.g. 500ms, 10s, 5m, 2h"
    )
    enqueue.add_argument(
        "--at", metavar="TIME", help="run at an ISO 8601 time with offset, e.g. 2030-01-01T09:00Z"
    )
    enqueue.add_argument(
        "--id",
        help="the job's id (default: a new random one); ids starting with cron: are reserved",
    )
    enqueue.add_argument(
        "--queue", metavar="Q", help="the queue it waits in (default: its task's queue)"
    )
    enqueue.add_argument(
        "--priority",
        type=int,
        metavar="N",
        help="0 (the default) to 9 (the most urgent): among due jobs of a queue, higher first",
    )
    enqueue.add_argument(
        "--after",
        action="append",
        metavar="ID",
        help="wait, blocked, until job ID has ended (repeat for several); see --on-failure",
    )
    enqueue.add_argument(
        "--on-failure",
        choices=("cancel", "run", "fail"),
        help="if a job it waits for does not succeed: cancel this one (the default), run it "
        "anyway, or fail it",
    )
    enqueue.add_argument(
        "--pass-results",
        action="store_true",
        help="give it the results of the jobs it waits for as its first argument (the "
        "result after one --after, a list in their order after several)",
    )
    enqueue.add_argument(
        "--wait",
        metavar="DURATION",
        help="if the task's max_queued jobs wait, wait this long for room (default: refuse "
        "at once, exit 1)",
    )
    enqueue.add_argument(
        "--json", action="store_true", help='print {"id": ..., "created": ..., "state": ...}'
    )


def _output(command: argparse.ArgumentParser, json_help: str = JSON_HELP) -> None:
    """A read command's --json, or --local for its text: not both, as JSON is for
    scripts and always speaks UTC."""
    chosen = command.add_mutually_exclusive_group()
    chosen.add_argument("--json", action="store_true", help=json_help)
    chosen.add_argument("--local", action="store_true", help=LOCAL_HELP)


def _workflow_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("workflow_id", metavar="WORKFLOW", help="the workflow's id (wf-...)")
    command.add_argument("--json", action="store_true", help=JSON_HELP)


def _show_arguments(show: argparse.ArgumentParser) -> None:
    show.add_argument(
        "job_id", metavar="JOB_ID", help="the id enqueue printed (a workflow's id: its graph)"
    )
    show.add_argument("--full", action="store_true", help="print large payloads whole")
    _output(show)


def _wait_arguments(wait: argparse.ArgumentParser) -> None:
    wait.add_argument("job_id", metavar="JOB_ID", help="the id enqueue printed")
    wait.add_argument(
        "--timeout", metavar="DURATION", help="give up after this long (90, 30s, 5m; exit 3)"
    )
    wait.add_argument(
        "--json", action="store_true",
        help='print {"id", "state", "result" | "error" | "timed_out"}',
    )  # fmt: skip


def _logs_arguments(logs: argparse.ArgumentParser) -> None:
    logs.add_argument(
        "source", nargs="?", metavar="FILE", help="a log file, or - for stdin (default: [log] file)"
    )
    logs.add_argument(
        "-f", "--follow", action="store_true", help="keep reading, across log rotation"
    )
    logs.add_argument("--job", metavar="JOB_ID", help="only this job's lines")
    logs.add_argument("--task", help="only this task's lines")
    logs.add_argument(
        "--level", choices=["debug", "info", "warning", "error"], help="only this level and above"
    )
    logs.add_argument("--since", help="only lines after e.g. 10m, 2h, or an ISO 8601 time")
    _output(logs, "print the JSON lines as they are")


def _events_arguments(events: argparse.ArgumentParser) -> None:
    events.add_argument(
        "-f", "--follow", action="store_true", help="keep printing new transitions until Ctrl-C"
    )
    events.add_argument("--task", action="append", help="only this task's (repeatable)")
    events.add_argument(
        "--job", action="append", metavar="JOB_ID", help="only this job's (repeatable)"
    )
    events.add_argument(
        "--state", action="append", choices=[str(state) for state in State],
        help="only transitions to this state (repeatable)",
    )  # fmt: skip
    _output(events, "print one JSON object per transition and line")


def _ids(command: argparse.ArgumentParser, task_wide: bool, workflow: bool = False) -> None:
    command.add_argument("job_ids", nargs="*", metavar="JOB_ID", help="one or more job ids")
    if task_wide:
        command.add_argument("--task", help="every job of this task, on every daemon")
        command.add_argument("--all", action="store_true", help="every job (maintenance mode)")
    if workflow:
        command.add_argument(
            "--workflow", metavar="WF", help="every job of this workflow it applies to"
        )
    command.add_argument("--json", action="store_true", help="print the results as JSON")


def _update_arguments(update: argparse.ArgumentParser) -> None:
    _ids(update, task_wide=False)
    update.add_argument("--args", metavar="JSON", help="new positional arguments (or @FILE, -)")
    update.add_argument("--kwargs", metavar="JSON", help="new keyword arguments (or @FILE, -)")
    update.add_argument("--in", dest="in_", metavar="DURATION", help="new due time: from now")
    update.add_argument("--at", metavar="TIME", help="new due time: an ISO 8601 time")
    update.add_argument("--retries", type=int, metavar="N", help="attempts after the first")
    update.add_argument("--timeout", metavar="DURATION", help="this job's timeout, e.g. 2m")
    update.add_argument("--priority", type=int, metavar="N", help="0 (the default) to 9")


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_LIMIT}, got {value}")
    return value


def _jobs_arguments(jobs: argparse.ArgumentParser) -> None:
    jobs.add_argument("--state", choices=[str(state) for state in State], help="only this state")
    jobs.add_argument("--task", help="only this task's jobs")
    jobs.add_argument("--queue", metavar="Q", help="only the jobs of this queue")
    jobs.add_argument(
        "--since",
        metavar="TIME",
        help="only jobs created at or after TIME: a duration ago (30m, 1h, 2d) or an ISO "
        "8601 time (UTC if it has no offset)",
    )
    jobs.add_argument("--until", metavar="TIME", help="only jobs created before TIME (as --since)")
    jobs.add_argument(
        "--limit", type=_limit, default=DEFAULT_LIMIT, metavar="N",
        help=f"jobs per page, 1 to {MAX_LIMIT} (default: {DEFAULT_LIMIT})",
    )  # fmt: skip
    jobs.add_argument(
        "--after", metavar="CURSOR", help="the next page: the CURSOR the previous page printed"
    )
    _output(jobs, 'print {"jobs": [...], "next_cursor": CURSOR or null}')


def _notify_arguments(notify: argparse.ArgumentParser) -> None:
    notify.add_argument("action", choices=["replay"], help="what to do: replay dead letters")
    notify.add_argument("sink", metavar="NAME", help="the sink, as named under [notify.NAME]")
    which = notify.add_mutually_exclusive_group(required=True)
    which.add_argument("--event", metavar="EVENT_ID", help="the dead letter of this event")
    which.add_argument("--all", action="store_true", help="every dead letter of the sink")
    _output(notify, 'print {"sink", "event_id", "replayed": N}')


_ARGUMENTS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "jobs": _jobs_arguments,
    "pause": lambda command: _ids(command, task_wide=True, workflow=True),
    "resume": lambda command: _ids(command, task_wide=True, workflow=True),
    "cancel": lambda command: _ids(command, task_wide=False, workflow=True),
    "retry": lambda command: _ids(command, task_wide=False, workflow=True),
    "delete": lambda command: _ids(command, task_wide=False),
    "update": _update_arguments,
    "run": _run_arguments,
    "web": _web_arguments,
    "enqueue": _enqueue_arguments,
    "show": _show_arguments,
    "workflow": _workflow_arguments,
    "wait": _wait_arguments,
    "logs": _logs_arguments,
    "events": _events_arguments,
    "status": _output,
    "cron": _output,
    "notify": _notify_arguments,
}
