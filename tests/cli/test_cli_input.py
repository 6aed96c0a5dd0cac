"""Odd input on the command line: a clear message and the right exit code, never a
traceback, never a password; and odd but valid job ids that come back as they went in."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import orjson
import pytest

from runner.daemon.recorder import Recorder
from runner.jobs import NewJob
from runner.store.postgres.store import PgStore
from runner.store.redis.store import RedisStore
from tests.daemon.process import DaemonProcess, write_config

ROOT = Path(__file__).resolve().parents[2]
LATEST = "9999-12-31T23:59:59.999Z"


def runner(
    *args: str | bytes, config: Path, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m runner --config CONFIG ARGS` with only the RUNNER_* variables in `env`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")}
    return subprocess.run(
        [sys.executable, "-m", "runner", "--config", str(config), *args],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=60,
        env={**clean, **(env or {})},
        check=False,
        cwd=ROOT,
    )


def assert_fails(done: subprocess.CompletedProcess[str], code: int, message: str) -> None:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr


def test_enqueue_refuses_due_times_past_year_9999(daemon_config: Callable[..., Path]) -> None:
    """--in and --at past 9999-12-31T23:59:59.999Z (or not finite) exit 2 naming the
    option and the latest due time; the latest due time itself is accepted and shown."""
    config = daemon_config()
    for too_far in ("99999999d", "99999999999999999d"):
        done = runner("enqueue", "echo", "--in", too_far, config=config)
        assert_fails(done, 2, f"runner: --in: too far ahead: the latest due time is {LATEST}")
    done = runner("enqueue", "echo", "--in", "9" * 400 + "d", config=config)
    assert_fails(done, 2, "runner: --in: expected a finite duration")
    done = runner("enqueue", "echo", "--at", "9999-12-31T23:59:59.999500Z", config=config)
    assert_fails(done, 2, f"runner: --at: too far ahead: the latest due time is {LATEST}")
    done = runner("enqueue", "echo", "--at", LATEST, "--id", "last", config=config)
    assert done.returncode == 0, done.stderr
    shown = runner("show", "last", "--json", config=config)
    assert shown.returncode == 0, shown.stderr
    assert orjson.loads(shown.stdout)["due_at"] == LATEST


async def test_show_survives_a_due_time_no_datetime_can_hold(
    store: RedisStore, daemon_config: Callable[..., Path]
) -> None:
    """A job whose stored due time is past year 9999 (written by some other client) is
    shown with its raw millisecond value instead of a ValueError traceback."""
    due = 99_999_999 * 86_400_000
    await store.enqueue(NewJob("far", "echo", "async", "[]", "{}", due, 1), "other", 0)
    config = daemon_config()
    text = runner("show", "far", config=config)
    assert text.returncode == 0, text.stderr
    assert f"due at   {due} ms since the epoch (out of range)" in text.stdout
    as_json = runner("show", "far", "--json", config=config)
    assert as_json.returncode == 0, as_json.stderr
    assert orjson.loads(as_json.stdout)["due_at"] == f"{due} ms since the epoch (out of range)"


BROKEN = {
    "raises": ("x = 1\nraise RuntimeError('no GPU here')\n", "RuntimeError: no GPU here"),
    "syntax": (
        "x = 1\n\ndef f(:\n    pass\n",
        "SyntaxError: invalid syntax (syntax_cli.py, line 3)",
    ),
    "exits": ("import sys\nsys.exit(3)\n", "SystemExit: 3"),
}


@pytest.mark.parametrize("command", ["check-config", "run"])
@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_a_task_module_that_raises_at_import_fails_check_config_and_run(
    tmp_path: Path, command: str, kind: str
) -> None:
    """A target whose module raises (SyntaxError and SystemExit too) is reported under
    tasks.NAME.target with what it raised; exit 1, no traceback, for check-config and run."""
    source, raised = BROKEN[kind]
    (tmp_path / f"{kind}_cli.py").write_text(source)
    config = write_config(
        tmp_path / "runner.toml", {"tasks.broken": {"target": f"{kind}_cli:f", "kind": "io"}}
    )
    done = runner(command, config=config, env={"PYTHONPATH": str(tmp_path)})
    assert_fails(done, 1, f"tasks.broken.target: importing module '{kind}_cli' raised {raised}")


PASSWORD = "s3cr/et"  # '/' ends the host part of a URL unless written as %2F


@pytest.mark.parametrize("command", [("check-config",), ("enqueue", "echo")])
def test_a_password_with_unencoded_characters_is_never_printed(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    """URLs whose password holds '/', '?' or '#' unencoded, in the config file or in
    RUNNER_REDIS_URL / RUNNER_DATABASE_URL: exit 1 naming the key, the password never
    on stdout or stderr (a driver would print part of it as a port)."""
    redis_url = f"redis://user:{PASSWORD}@127.0.0.1:6379/0"
    pg_url = "postgresql://runner:s3cr?et#1@127.0.0.1:5432/runner"
    fine = {"tasks.echo": {"target": "tests.tasks:echo"}}
    cases = [
        ({"redis": {"url": redis_url}, **fine}, {}, "redis.url: cannot parse the URL"),
        ({"postgres": {"url": pg_url}, **fine}, {}, "postgres.url: cannot parse the URL"),
        (fine, {"RUNNER_REDIS_URL": redis_url}, "RUNNER_REDIS_URL: cannot parse the URL"),
        (fine, {"RUNNER_DATABASE_URL": pg_url}, "RUNNER_DATABASE_URL: cannot parse the URL"),
    ]
    for n, (sections, env, message) in enumerate(cases):
        config = write_config(tmp_path / f"c{n}.toml", sections)
        done = runner(*command, config=config, env=env)
        assert_fails(done, 1, message)
        assert "percent-encode special characters in the password" in done.stderr
        assert "s3cr" not in done.stdout + done.stderr, (done.stdout, done.stderr)


def test_a_daemon_waiting_for_redis_logs_its_url_without_the_password(
    daemon_config: Callable[..., Path], spawn: Callable[..., DaemonProcess], database_url: str
) -> None:
    """A password with an unencoded '@' parses (the host follows the last '@'), and the
    daemon's "waiting for redis" line hides all of it, not only the part before the '@'."""
    env = {
        "RUNNER_REDIS_URL": "redis://user:s3cr@et@127.0.0.1:1/0",  # nothing listens on port 1
        "RUNNER_DATABASE_URL": database_url,
    }
    daemon = spawn(daemon_config(), env)
    line = daemon.wait_for(lambda line: line.get("event") == "waiting for redis")
    daemon.stop()
    assert line["url"] == "redis://user:***@127.0.0.1:1/0"
    assert "s3cr" not in daemon.output() and "et@127" not in daemon.output()


