"""runner as a systemd service, on a real process: sd_notify, SIGHUP reload, SIGTERM."""

from __future__ import annotations

import asyncio
import itertools
import json
import queue
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from runner.store.postgres.store import PgStore
from runner.store.redis.fields import named
from runner.store.redis.keys import Keys
from tests.daemon.metrics_run import free_port, samples, scrape
from tests.daemon.process import DaemonProcess, cli, wait_for_history
from tests.waiting import eventually


class NotifySocket:
    """A Unix datagram socket standing in for systemd's; records (time, message)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._stop = False
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.messages.append((time.monotonic(), data.decode()))

    def wait_for(self, prefix: str, after: float = 0.0, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, message in list(self.messages):
                if at >= after and any(f.startswith(prefix) for f in message.split("\n")):
                    return message
            time.sleep(0.02)
        raise AssertionError(f"no {prefix!r} after {after}; got {self.messages[-10:]}")

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} did not happen within {timeout:g}s")
            time.sleep(0.02)

    def times(self, field: str) -> list[float]:
        return [at for at, message in self.messages if field in message.split("\n")]

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    listener = NotifySocket(tmp_path / "notify.sock")
    yield listener
    listener.close()


def test_sd_notify_ready_status_watchdog_reload_and_stop(
    daemon_config: Callable[..., Path],
    spawn: Callable[..., DaemonProcess],
    notify_socket: NotifySocket,
) -> None:
    """READY, STATUS, WATCHDOG, RELOADING/READY and STOPPING arrive as systemd expects;
    a blocked event loop stops the watchdog pings."""
    config = daemon_config(tasks__block_loop={"target": "tests.tasks:block_loop", "kind": "async"})
    env = {"NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "1000000"}
    daemon = spawn(config, env)
    notify_socket.wait_for("READY=1")
    assert "running" in notify_socket.wait_for("STATUS=")
    notify_socket.wait_until(lambda: len(notify_socket.times("WATCHDOG=1")) >= 3, "3 pings")
    pings = notify_socket.times("WATCHDOG=1")
    assert len(pings) >= 3 and max(b - a for a, b in itertools.pairwise(pings)) < 0.8
    sent = time.monotonic()
    daemon.signal(signal.SIGHUP)
    reloading = notify_socket.wait_for("RELOADING=1", after=sent)
    assert "MONOTONIC_USEC=" in reloading
    notify_socket.wait_for("READY=1", after=sent)
    config.write_text(config.read_text() + "\n[pools\n")  # an invalid file
    sent = time.monotonic()
    daemon.signal(signal.SIGHUP)
    notify_socket.wait_for("READY=1", after=sent)
    assert "last reload failed" in notify_socket.wait_for("STATUS=", after=sent)
    blocked_at = time.monotonic()
    good = config.with_name("good.toml")
    good.write_text(config.read_text().removesuffix("\n[pools\n"))
    assert cli("enqueue", "block_loop", "--args", "[3]", config=good).returncode == 0
    # The job blocks the loop for 3 s: wait for the pings to come back after it.
    notify_socket.wait_until(
        lambda: any(t > blocked_at + 3.0 for t in notify_socket.times("WATCHDOG=1")),
        "a ping after the loop was free again",
    )
    during = [t for t in notify_socket.times("WATCHDOG=1") if t > blocked_at]
    gaps = [b - a for a, b in zip([blocked_at, *during], during, strict=False)]
    assert max(gaps) > 2.0, "the watchdog kept pinging while the loop was blocked"
    assert during[-1] > time.monotonic() - 1.0, "the pings did not resume"
    stopping_after = time.monotonic()
    daemon.signal(signal.SIGTERM)
    notify_socket.wait_for("STOPPING=1", after=stopping_after)
    assert daemon.wait_exit() == 0


async def test_sighup_applies_a_valid_change_and_keeps_running_jobs(
    daemon_config: Callable[..., Path], spawn: Callable[..., DaemonProcess], pg: PgStore
) -> None:
    """A new task, a new cron schedule and a new pool size apply within 1 s while 100 long
    jobs run on (the io pool's free slots, read from the daemon's pools by /metrics, go
    from 8 to 6); an invalid file is rejected and the old config keeps working."""
    port = free_port()
    config = daemon_config(
        tasks__sleep_async={"target": "tests.tasks:sleep_async"},
        metrics={"listen": f"127.0.0.1:{port}"},
    )
    daemon = spawn(config)
    daemon.wait_ready()
    assert await eventually(lambda: _free_io_slots(port), what="/metrics answering") == 8
    ids = [
        json.loads(cli("enqueue", "sleep_async", "--args", "[4]", "--json", config=config).stdout)[
            "id"
        ]
        for _ in range(5)
    ]
    ids += await _enqueue_many(config, 95)
    daemon.wait_for(lambda _: len(daemon.events("job started")) >= 100, timeout=20)
    original = config.read_text()
    config.write_text(
        original + '\n[pools]\nio = 6\n\n[tasks.echo_again]\ntarget = "tests.tasks:echo"\n\n'
        '[cron.every_second]\nschedule = "* * * * * *"\ntask = "echo_again"\n'
    )
    sent = time.monotonic()
    daemon.signal(signal.SIGHUP)
    reloaded = daemon.wait_for(lambda line: line.get("event") == "config reloaded", timeout=5)
    assert time.monotonic() - sent < 1.0
    assert {"io_threads", "tasks.echo_again", "cron.every_second"} <= set(reloaded["changed"])
    assert await _free_io_slots(port) == 6
    daemon.wait_for(
        lambda line: line.get("task") == "echo_again" and line["event"] == "job succeeded"
    )
    done = cli("enqueue", "echo_again", "--json", config=config)
    assert done.returncode == 0, done.stderr
    good = config.with_name("good.toml")
    good.write_text(config.read_text())
    config.write_text(original + "\n[pools\nbroken =\n")
    daemon.signal(signal.SIGHUP)
    daemon.wait_for(lambda line: line.get("event") == "reload rejected: config invalid")
    after_bad = json.loads(cli("enqueue", "echo", "--json", config=good).stdout)["id"]
    daemon.wait_for(
        lambda line: line.get("job_id") == after_bad and line["event"] == "job succeeded"
    )
    daemon.wait_for(lambda _: len(daemon.events("job succeeded")) >= 100, timeout=20)
    for job_id in ids:
        history, _ = await wait_for_history(pg, job_id, "succeeded")
        assert max(h["attempt"] for h in history) == 1  # never restarted
    assert daemon.proc.poll() is None


async def _free_io_slots(port: int) -> float | None:
    """The io pool's free slots, or None while the metrics server is not up yet."""
    try:
        _, text = await scrape(port)
    except aiohttp.ClientConnectorError:
        return None
    return samples(text)[("runner_pool_free_slots", (("kind", "io"),))]


