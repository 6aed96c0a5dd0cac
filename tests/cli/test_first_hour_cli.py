"""The command line and client in a first hour: payload limits, big payloads from a file
or a pipe, one time format, one not-found behaviour, help that answers, and errors
that say which config and which server."""

from __future__ import annotations

import asyncio
import os
import pty
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from redis.asyncio import Redis

from runner.cli.parser import build_parser
from runner.client.client import Client
from runner.errors import JobNotFound, PayloadError
from runner.store.redis.fields import stored
from runner.store.redis.keys import Keys
from tests.daemon.process import DaemonProcess, cli

RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)$")
ROOT = Path(__file__).resolve().parents[2]


async def test_payloads_over_the_limit_are_refused_at_enqueue(
    client: Client, daemon_config: Callable[..., Path], redis: Redis, keys: Keys
) -> None:
    """[jobs] max_payload bounds args plus kwargs as JSON: the client raises, the CLI
    exits 2 naming the size, the limit and the key; nothing reaches Redis."""
    small = Client(replace(client.settings, max_payload=1000), client.redis, client.pg)
    await small.enqueue("echo", ["x" * 900])
    with pytest.raises(PayloadError, match=r"1,0\d\d bytes as JSON, over the limit of 1,000"):
        await small.enqueue("echo", ["x" * 500], {"y": "é" * 250}, job_id="big")
    config = daemon_config(jobs={"max_payload": "1KB"})
    done = cli("enqueue", "echo", "--args", orjson.dumps(["x" * 2000]).decode(), "--id", "big",
               config=config)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "over the limit of 1,000" in done.stderr and "[jobs] max_payload" in done.stderr
    assert not await redis.exists(keys.job("big"))


async def test_args_from_a_file_or_stdin(
    daemon_config: Callable[..., Path], redis: Redis, keys: Keys, tmp_path: Path
) -> None:
    """--args @FILE and --args - take payloads too big for a command line."""
    config = daemon_config()
    payload = tmp_path / "args.json"
    payload.write_text(orjson.dumps(["from a file", "x" * 200_000]).decode())
    done = cli("enqueue", "echo", "--args", f"@{payload}", "--id", "f1", config=config)
    assert done.returncode == 0, done.stderr
    assert orjson.loads(await redis.hget(keys.job("f1"), stored("args")) or "")[0] == "from a file"
    piped = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "runner", "enqueue", "echo", "--kwargs", "-", "--id", "s1",
         "--config", str(config)],
        input='{"from": "stdin"}', capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    assert orjson.loads(await redis.hget(keys.job("s1"), stored("kwargs")) or "") == {
        "from": "stdin"
    }
    missing = cli("enqueue", "echo", "--args", "@/nonexistent.json", config=config)
    assert missing.returncode == 2 and "--args: cannot read '/nonexistent.json'" in missing.stderr
    both = cli("enqueue", "echo", "--args", "-", "--kwargs", "-", config=config)
    assert both.returncode == 2 and "cannot both read stdin" in both.stderr


async def test_show_cuts_large_payloads_short_unless_full(
    daemon_config: Callable[..., Path], client: Client
) -> None:
    """A person sees the start and the size; --full and --json give everything."""
    config = daemon_config()
    await client.enqueue("echo", ["y" * 50_000], job_id="large", delay=1800)
    text = cli("show", "large", config=config).stdout
    assert "50,004 bytes in all; --full shows everything" in text and len(text) < 3000
    assert "y" * 50_000 in cli("show", "large", "--full", config=config).stdout
    assert orjson.loads(cli("show", "large", "--json", config=config).stdout)["args"] == [
        "y" * 50_000
    ]


async def test_history_is_complete_after_wait_recorded_and_speaks_rfc3339(
    daemon_config: Callable[..., Path], spawn: Callable[..., DaemonProcess], client: Client
) -> None:
    """wait(recorded=True) returns once Postgres has the whole story; every time is
    RFC 3339 UTC with ms, the detail's due time included; an unknown id is not found
    by history() as by get()."""
    config = daemon_config(recorder={"flush_interval": "1s"})
    spawn(config).wait_ready()
    job_id = await client.enqueue("echo", ["hi"])
    await client.wait(job_id, timeout=20, recorded=True)
    history = await client.history(job_id)
    assert [h["to_state"] for h in history] == ["scheduled", "running", "succeeded"]
    assert all(RFC3339_MS.match(h["at"]) for h in history)
    assert RFC3339_MS.match(history[0]["detail"]["due_at"])
    shown = cli("show", job_id, config=config).stdout
    assert not re.search(r"\b1\d{12}\b", shown), shown  # no epoch milliseconds
    assert orjson.loads(cli("show", job_id, "--json", config=config).stdout)["history"] == history
    for read in (client.get, client.history):
        with pytest.raises(JobNotFound):
            await read("no-such-job")