ODD_IDS = [
    'say"hi"',
    "it's",
    "{braces}",
    "}{",
    "{runner}:job:x",
    "a\\b",
    "日本語-ü-😀",
    "%s%d%n",
    "-leading-dash",
    "*?[]",
    "x" * 200,
]


async def test_odd_job_ids_round_trip_through_enqueue_and_show(
    store: RedisStore, pg: PgStore, daemon_config: Callable[..., Path]
) -> None:
    """Quotes, braces (the key hash tag's characters), backslashes, format strings and
    non-ASCII letters: `runner enqueue --id` stores the id as given and `runner show`
    finds it, live from Redis and in the history recorded in Postgres."""
    config = daemon_config()
    await store.ensure_event_group()
    for job_id in ODD_IDS:
        done = runner(
            "enqueue", "echo", f"--id={job_id}", "--args", '["x"]', "--json", config=config
        )
        assert done.returncode == 0, (job_id, done.stderr)
        assert orjson.loads(done.stdout)["id"] == job_id
    recorder = Recorder(store, pg_store=pg, consumer="c", batch_events=100, flush_interval=0.05)
    await recorder.drain()
    for job_id in ODD_IDS:
        shown = runner("show", "--json", "--", job_id, config=config)  # "--": "-leading-dash"
        assert shown.returncode == 0, (job_id, shown.stderr)
        doc = orjson.loads(shown.stdout)
        assert (doc["id"], doc["task"], doc["args"]) == (job_id, "echo", ["x"])
        assert [h["to_state"] for h in doc["history"]] == ["scheduled"], (job_id, doc)
        text = runner("show", "--", job_id, config=config)
        assert text.stdout.startswith(f"job {job_id}  task echo\n"), (job_id, text.stdout)


def test_a_job_id_that_is_not_utf8_is_a_usage_error(daemon_config: Callable[..., Path]) -> None:
    """An --id with bytes that are not UTF-8 (a surrogate once decoded) or a control
    character exits 2 with the id rule, not a UnicodeEncodeError traceback."""
    config = daemon_config()
    for bad in (b"--id=bad\xff", "--id=esc\x1b[31m"):
        done = runner("enqueue", "echo", bad, config=config)
        assert_fails(done, 2, "job id must be 1-200 characters without spaces")
