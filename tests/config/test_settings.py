"""Settings: every problem reported at once, with its key path; URLs never leak passwords."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runner.config.settings import load_settings, parse_settings
from runner.errors import ConfigError
from runner.tasks import TaskRegistry

ROOT = Path(__file__).resolve().parents[2]


def test_valid_config_parses_durations_and_tasks() -> None:
    """Durations take units, tasks get their defaults, the env overrides the URLs."""
    settings = parse_settings(
        {
            "redis": {"url": "redis://localhost/0", "key_prefix": "p"},
            "daemon": {"lease_ttl": "45s", "shutdown_grace": "2m"},
            "recorder": {"flush_interval": "250ms"},
            "tasks": {"t": {"target": "tests.tasks:echo", "retries": 2, "backoff": "3s"}},
        },
        "x.toml",
        {"RUNNER_DATABASE_URL": "postgresql://u:secret@db/runner"},
    )
    assert (settings.lease_ttl, settings.shutdown_grace, settings.recorder_interval) == (
        45.0,
        120.0,
        0.25,
    )
    assert settings.database_url == "postgresql://u:secret@db/runner"
    task = settings.tasks["t"]
    assert (task.kind, task.retries, task.max_attempts, task.backoff) == ("async", 2, 3, 3.0)
    assert "secret" not in repr(settings)


def test_all_problems_are_reported_with_their_key_paths() -> None:
    """Unknown keys, bad values and missing targets are collected, not stopped at the first."""
    with pytest.raises(ConfigError) as caught:
        parse_settings(
            {
                "redis": {"url": "http://nope", "colour": "blue"},
                "pools": {"io": 0},
                "daemon": {"lease_ttl": "soon"},
                "tasks": {
                    "resize": {"target": "m:f", "timeout": -3, "kind": "gpu"},
                    "empty": {},
                },
                "extra": {},
            },
            "bad.toml",
            {},
        )
    problems = caught.value.problems
    expected = [
        "extra: unknown section",
        "redis.colour: unknown key",
        "redis.url: must be a URL starting with redis://",
        "pools.io: must be a whole number > 0, got 0",
        "daemon.lease_ttl: expected a duration",
        "tasks.resize.timeout: must be > 0, got -3",
        "tasks.resize.kind: must be one of async, io, cpu; got 'gpu'",
        "tasks.empty.target: missing",
    ]
    for fragment in expected:
        assert any(p.startswith(fragment) for p in problems), (fragment, problems)
    assert "bad.toml is invalid (8 problem(s))" in str(caught.value)


def test_password_in_a_bad_url_is_redacted() -> None:
    """Even a rejected URL is shown without its password."""
    with pytest.raises(ConfigError) as caught:
        parse_settings({"postgres": {"url": "mysql://u:hunter2@h/db"}}, "c", {})
    assert "hunter2" not in str(caught.value) and "u:***@h" in str(caught.value)


def test_missing_file_and_bad_toml_are_config_errors(tmp_path: Path) -> None:
    """A missing file and a syntax error both say which file and what to do."""
    with pytest.raises(ConfigError, match="file not found; pass --config"):
        load_settings(tmp_path / "nope.toml", {})
    bad = tmp_path / "bad.toml"
    bad.write_text("[redis\nurl = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad, {})


def test_task_targets_are_imported_and_kinds_checked() -> None:
    """A target that does not import, or an async def declared io, fails check-config."""
    settings = parse_settings(
        {
            "tasks": {
                "missing": {"target": "tests.no_such_module:f"},
                "typo": {"target": "tests.tasks:nope"},
                "wrong_kind": {"target": "tests.tasks:echo", "kind": "io"},
                "sync_as_async": {"target": "tests.tasks:sleep_io", "kind": "async"},
                "fine": {"target": "tests.tasks:sleep_io", "kind": "io"},
            }
        },
        "c.toml",
        {},
    )
    with pytest.raises(ConfigError) as caught:
        TaskRegistry.from_settings(settings)
    text = "\n".join(caught.value.problems)
    assert "tasks.missing.target: cannot import module 'tests.no_such_module'" in text
    assert "tasks.typo.target: module 'tests.tasks' has no attribute 'nope'" in text
    assert "tasks.wrong_kind.kind: kind is 'io' but the target is 'async def'" in text
    assert "tasks.sync_as_async.kind: kind is 'async' but the target is a plain function" in text
    assert "fine" not in text


def test_shipped_configs_are_valid() -> None:
    """The documented example and the dev config both pass check-config."""
    for name in ("runner.toml", "dev.toml"):
        settings = load_settings(ROOT / "config" / name, {})
        assert TaskRegistry.from_settings(settings).names()


@pytest.mark.parametrize(
    "password", ["s3cr/et", "s3cr?et", "s3cr#et", "12/s3cret", "s3cr@et/x", "/s3cret"]
)
def test_a_url_with_an_unencoded_password_is_refused_without_showing_it(password: str) -> None:
    """A password with '/', '?' or '#' (which end the host part) cannot be read as meant:
    the problem names the key, says to percent-encode, and never shows the password."""
    with pytest.raises(ConfigError) as caught:
        parse_settings(
            {
                "redis": {"url": f"redis://user:{password}@host:6379/0"},
                "postgres": {"url": f"postgresql://u:{password}@db:5432/runner"},
            },
            "c.toml",
            {},
        )
    assert caught.value.problems == [
        "redis.url: cannot parse the URL 'redis://user:***@host:6379/0': percent-encode "
        "special characters in the password (/ is %2F, @ is %40, ? is %3F, # is %23)",
        "postgres.url: cannot parse the URL 'postgresql://u:***@db:5432/runner': percent-encode "
        "special characters in the password (/ is %2F, @ is %40, ? is %3F, # is %23)",
    ]
    assert "s3cr" not in str(caught.value)


def test_urls_from_the_environment_are_checked_like_the_files() -> None:
    """RUNNER_REDIS_URL and RUNNER_DATABASE_URL used to bypass every check: now a bad
    scheme or an unencoded password is a problem named by the variable."""
    env = {
        "RUNNER_REDIS_URL": "redis://user:s3cr/et@host:6379/0",
        "RUNNER_DATABASE_URL": "mysql://u:s3cret@db/runner",
    }
    with pytest.raises(ConfigError) as caught:
        parse_settings({"redis": {"url": "redis://fine/0"}}, "c.toml", env)
    problems = caught.value.problems
    assert len(problems) == 2
    assert problems[0].startswith(
        "RUNNER_REDIS_URL: cannot parse the URL 'redis://user:***@host:6379/0': percent-encode"
    )
    assert problems[1].startswith("RUNNER_DATABASE_URL: must be a URL starting with postgresql://")
    assert "s3cr" not in str(caught.value)


def test_urls_that_parse_are_accepted_and_other_faults_are_named() -> None:
    """An '@' in a password parses (the host follows the last '@'), as do a unix socket
    and a Postgres URL without a host (libpq's local socket); a Redis URL without a
    host or with a port out of range is refused with what is wrong."""
    settings = parse_settings(
        {"redis": {"url": "unix://:pw@/run/redis.sock?db=1"}},
        "c.toml",
        {"RUNNER_DATABASE_URL": "postgresql:///runner?host=/run/postgresql"},
    )
    assert settings.redis_url == "unix://:pw@/run/redis.sock?db=1"
    at_sign = parse_settings({"redis": {"url": "redis://u:s3cr@et@h:1/0"}}, "c", {})
    assert at_sign.redis_url == "redis://u:s3cr@et@h:1/0" and "s3cr" not in repr(at_sign)
    for url, problem in [
        ("redis:///0", "no host; e.g. redis://localhost:6379/0"),
        ("redis://h:99999/0", "Port out of range 0-65535"),
    ]:
        with pytest.raises(ConfigError) as caught:
            parse_settings({"redis": {"url": url}}, "c", {})
        assert caught.value.problems == [f"redis.url: cannot parse the URL {url!r}: {problem}"]


def test_embedded_dir_is_the_checkouts_var_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dev config named by a relative path from elsewhere finds the checkout's var/,
    not a new empty folder (and new servers) under the working directory."""
    monkeypatch.chdir(tmp_path)
    relative = Path(os.path.relpath(ROOT / "config" / "dev.toml", tmp_path))
    settings = load_settings(relative, {})
    assert settings.embedded_dir == ROOT / "var"
    assert settings.source == str(relative)


def test_a_relative_embedded_dir_is_taken_from_the_config_files_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default and a relative dir sit next to the file, an absolute one is kept as it
    is, and a mapping parsed with no file keeps the working directory's."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    default = tmp_path / "etc" / "default.toml"
    default.write_text("")
    relative = tmp_path / "etc" / "relative.toml"
    relative.write_text('[embedded]\ndir = "data/servers"\n')
    absolute = tmp_path / "etc" / "absolute.toml"
    absolute.write_text('[embedded]\ndir = "/srv/runner-dev"\n')
    assert load_settings(Path("../etc/default.toml"), {}).embedded_dir == tmp_path / "etc/var"
    assert load_settings(relative, {}).embedded_dir == tmp_path / "etc/data/servers"
    assert load_settings(absolute, {}).embedded_dir == Path("/srv/runner-dev")
    no_file = parse_settings({"embedded": {"dir": "var"}}, "<test>", {})
    assert no_file.embedded_dir == Path("var")


def test_park_horizon_and_history_keep_take_a_duration_or_a_word() -> None:
    defaults = parse_settings({}, "t.toml", env={})
    assert (defaults.park_horizon, defaults.keep_history) == (3600.0, 30 * 86400.0)
    off = parse_settings(
        {"daemon": {"park_horizon": "off"}, "history": {"keep": "forever"}}, "t.toml", env={}
    )
    assert (off.park_horizon, off.keep_history) == (None, None)
    with pytest.raises(ConfigError) as caught:
        parse_settings(
            {"daemon": {"park_horizon": "0s"}, "history": {"keep": "soon"}}, "t.toml", env={}
        )
    assert caught.value.problems == [
        "daemon.park_horizon: must be > 0, got '0s'; or 'off'",
        "history.keep: expected a duration like '500ms', '3s', '5m', '2h', got 'soon'; "
        "or 'forever'",
    ]


def test_max_result_takes_a_size_and_reaches_the_task_registry() -> None:
    """[jobs] max_result (default 1MB, like max_payload) bounds a job's result; the
    daemon reads it from its task registry, which a reload builds anew."""
    assert parse_settings({}, "t.toml", env={}).max_result == 1_000_000
    settings = parse_settings(
        {
            "jobs": {"max_result": "2KB"},
            "tasks": {"t": {"target": "tests.tasks:echo"}},
        },
        "t.toml",
        env={},
    )
    assert settings.max_result == 2000
    assert TaskRegistry.from_settings(settings).max_result == 2000
    with pytest.raises(ConfigError) as caught:
        parse_settings({"jobs": {"max_result": "0KB"}}, "t.toml", env={})
    assert caught.value.problems == ["jobs.max_result: must be > 0 bytes, got '0KB'"]


def test_redis_cluster_is_a_boolean_and_needs_a_url_and_no_source_on_it() -> None:
    """[redis] cluster takes true or false, and wait_replicas a whole number >= 0;
    a cluster needs a URL (the embedded Valkey is one server), and a source whose
    keys would live on runner's cluster (a Redis source without a url of its own, a
    kafka source's dead letters) is refused until runner can place them there."""
    on = parse_settings(
        {"redis": {"url": "redis://h:7000/0", "cluster": True, "wait_replicas": 1}}, "t.toml", {}
    )
    assert (on.redis_cluster, on.wait_replicas) == (True, 1)
    assert (parse_settings({}, "t.toml", {}).redis_cluster, on.source) == (False, "t.toml")
    tasks = {"echo": {"target": "tests.tasks:echo"}}
    sources = {
        "own": {"kind": "redis-stream", "stream": "a", "task": "echo", "url": "redis://s:1/0"},
        "shared": {"kind": "redis-list", "list": "b", "task": "echo"},
        "clicks": {"kind": "kafka", "topic": "c", "task": "echo", "bootstrap": "k:9092"},
    }
    with pytest.raises(ConfigError) as caught:
        parse_settings({"redis": {"cluster": "yes", "wait_replicas": -1}}, "t.toml", {})
    assert caught.value.problems == [
        "redis.cluster: must be true or false, got 'yes'",
        "redis.wait_replicas: must be a whole number >= 0, got -1",
    ]
    with pytest.raises(ConfigError) as caught:
        parse_settings({"redis": {"cluster": True}, "tasks": tasks, "sources": sources},
                       "t.toml", {})  # fmt: skip
    assert caught.value.problems == [
        "redis.cluster: needs redis.url (or RUNNER_REDIS_URL) naming a node of the cluster; "
        "the embedded Valkey is a single server",
        "sources.clicks: a kafka source cannot run with redis.cluster = true yet (its "
        "dead-letter stream would be outside runner's slot)",
        "sources.shared.url: with redis.cluster = true a Redis source needs a url of its own "
        "(a single server): runner's cluster cannot hold its keys yet",
    ]


def test_queues_weights_and_priorities_are_checked_with_their_key_paths() -> None:
    """A task's queue and priority, a daemon's queues and weights, a schedule's queue:
    parsed, or refused naming the key and what is accepted."""
    tasks = {"t": {"target": "m:f", "queue": "reports", "priority": 3}}
    settings = parse_settings(
        {"tasks": tasks, "daemon": {"queues": {"default": 1, "reports": 3},
                                    "priority_aging": "2s"},
         "cron": {"c": {"schedule": "* * * * *", "task": "t", "queue": "night"}}},
        "c.toml", {},
    )  # fmt: skip
    assert (settings.tasks["t"].queue, settings.tasks["t"].priority) == ("reports", 3)
    assert settings.queues == {"default": 1, "reports": 3} and settings.priority_aging == 2.0
    assert settings.cron["c"].queue_of(settings.tasks) == "night"
    with pytest.raises(ConfigError) as bad:
        parse_settings(
            {"tasks": {"t": {"target": "m:f", "queue": "Big Q", "priority": 10}},
             "daemon": {"queues": {"ok": 0, "no/slash": 1}}},
            "c.toml", {},
        )  # fmt: skip
    text = str(bad.value)
    for key in ("tasks.t.queue", "tasks.t.priority", "daemon.queues"):
        assert key in text, (key, text)
    assert "1-48 characters" in text and "0 (the default) to 9" in text


@pytest.mark.parametrize(
    ("value", "lead"), [("auto", None), ("0ms", 0.0), ("2.5ms", 0.0025), ("5ms", 0.005)]
)
def test_the_lead_is_auto_or_at_most_five_milliseconds(value: str, lead: float | None) -> None:
    settings = parse_settings({"daemon": {"lead": value}}, "lead.toml", {})
    assert settings.lead == lead


@pytest.mark.parametrize("value", ["6ms", "1s", "-1ms", "soon"])
def test_a_lead_beyond_five_milliseconds_is_refused_by_name(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings({"daemon": {"lead": value}}, "lead.toml", {})
    assert any(p.startswith("daemon.lead: ") and "'auto'" in p for p in caught.value.problems)
