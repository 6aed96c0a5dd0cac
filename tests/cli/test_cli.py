"""The command line on its own: check-config exit codes and messages, and embedded mode."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from runner.servers.embedded import EmbeddedServers
from tests.daemon.process import DaemonProcess, cli, write_config

ROOT = Path(__file__).resolve().parents[2]


def test_check_config_accepts_the_shipped_configs() -> None:
    """Exit 0 and a one-line summary for a valid file."""
    for name in ("dev.toml", "runner.toml"):
        done = cli("check-config", config=ROOT / "config" / name)
        assert done.returncode == 0, done.stderr
        assert "OK (" in done.stdout


def test_check_config_lists_every_problem_and_exits_1(tmp_path: Path) -> None:
    """Each problem on its own line with its key path; no traceback."""
    config = write_config(
        tmp_path / "bad.toml",
        {"pools": {"cpu": -1}, "tasks.x": {"target": "tests.tasks:nope", "kind": "io"}},
    )
    done = cli("check-config", config=config)
    assert done.returncode == 1
    assert "pools.cpu: must be a whole number > 0, got -1" in done.stderr
    assert "Traceback" not in done.stderr
    broken_target = write_config(tmp_path / "t.toml", {"tasks.x": {"target": "tests.tasks:nope"}})
    done = cli("check-config", config=broken_target)
    assert (
        done.returncode == 1
        and "tasks.x.target: module 'tests.tasks' has no attribute" in done.stderr
    )


def test_usage_errors_exit_2() -> None:
    """argparse's own errors use exit code 2 as well."""
    done = subprocess.run(
        [sys.executable, "-m", "runner", "enqueue"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 2 and "the following arguments are required: task" in done.stderr


def test_embedded_mode_starts_and_stops_its_own_servers(
    tmp_path: Path, spawn: Callable[..., DaemonProcess]
) -> None:
    """With no URLs, `runner run` starts Valkey and PostgreSQL under embedded.dir; the CLI
    finds them from another process; SIGTERM stops the daemon and both servers."""
    config = write_config(
        tmp_path / "dev.toml",
        {
            "embedded": {"dir": str(tmp_path / "var")},
            "log": {"format": "json"},
            "tasks.hello": {"target": "runner.examples:hello", "kind": "async"},
        },
    )
    daemon = spawn(config)
    daemon.wait_ready(timeout=60)
    assert daemon.events("embedded servers started")
    job_id = json.loads(
        cli("enqueue", "hello", "--args", '["you"]', "--json", config=config).stdout
    )["id"]
    daemon.wait_for(lambda line: line.get("event") == "job succeeded" and line["job_id"] == job_id)
    shown = cli("show", job_id, "--json", config=config)
    assert json.loads(shown.stdout)["result"] == "hello, you"
    state = json.loads((tmp_path / "var" / "embedded.json").read_text())
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit() == 0
    assert not (tmp_path / "var" / "embedded.json").exists()
    for server in state.values():
        assert not Path(f"/proc/{server['pid']}").exists()
    missing = cli("enqueue", "hello", config=config)
    assert missing.returncode == 1 and "no embedded servers are running" in missing.stderr
    EmbeddedServers(tmp_path / "var").remove()  # the data it keeps, under /var/tmp as root
