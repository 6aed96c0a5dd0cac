"""The loop inside each cpu worker process: import the task, run it, send back JSON.

Results are checked for JSON here, in the worker, so an unserialisable result
never crosses the pipe. Task targets come from the parent's config (the
allow-list); arguments were decoded from JSON.
"""

from __future__ import annotations

import signal
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import orjson

READY = "ready"


def worker_main(conn: Connection) -> None:
    # Stopping is the parent's call: a Ctrl-C reaching the whole process group
    # must not kill jobs before the daemon decides what to do with them.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    funcs: dict[str, Callable[..., Any]] = {}
    conn.send(READY)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        target, args, kwargs = message
        conn.send(_run(funcs, target, args, kwargs))


def _run(
    funcs: dict[str, Callable[..., Any]], target: str, args: list[Any], kwargs: dict[str, Any]
) -> tuple[str, str]:
    from runner.tasks import import_target  # noqa: PLC0415  # keeps the forkserver preload small

    try:
        func = funcs.get(target) or funcs.setdefault(target, import_target(target))
        result = func(*args, **kwargs)
    except Exception as exc:
        return ("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=-8)}")
    try:
        return ("ok", orjson.dumps(result).decode())
    except TypeError as exc:
        return ("unserialisable", f"result is not JSON-serialisable: {exc}")
