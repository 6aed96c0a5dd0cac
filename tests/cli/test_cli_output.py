"""What the read commands print: one time format (RFC 3339 UTC with ms, or the local
zone with its offset under --local), a closed pipe that ends the command quietly,
the changes an update made in `show`'s history, and error lines that all start
with `runner:`."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson

from runner.client.client import Client
from runner.daemon.recorder import Recorder
from runner.store.postgres.store import PgStore
from runner.store.redis.store import RedisStore
from tests.daemon.process import cli

ROOT = Path(__file__).resolve().parents[2]
# Anything that looks like a date and a time, up to the next blank or separator.
A_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d[^\s,;()\]\"']*")
UTC_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
KOLKATA_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+05:30")  # no DST there
LOG_LINE = {"ts": "2026-12-07T03:42:27.528Z", "level": "info", "event": "job succeeded",
            "job_id": "j1", "task": "echo"}  # fmt: skip


def _runner(
    *args: str, config: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m runner ARGS --config CONFIG`, with extra environment (TZ)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "runner", *args, "--config", str(config)],
        capture_output=True, text=True, timeout=30, env=full, check=False, cwd=ROOT,
    )  # fmt: skip


async def _recorded(store: RedisStore, pg: PgStore) -> None:
    """Write every transition so far to Postgres, as a daemon's recorder would."""
    await store.ensure_event_group()
    await Recorder(store, pg_store=pg, consumer="c", batch_events=100, flush_interval=0.05).drain()


def _times(text: str) -> list[str]:
    return A_TIME.findall(text)


async def test_every_read_command_prints_rfc3339_utc_or_local_times(
    client: Client,
    store: RedisStore,
    pg: PgStore,
    daemon_config: Callable[..., Path],
    tmp_path: Path,
) -> None:
    """`jobs`, `show`, `status`, `cron` and `logs` print every time as RFC 3339 UTC
    with milliseconds; with --local, in the local zone (TZ) with its offset; --local
    beside --json is a usage error, as JSON is always UTC."""
    config = daemon_config(cron__tick={"schedule": "*/5 * * * *", "task": "echo"})
    job_id = await client.enqueue("echo", ["x"], job_id="timed", delay=1800)
    await client.update(job_id, retries=4)
    await _recorded(store, pg)
    await client.pause_task("echo")
    log = tmp_path / "runner.log"
    log.write_text(orjson.dumps(LOG_LINE).decode() + "\n")
    commands = [["jobs"], ["show", job_id], ["status"], ["cron"], ["logs", str(log)]]
    kolkata = {"TZ": "Asia/Kolkata"}
    for command in commands:
        utc = _runner(*command, config=config, env=kolkata)
        assert utc.returncode == 0, (command, utc.stderr)
        assert _times(utc.stdout), (command, utc.stdout)
        assert all(UTC_MS.fullmatch(t) for t in _times(utc.stdout)), (command, utc.stdout)
        local = _runner(*command, "--local", config=config, env=kolkata)
        assert local.returncode == 0, (command, local.stderr)
        assert _times(local.stdout), (command, local.stdout)
        assert all(KOLKATA_MS.fullmatch(t) for t in _times(local.stdout)), (command, local.stdout)
    assert "2026-12-07T03:42:27.528Z" in _runner("logs", str(log), config=config).stdout
    shifted = _runner("logs", str(log), "--local", config=config, env=kolkata).stdout
    assert "2026-12-07T09:12:27.528+05:30" in shifted
    for command in commands:
        both = _runner(*command, "--json", "--local", config=config)
        assert both.returncode == 2, (command, both)
        assert "runner: error: argument --local: not allowed with argument --json" in both.stderr


def _into_a_closed_pipe(args: Sequence[str], config: Path) -> tuple[int, str]:
    """Run the command with its standard output a pipe whose reader is already gone
    (as `| head` leaves it once it has read enough); its exit code and stderr."""
    with subprocess.Popen(
        [sys.executable, "-m", "runner", *args, "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")},
    ) as proc:  # fmt: skip
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # long before the interpreter has started and written anything
        stderr = proc.stderr.read()
        return proc.wait(timeout=30), stderr


async def test_a_closed_pipe_ends_every_command_quietly(
    client: Client,
    store: RedisStore,
    pg: PgStore,
    daemon_config: Callable[..., Path],
    tmp_path: Path,
) -> None:
    """A reader that stops early (`runner jobs | head`) ends the command quietly with
    exit 0, as `logs` always did: no "[Errno 32] Broken pipe", no "Exception ignored",
    whether the write fails during the command (a large output) or when the output is
    flushed at exit (a small one)."""
    config = daemon_config(cron__tick={"schedule": "*/5 * * * *", "task": "echo"})
    await client.enqueue("echo", ["y" * 50_000], job_id="big", delay=1800)
    for i in range(300):
        await client.enqueue("echo", [i], delay=1800)
    await _recorded(store, pg)
    log = tmp_path / "runner.log"
    log.write_text((orjson.dumps(LOG_LINE).decode() + "\n") * 2000)
    commands = [
        ["jobs", "--limit", "300"], ["jobs", "--json"], ["show", "big"],
        ["show", "big", "--full"], ["cron", "--json"], ["cron"], ["status", "--json"],
        ["status"], ["logs", str(log)], ["enqueue", "echo"],
    ]  # fmt: skip
    for command in commands:
        code, stderr = _into_a_closed_pipe(command, config)
        assert (code, stderr) == (0, ""), command
    piped = _through_head(["jobs", "--limit", "300"], config)
    assert (piped.returncode, piped.stderr) == (0, ""), piped
    assert piped.stdout.startswith("id ")


