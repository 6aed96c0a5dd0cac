"""SIGHUP when a task's module cannot be imported: the reload is refused, never the daemon."""

from __future__ import annotations

import functools
import json
import signal
from collections.abc import Callable
from pathlib import Path

from runner.store.postgres.store import PgStore
from tests.daemon.process import DaemonProcess, LogLine, cli, wait_for_history


def _rejections(daemon: DaemonProcess) -> list[LogLine]:
    return [
        line for line in daemon.lines if str(line.get("event", "")).startswith("reload rejected")
    ]


def _rejected_times(daemon: DaemonProcess, times: int, _: LogLine) -> bool:
    return len(_rejections(daemon)) >= times


async def test_a_reload_with_a_broken_task_module_keeps_the_old_settings(
    tmp_path: Path, daemon_config: Callable[..., Path], spawn: Callable[..., DaemonProcess],
    pg: PgStore,
) -> None:  # fmt: skip
    """A new task whose module has a syntax error, then one whose module raises on import:
    each reload is rejected naming the module's error, the daemon keeps running on the
    old settings, and its tasks still run."""
    (tmp_path / "site_tasks.py").write_text("async def hello():\n    return 'hi'\n")
    config = daemon_config(tasks__hello={"target": "site_tasks:hello"})
    original = config.read_text()
    daemon = spawn(config, {"PYTHONPATH": str(tmp_path)})
    daemon.wait_ready()
    broken = tmp_path / "broken_tasks.py"
    config.write_text(original + '\n[tasks.oops]\ntarget = "broken_tasks:oops"\n')
    for done, (source, error) in enumerate(
        (
            ("async def oops(:\n    pass\n", "SyntaxError"),
            ("raise RuntimeError('no database here')\n", "no database here"),
        )
    ):
        broken.write_text(source)
        daemon.signal(signal.SIGHUP)
        daemon.wait_for(functools.partial(_rejected_times, daemon, done + 1))
        rejected = _rejections(daemon)[done]
        assert error in str(rejected["error"]) and "broken_tasks" in str(rejected["error"])
        assert daemon.proc.poll() is None
    job_id = json.loads(cli("enqueue", "hello", "--json", config=config).stdout)["id"]
    history, _ = await wait_for_history(pg, job_id, "succeeded")
    assert history[-1]["detail"]["result"] == "hi"
    assert daemon.proc.poll() is None
    assert not daemon.events("config reloaded")
