"""Who owns a folder's embedded servers: one live process, and leftovers of dead ones.

The process that starts the servers holds ``<dir>/embedded.lock``, an flock that
the kernel drops when the process ends, however it ends (SIGKILL included), with
its pid written inside for others' messages. So the lock tells a live owner from
a dead one: a second `runner run` on the same folder is refused instead of taking
the first one's servers for leftovers, and what a killed daemon left running is
stopped by the next process that takes the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import time
from pathlib import Path

from runner.errors import RunnerError

LOCK_FILE = "embedded.lock"


class EmbeddedBusy(RunnerError):
    """The folder's servers belong to another process, which is still running."""

    def __init__(self, root: Path, owner: str) -> None:
        self.root = root
        self.owner = owner
        super().__init__(
            f"the embedded servers under {root} belong to another runner, still running "
            f"as pid {owner}: stop it first (Ctrl-C in its terminal, or kill {owner}), or "
            "set another [embedded] dir for this one; commands like `runner enqueue` "
            "already use its servers"
        )


def lock_folder(root: Path) -> int:
    """Take <root>/embedded.lock for as long as this process lives (or until the returned
    descriptor is closed), with our pid in it. Raises EmbeddedBusy if a live process has it.

    The descriptor is close-on-exec and servers are started with close_fds, so the lock
    never outlives this process in a child."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = _lock_owner(fd)
        os.close(fd)
        raise EmbeddedBusy(root, owner) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _lock_owner(fd: int) -> str:
    """The pid the lock's holder wrote, given a moment to write it (it locks, then writes)."""
    for _ in range(20):
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if text.isdigit():
            return text
        time.sleep(0.05)
    return "unknown"


def stop_leftover(pid: int, folder: Path, sig: signal.Signals, timeout: float = 15.0) -> None:
    """Stop a server that a dead owner left running in `folder`, and wait (bounded) for it
    to exit, so that a new one can take the folder. Call it holding the lock only."""
    if not _works_in(pid, folder):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _works_in(pid: int, folder: Path) -> bool:
    """Whether `pid` is a live process working in `folder`, as the servers do (they chdir to
    their data). A pid read from a file may name any process after a reboot: only a server
    of this folder may be signalled."""
    if not Path("/proc/self/cwd").exists():  # no /proc here: trust the pid file
        return alive(pid)
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except FileNotFoundError:  # no such process, or it has exited already
        return False
    except PermissionError:  # another user's: trust the pid file
        return alive(pid)
    return Path(cwd) == folder.resolve()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