def _through_head(args: Sequence[str], config: Path) -> subprocess.CompletedProcess[str]:
    """`runner ARGS | head -n 1` in bash with pipefail: the pipeline fails if runner does."""
    command = shlex.join([sys.executable, "-m", "runner", *args, "--config", str(config)])
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"{command} | head -n 1"],
        capture_output=True, text=True, timeout=30, cwd=ROOT, check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")},
    )  # fmt: skip


async def test_show_says_what_an_update_changed(
    client: Client, store: RedisStore, pg: PgStore, daemon_config: Callable[..., Path]
) -> None:
    """The text history's row of an update names each changed field with its new value
    (arguments, keyword arguments, due time, retries, timeout), as `update --help`
    promises; the rows of other events do not repeat the job's arguments."""
    config = daemon_config()
    job_id = await client.enqueue("echo", ["before"], job_id="changed", delay=1800)
    done = cli(
        "update", job_id, "--args", '["after"]', "--kwargs", '{"k": 1}',
        "--at", "2030-01-01T09:00:00Z", "--retries", "5", "--timeout", "2m", config=config,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    await _recorded(store, pg)
    shown = cli("show", job_id, config=config)
    assert shown.returncode == 0, shown.stderr
    history = shown.stdout.split("history (Postgres):\n")[1].splitlines()
    assert len(history) == 2, shown.stdout
    created, updated = history
    assert "before" not in created, created
    for change in ('args ["after"]', 'kwargs {"k":1}', "due 2030-01-01T09:00:00.000Z",
                   "retries 5", "timeout 120 s"):  # fmt: skip
        assert change in updated, (change, updated)
    assert "changed " in updated and " client:" in updated, updated  # who asked


def _error_lines(stderr: str) -> list[str]:
    """The lines that start a message (argparse's usage lines and indented
    continuation lines aside)."""
    lines = stderr.splitlines()
    if lines and lines[0].startswith("usage: "):
        lines = [line for line in lines[1:] if not line.startswith(" ")]
    return [line for line in lines if line and not line.startswith(" ")]


async def test_every_error_line_starts_with_runner(
    client: Client, daemon_config: Callable[..., Path], tmp_path: Path
) -> None:
    """A refused request, an unknown id, an unknown task, a malformed argument, a bad
    config, an argparse error, a job not found: each error line on stderr starts with
    `runner:`, so it can be told apart from the output of the commands around it."""
    config = daemon_config()
    await client.enqueue("echo", ["x"], job_id="done", delay=1800)
    await client.cancel("done")
    bad = tmp_path / "bad.toml"
    bad.write_text("[pools]\ncpu = -1\n")
    calls: list[tuple[list[str], Path, int]] = [
        (["cancel", "done", "ghost"], config, 1),
        (["retry", "ghost"], config, 1),
        (["enqueue", "nope"], config, 2),
        (["enqueue", "echo", "--args", "[1,"], config, 2),
        (["show", "ghost"], config, 1),
        (["jobs", "--limit", "0"], config, 2),
        (["status"], bad, 1),
        (["check-config"], bad, 1),
    ]
    for args, path, code in calls:
        done = cli(*args, config=path)
        assert done.returncode == code, (args, done)
        lines = _error_lines(done.stderr)
        assert lines and all(line.startswith("runner: ") for line in lines), (args, done.stderr)


def test_pause_all_speaks_of_maintenance_mode(daemon_config: Callable[..., Path]) -> None:
    """`pause --all` and `resume --all` say that maintenance mode began and ended; their
    JSON says `all`, never the internal name of the maintenance entry (":all")."""
    config = daemon_config()
    on = cli("pause", "--all", "--json", config=config)
    assert on.returncode == 0, on.stderr
    assert ":all" not in on.stdout
    [result] = json.loads(on.stdout)
    assert result["all"] is True and result["task"] is None and result["changed"] is True
    assert "maintenance mode" in result["message"]
    off = cli("resume", "--all", config=config)
    assert off.returncode == 0, off.stderr
    assert off.stdout.startswith("maintenance mode ended"), off.stdout
    again = cli("resume", "--all", config=config)
    assert again.stdout == "maintenance mode was not on\n", again.stdout
