"""Tasks that the cpu pool's tests run in its worker processes."""

from __future__ import annotations

import ctypes
import os
import sys
import time


def pid() -> int:
    return os.getpid()


def sized_reply(data: str, size: int) -> dict[str, int | str]:
    """Says how much it received and answers with `size` characters."""
    return {"received": len(data), "reply": "r" * size}


def exit_hard(code: int) -> None:
    os._exit(code)


def segfault() -> None:
    ctypes.string_at(0)


def sleep(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def system_exit(code: int) -> None:
    sys.exit(code)


def interrupt() -> None:
    raise KeyboardInterrupt


def generator_exit() -> None:
    raise GeneratorExit


def wrong_type(value: int) -> None:
    raise TypeError(f"not a {type(value).__name__}")


def wrong_value(value: int) -> None:
    raise ValueError(f"bad value {value}")