async def _enqueue_many(config: Path, count: int) -> list[str]:
    from runner.client.client import Client  # noqa: PLC0415
    from runner.config.settings import load_settings  # noqa: PLC0415

    settings = load_settings(config, {})
    async with await Client.connect(settings) as client:
        jobs = [client.new_job("sleep_async", [4]) for _ in range(count)]
        return await client.enqueue_many(jobs)


async def test_sigterm_finishes_what_it_can_and_hands_back_the_rest(
    daemon_config: Callable[..., Path],
    spawn: Callable[..., DaemonProcess],
    pg: PgStore,
    redis: Redis,
    prefix: str,
) -> None:
    """Jobs that end within the grace succeed; the rest go back to the schedule with no
    attempt counted; every transition reaches Postgres; the exit code is 0."""
    config = daemon_config(
        daemon={"shutdown_grace": "1s"},
        tasks__burn_cpu={"target": "tests.tasks:burn_cpu", "kind": "cpu"},
        tasks__sleep_async={"target": "tests.tasks:sleep_async"},
    )
    daemon = spawn(config)
    daemon.wait_ready()

    def enqueue(task: str, seconds: float) -> str:
        args = json.dumps([seconds])
        return str(
            json.loads(cli("enqueue", task, "--args", args, "--json", config=config).stdout)["id"]
        )

    quick = [enqueue("sleep_io", 0.3), enqueue("sleep_async", 0.3)]
    slow = [enqueue("sleep_io", 30), enqueue("sleep_async", 30), enqueue("burn_cpu", 30)]
    daemon.wait_for(lambda _: len(daemon.events("job started")) >= 5)
    started = time.monotonic()
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit() == 0
    assert time.monotonic() - started < 5
    for job_id in quick:
        assert [h["to_state"] for h in await pg.job_history(job_id)][-1] == "succeeded"
    keys = Keys(prefix)
    for job_id in slow:
        history = await pg.job_history(job_id)
        assert [h["to_state"] for h in history] == ["scheduled", "running", "scheduled"]
        assert history[-1]["detail"]["reason"] == "daemon stopped before the job ended"
        job = named(await redis.hgetall(keys.job(job_id)))
        assert (job["state"], job["attempt"]) == ("scheduled", "0")
    await asyncio.sleep(0)


def test_logs_follow_a_file_through_rotation(tmp_path: Path) -> None:
    """`runner logs -f` keeps following after a logrotate-style rename and new file."""
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    log = tmp_path / "runner.log"

    def line(event: str, task: str = "t") -> str:
        stamp = "2026-11-22T10:00:00.000Z"
        return json.dumps({"ts": stamp, "level": "info", "event": event, "task": task}) + "\n"

    log.write_text(line("before rotation") + line("other task", task="x"))
    follower = subprocess.Popen(
        [sys.executable, "-m", "runner", "logs", str(log), "-f", "--task", "t"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    assert follower.stdout is not None
    output = follower.stdout

    def read_lines() -> None:
        for text in output:
            lines.put(text)

    threading.Thread(target=read_lines, daemon=True).start()

    def next_line() -> str:
        """The follower's next line; fails instead of hanging if none comes."""
        try:
            return lines.get(timeout=10)
        except queue.Empty:
            raise AssertionError("runner logs -f printed nothing within 10 s") from None

    try:
        assert "before rotation" in next_line()
        log.rename(tmp_path / "runner.log.1")
        with (tmp_path / "runner.log.1").open("a") as old:
            old.write(line("late line in the old file"))
        log.write_text(line("after rotation"))  # at once: the old file must be read out first
        assert "late line in the old file" in next_line()
        after = next_line()
        assert "after rotation" in after and "task=t" in after
    finally:
        follower.kill()
        follower.wait()
        if follower.stdout is not None:
            follower.stdout.close()


def test_a_second_sigterm_stops_at_once(
    daemon_config: Callable[..., Path], spawn: Callable[..., DaemonProcess]
) -> None:
    """During a long grace, a second SIGTERM ends the process without waiting."""
    config = daemon_config(daemon={"shutdown_grace": "60s"})
    daemon = spawn(config)
    daemon.wait_ready()
    assert cli("enqueue", "sleep_io", "--args", "[30]", config=config).returncode == 0
    daemon.wait_for(lambda line: line.get("event") == "job started")
    daemon.signal(signal.SIGTERM)
    daemon.wait_for(lambda line: line.get("event") == "daemon stopping")
    started = time.monotonic()
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit(timeout=10) == 1
    assert time.monotonic() - started < 5
