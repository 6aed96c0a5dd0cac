"""What a cpu worker's reply frame (cpu_worker.py) means to the daemon: a result, kept
as the JSON text it came as; a fan-out, read whole (runner/workflows/fan_out.py); or
the task's error, raised here as the job's failure."""

from __future__ import annotations

from typing import Any

import orjson

from runner.daemon.cpu_worker import FAN_OUT, RESULT, UNSERIALISABLE
from runner.errors import RunnerError, UnserialisableResult


class TaskError(RunnerError):
    """A task raised inside a cpu worker. The message is the exception with its
    traceback; `type_name` is its class name (e.g. "TypeError")."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(message)
        self.type_name = type_name


def unpack(kind: bytes, body: bytes) -> Any:
    if kind == RESULT:
        return orjson.Fragment(body)
    if kind == FAN_OUT:
        return orjson.loads(body)
    if kind == UNSERIALISABLE:
        raise UnserialisableResult(orjson.loads(body))
    error = orjson.loads(body)
    raise TaskError(error["type"], error["message"])
