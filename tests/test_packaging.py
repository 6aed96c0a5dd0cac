"""Packaging: the Lua scripts, SQL queries and migrations ship as declared package data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = (
    "runner/store/redis/lua/*.lua",
    "runner/store/postgres/sql/*.sql",
    "runner/store/postgres/sql/migrations/*.sql",
)


def test_build_ships_the_data_folders_without_setuptools_warnings(tmp_path: Path) -> None:
    """What `pip install` runs (egg_info, build_py) copies every Lua and SQL file, and
    setuptools has nothing to say about folders missing from the `packages` configuration
    (folders without __init__.py are found as namespace packages, their files declared)."""
    setup = [sys.executable, "-c", "from setuptools import setup; setup()", "-q"]
    egg_info = ["egg_info", "--egg-base", str(tmp_path)]
    build_py = ["build_py", "--build-lib", str(tmp_path / "lib")]
    done = subprocess.run(
        [*setup, *egg_info, *build_py],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Package would be ignored" not in done.stderr, done.stderr
    assert "`packages` configuration" not in done.stderr, done.stderr
    for pattern in DATA:
        shipped = sorted(p.relative_to(tmp_path / "lib") for p in (tmp_path / "lib").glob(pattern))
        in_checkout = sorted(p.relative_to(ROOT) for p in ROOT.glob(pattern))
        assert in_checkout and shipped == in_checkout, pattern
