"""The loop inside each cpu worker process, and the frames it exchanges with the daemon.

Every message is one frame: a header (a kind byte, then the body's length in
8 bytes) and a body of JSON. The daemon sends JOB frames (the task's target,
its args and its kwargs as one JSON array) and, to stop a worker politely, a
STOP frame; the worker sends READY once, then one RESULT, FAN_OUT, ERROR or
UNSERIALISABLE frame per job. Payloads are JSON, never pickle.

Results are encoded here, in the worker, so an unserialisable result never
crosses the socket and the daemon can store the JSON text as it came. Task
targets come from the daemon's config (the allow-list). Whatever a task raises,
SystemExit and KeyboardInterrupt included, is its job's error; only a death
nothing can catch (os._exit, a signal) ends the worker. This side blocks: a
worker has nothing else to do while it waits.

A worker ends as soon as the daemon's end of its socket closes, even in the middle
of a job: a daemon that was killed (SIGKILL, the OOM killer) leaves nobody to take
the result, and its job runs again elsewhere once its lease expires. An idle worker
sees the end in its read; a busy one, through a thread that only waits for the hang-up.
Until every worker is gone, the forkserver they came from stays too (each holds its
"alive" pipe), so this is also what ends the forkserver of a daemon that was killed.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import struct
import threading
import traceback
from collections.abc import Callable
from typing import Any

import orjson

from runner.workflows.fan_out import is_fan_out

HEADER = struct.Struct("!cQ")
READY, JOB, STOP = b"r", b"j", b"s"
RESULT, ERROR, UNSERIALISABLE = b"o", b"e", b"u"
FAN_OUT = b"f"  # a result that hands out jobs (runner/workflows/fan_out.py): read whole


def worker_main(sock: socket.socket) -> None:
    # Stopping is the parent's call: a Ctrl-C reaching the whole process group
    # must not kill jobs before the daemon decides what to do with them.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    threading.Thread(
        target=_end_with_the_daemon, args=(sock.fileno(),), name="runner-cpu-watch", daemon=True
    ).start()
    funcs: dict[str, Callable[..., Any]] = {}
    with sock:
        try:
            send_frame(sock, READY)
            while True:
                kind, body = receive_frame(sock)
                if kind != JOB:
                    return
                send_frame(sock, *_run(funcs, body))
        except (EOFError, OSError):  # the daemon is gone (it stopped or was killed)
            return


def _end_with_the_daemon(fd: int) -> None:
    """Leave at once when the daemon's end of the socket closes (a hang-up, which the
    daemon's frames never cause), whatever job the main thread is running."""
    poller = select.poll()
    poller.register(fd, select.POLLHUP)
    while True:
        for _, events in poller.poll():
            if events & select.POLLNVAL:  # closed by the main thread: it is leaving anyway
                return
            os._exit(0)  # a hang-up, or an error on the socket: a quiet end, as when idle


def send_frame(sock: socket.socket, kind: bytes, body: bytes = b"") -> None:
    sock.sendall(HEADER.pack(kind, len(body)) + body)


def receive_frame(sock: socket.socket) -> tuple[bytes, bytearray]:
    kind, size = HEADER.unpack(_receive_exactly(sock, HEADER.size))
    return kind, _receive_exactly(sock, size)


def _receive_exactly(sock: socket.socket, size: int) -> bytearray:
    buffer = bytearray(size)
    view = memoryview(buffer)
    received = 0
    while received < size:
        count = sock.recv_into(view[received:])
        if count == 0:
            raise EOFError(f"socket closed after {received} of {size} bytes")
        received += count
    return buffer


def _run(funcs: dict[str, Callable[..., Any]], body: bytearray) -> tuple[bytes, bytes]:
    from runner.tasks import import_target  # noqa: PLC0415  # keeps the forkserver preload small

    target, args, kwargs = orjson.loads(body)
    try:
        func = funcs.get(target) or funcs.setdefault(target, import_target(target))
        result = func(*args, **kwargs)
    except BaseException as exc:  # whatever a task raises is its job's error, not the worker's end
        return ERROR, orjson.dumps({"type": type(exc).__name__, "message": _describe(exc)})
    try:
        return FAN_OUT if is_fan_out(result) else RESULT, orjson.dumps(result)
    except TypeError as exc:
        return UNSERIALISABLE, orjson.dumps(f"result is not JSON-serialisable: {exc}")


def _describe(exc: BaseException) -> str:
    """'SystemExit: 3' (or only the class name when the text is empty), then the traceback."""
    name = type(exc).__name__
    try:
        text = str(exc)
    except Exception:  # a task's exception with a broken __str__ must not end the worker
        text = "<str() failed>"
    trace = "".join(traceback.format_exception(exc, limit=-8))
    return f"{name}: {text}\n{trace}" if text else f"{name}\n{trace}"
