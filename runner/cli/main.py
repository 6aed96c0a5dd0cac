"""The `runner` command line.

Exit codes: 0 success, 1 failure (invalid config, a store down, a job not
found), 2 usage (a malformed argument, an unknown task). Errors are one or a
few readable lines on stderr, each starting with `runner:` (their continuation
lines indented), never a bare traceback for bad input. A reader that stops
early (`runner jobs | head`) ends any command quietly, as it ends other Unix tools.
"""

from __future__ import annotations

import argparse
import os
import select
import sys
from collections.abc import Sequence

from runner.cli.commands import COMMANDS, Command
from runner.cli.parser import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, build_parser
from runner.config.settings import Settings
from runner.errors import RunnerError, StoreError, StoreUnavailable, UsageError
from runner.redact import redact_text, redact_url

# What each error becomes: a line on stderr (with a prefix) and an exit code.
# The first match wins, so subclasses come before their base.
_FAILURES: tuple[tuple[type[Exception], str, int], ...] = (
    (UsageError, "", EXIT_USAGE),
    (StoreUnavailable, "cannot reach a server: ", EXIT_FAILURE),
    (StoreError, "", EXIT_FAILURE),
    (RunnerError, "", EXIT_FAILURE),
    (OSError, "", EXIT_FAILURE),
)


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