def test_cron_shows_one_time_format(daemon_config: Callable[..., Path]) -> None:
    """Next fire times are RFC 3339 with ms, in the schedule's own offset."""
    config = daemon_config(
        cron__utc={"schedule": "*/5 * * * *", "task": "echo"},
        cron__paris={"schedule": "0 9 * * *", "task": "echo", "timezone": "Europe/Paris"},
    )
    done = cli("cron", "--json", config=config)
    assert done.returncode == 0, done.stderr
    docs = {d["name"]: d for d in orjson.loads(done.stdout)}
    assert all(RFC3339_MS.match(t) for d in docs.values() for t in d["next"])
    assert docs["utc"]["next"][0].endswith(":00.000Z")
    assert re.search(r"T09:00:00\.000\+0[12]:00$", docs["paris"]["next"][0])


def test_every_command_has_a_description_examples_and_exit_codes() -> None:
    """`runner CMD --help` says what the command does, shows it used, lists exit codes,
    and describes each argument."""
    parser = build_parser({})
    assert "exit codes:" in parser.format_help()
    for name in ("run", "check-config", "migrate", "enqueue", "show", "logs", "status", "cron"):
        done = subprocess.run(
            [sys.executable, "-m", "runner", name, "--help"],
            capture_output=True, text=True, check=False, cwd=ROOT,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "examples:" in done.stdout and "exit codes:" in done.stdout, name
        assert f"runner {name}" in done.stdout.split("examples:")[1], name
    enqueue = cli_help("enqueue")
    for words in ("a task declared under [tasks]", "@FILE", 'print {"id"'):
        assert words in enqueue
    assert "the id enqueue printed" in cli_help("show") and "JSON for scripts" in cli_help("status")


def cli_help(command: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "runner", command, "--help"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout  # fmt: skip


def test_a_server_that_cannot_be_reached_names_the_config_and_url(tmp_path: Path) -> None:
    """A forgotten --config must not leave the operator guessing: the message names
    the file read, how it was chosen, and the URL (password redacted) and its key."""
    config = tmp_path / "elsewhere.toml"
    config.write_text(
        '[redis]\nurl = "redis://:hunter2@127.0.0.1:1/0"\n'
        '[postgres]\nurl = "postgresql://u:pw@127.0.0.1:1/db"\n'
        '[tasks.echo]\ntarget = "tests.tasks:echo"\nkind = "async"\n'
    )
    done = cli("enqueue", "echo", config=config)
    assert done.returncode == 1
    assert "cannot reach a server" in done.stderr
    assert f"config: {config} (from --config)" in done.stderr
    assert "redis: redis://:***@127.0.0.1:1/0 (from [redis] url)" in done.stderr
    assert "hunter2" not in done.stderr


def test_check_config_lists_problems_of_every_kind_at_once(tmp_path: Path) -> None:
    """A structural error, an unimportable target and a bad schedule beside a bad time
    zone: all in one run."""
    config = tmp_path / "broken.toml"
    config.write_text(
        "[pools]\ncpu = 0\n"
        '[tasks.x]\ntarget = "no.such.module:f"\nkind = "async"\n'
        '[cron.c]\nschedule = "61 * * * *"\ntask = "x"\ntimezone = "Mars/Olympus"\n'
    )
    done = cli("check-config", config=config)
    assert done.returncode == 1
    for key in ("pools.cpu", "tasks.x.target", "cron.c.schedule", "cron.c.timezone"):
        assert key in done.stderr, (key, done.stderr)


def test_logs_on_a_terminal_says_what_it_reads(daemon_config: Callable[..., Path]) -> None:
    """With no [log] file and a terminal on stdin, `runner logs` says it reads stdin
    instead of waiting silently."""
    config = daemon_config()
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "runner", "logs", "--config", str(config)],
            stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        os.write(controller, b"\x04")  # Ctrl-D: the end of the input
        _, stderr = proc.communicate(timeout=20)
    finally:
        os.close(controller)
        os.close(terminal)
    assert proc.returncode == 0, stderr
    assert "reading JSON log lines from standard input" in stderr
