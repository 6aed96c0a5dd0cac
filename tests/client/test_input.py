"""Input that used to crash or mislead: due times, durations, task imports, URLs, job ids."""

from __future__ import annotations

import math
import random
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path

import pytest
from redis.asyncio import Redis

from runner.client.client import Client
from runner.config.durations import parse_duration
from runner.config.settings import Settings, TaskSettings
from runner.errors import ConfigError, UsageError
from runner.jobs import rfc3339
from runner.redact import redact_text, redact_url
from runner.store.job_rows import due_score
from runner.tasks import TaskRegistry, import_target

LATEST = "9999-12-31T23:59:59.999Z"
LATEST_MS = 253_402_300_799_999


class FakeClock:
    """A clock stopped at `now` seconds (any float, exactly as given)."""

    def __init__(self, now: float) -> None:
        self.at = now

    def now(self) -> float:
        return self.at

    def now_ms(self) -> int:
        return math.floor(Fraction(self.at) * 1000)


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    """A client that never connects: new_job() only validates and computes."""
    settings = Settings(tasks={"echo": TaskSettings("echo", "tests.tasks:echo", "async")})
    made = Client(settings, Redis(), clock=FakeClock(1_700_000_000.0004))
    yield made
    await made.redis.aclose()


# Durations and RFC 3339 times


@pytest.mark.parametrize(
    "bad", [math.inf, -math.inf, math.nan, "9" * 400 + "d", "1" + "0" * 330 + "s"]
)
def test_durations_must_be_finite(bad: object) -> None:
    """An infinite or NaN duration (a float, or digits too many for a float) is a
    ValueError that says a finite duration is wanted, not a value passed on."""
    with pytest.raises(ValueError, match="finite"):
        parse_duration(bad)


def test_rfc3339_shows_out_of_range_times_as_raw_milliseconds() -> None:
    """A stored time no datetime can hold (too far ahead or behind, or beyond what the
    platform converts) comes out as its raw ms value instead of raising."""
    assert rfc3339(LATEST_MS) == LATEST
    assert rfc3339(0) == "1970-01-01T00:00:00.000Z"
    assert rfc3339(None) is None
    for ms in (LATEST_MS + 1, 99_999_999 * 86_400_000, 10**30, -(10**15), -(10**40)):
        shown = rfc3339(ms)
        assert shown is not None and str(ms) in shown, (ms, shown)


# Due times


@pytest.mark.parametrize(
    "delay",
    [99_999_999 * 86_400.0, 99_999_999_999_999_999 * 86_400.0, 10**400, timedelta(days=3_000_000)],
)
def test_a_delay_past_year_9999_is_a_usage_error(client: Client, delay: float | timedelta) -> None:
    """A delay that lands after 9999-12-31T23:59:59.999Z is refused by name, with the
    latest due time accepted, instead of a job that `runner show` cannot display."""
    with pytest.raises(UsageError, match=rf"^delay: .*{LATEST}"):
        client.new_job("echo", delay=delay)


@pytest.mark.parametrize("delay", [math.inf, math.nan])
def test_a_delay_that_is_not_finite_is_a_usage_error(client: Client, delay: float) -> None:
    """inf and NaN are refused by name, not turned into an OverflowError or a NaN score."""
    with pytest.raises(UsageError, match=r"^delay: .*finite"):
        client.new_job("echo", delay=delay)


def test_the_longest_delay_is_accepted_and_the_message_names_it(client: Client) -> None:
    """The message gives the longest delay; that delay is accepted, one second more is not."""
    with pytest.raises(UsageError) as caught:
        client.new_job("echo", delay=10**12)
    longest = int(str(caught.value).split("at most ")[1].split(" s")[0])
    assert client.new_job("echo", delay=longest).due_at_ms <= LATEST_MS
    with pytest.raises(UsageError):
        client.new_job("echo", delay=longest + 1)


def test_at_past_year_9999_is_a_usage_error(client: Client) -> None:
    """The last whole millisecond of year 9999 is the latest `at`; anything later, even
    a fraction of a millisecond that would round up into year 10000, is refused."""
    assert client.new_job(
        "echo", at=datetime(9999, 12, 31, 23, 59, 59, 999_000, UTC)
    ).due_at_ms == (LATEST_MS)
    for at in (
        datetime(9999, 12, 31, 23, 59, 59, 999_001, UTC),
        datetime.max.replace(tzinfo=UTC),
    ):
        with pytest.raises(UsageError, match=rf"^at: .*{LATEST}"):
            client.new_job("echo", at=at)


def test_at_before_year_1_in_utc_is_a_usage_error(client: Client) -> None:
    """A time in year 1 with an offset east of UTC lies before what a datetime can show."""
    east = timezone(timedelta(hours=5))
    with pytest.raises(UsageError, match=r"^at: .*0001-01-01T00:00:00.000Z"):
        client.new_job("echo", at=datetime(1, 1, 1, 1, 0, tzinfo=east))


@pytest.mark.parametrize(
    ("at", "due_ms"),
    [
        (datetime(2030, 1, 1, 0, 0, 0, 1, UTC), 1_893_456_000_001),
        (datetime(2030, 1, 1, 0, 0, 0, 999, UTC), 1_893_456_000_001),
        (datetime(2030, 1, 1, 0, 0, 0, 1_000, UTC), 1_893_456_000_001),
        (datetime(2030, 1, 1, 0, 0, 0, 1_001, UTC), 1_893_456_000_002),
        (datetime(2030, 1, 1, 0, 0, 0, 0, UTC), 1_893_456_000_000),
        # A whole millisecond that float arithmetic (timestamp() * 1000) truncates to .107
        (datetime(2038, 3, 24, 12, 46, 25, 108_000, UTC), 2_153_047_585_108),
        (
            datetime(2030, 1, 1, 5, 30, 0, 1, timezone(timedelta(hours=5, minutes=30))),
            1_893_456_000_001,
        ),
        (datetime(1969, 12, 31, 23, 59, 59, 998_999, UTC), -1),
    ],
)
def test_at_is_rounded_up_to_the_next_whole_millisecond(
    client: Client, at: datetime, due_ms: int
) -> None:
    """A job never becomes due before the time asked for: microseconds round up to the
    next millisecond, a whole millisecond stays exactly as given."""
    assert client.new_job("echo", at=at).due_at_ms == due_ms


def test_a_delay_is_due_no_earlier_than_now_plus_delay(client: Client) -> None:
    """The due time counts from the clock's sub-millisecond now, rounded up: a 1.5 ms
    delay from .0004 s is due at ms 2, not at now_ms + 1 (0.9 ms early)."""
    now_ms = client.clock.now_ms()
    assert client.new_job("echo", delay=0.0015).due_at_ms == now_ms + 2
    assert client.new_job("echo", delay=timedelta(microseconds=1)).due_at_ms == now_ms + 1
    assert client.new_job("echo", delay=timedelta(milliseconds=5)).due_at_ms == now_ms + 6
    assert client.new_job("echo").due_at_ms == now_ms
    assert client.new_job("echo", delay=0).due_at_ms == now_ms


def test_a_delay_is_never_early_and_at_most_a_millisecond_late(client: Client) -> None:
    """For any clock reading and delay: now + delay <= due < now + delay + 1.001 ms."""
    rng = random.Random(7)
    for _ in range(20_000):
        clock = FakeClock(rng.uniform(1.6e9, 2.2e9))
        client.clock = clock
        delay = rng.choice([rng.uniform(0, 5), rng.randrange(1, 5000) / 1000])
        due_ms = client.new_job("echo", delay=delay).due_at_ms
        asked_ms = (Fraction(clock.now()) + Fraction(delay)) * 1000
        assert asked_ms <= due_ms < asked_ms + Fraction(1001, 1000), (clock.at, delay)


def test_the_due_set_keeps_the_microseconds_asked_for(client: Client) -> None:
    """The score is the due time to the microsecond, never below it; the hash's due_at
    (and every output) is the whole ms rounded up."""
    at = datetime(2030, 1, 1, 0, 0, 0, 123_457, UTC)
    job = client.new_job("echo", at=at)
    assert (job.due_at_us, job.due_at_ms) == (1_893_456_000_123_457, 1_893_456_000_124)
    assert due_score(job) * 1000 >= 1_893_456_000_123_457
    assert due_score(job) == pytest.approx(1_893_456_000_123.457, abs=0.0005)
    whole = client.new_job("echo", at=datetime(2030, 1, 1, 0, 0, 0, 123_000, UTC))
    assert due_score(whole) == 1_893_456_000_123 and isinstance(due_score(whole), int)
    rng = random.Random(3)
    for _ in range(20_000):
        micros = rng.randrange(1_600_000_000_000_000, 2_200_000_000_000_000)
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
        assert due_score(client.new_job("echo", at=moment)) * 1000 >= micros


# Task modules that fail at import


BROKEN_MODULES = {
    "raises_runtime": ("x = 1\nraise RuntimeError('no GPU here')\n", "RuntimeError: no GPU here"),
    "bad_syntax": (
        "x = 1\n\ndef f(:\n    pass\n",
        "SyntaxError: invalid syntax (bad_syntax_{tag}.py, line 3)",
    ),
    "calls_exit": ("import sys\nsys.exit(3)\n", "SystemExit: 3"),
    "missing_dep": ("import no_such_dependency_xyz\n", "No module named 'no_such_dependency_xyz'"),
}


def write_broken_modules(folder: Path, tag: str) -> dict[str, str]:
    """Each broken module under a name of its own (so no import is cached); name: expected."""
    expected = {}
    for stem, (source, message) in BROKEN_MODULES.items():
        name = f"{stem}_{tag}"
        (folder / f"{name}.py").write_text(source)
        expected[name] = message.format(tag=tag)
    return expected


def test_a_module_that_raises_at_import_is_a_clear_target_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any exception (SyntaxError and SystemExit included) while importing a target's
    module becomes the ValueError that names the module and what it raised."""
    monkeypatch.syspath_prepend(str(tmp_path))
    expected = write_broken_modules(tmp_path, "unit")
    for name, message in expected.items():
        with pytest.raises(ValueError, match="module") as caught:
            import_target(f"{name}:f")
        assert message in str(caught.value), (name, str(caught.value))
        assert name not in sys.modules


def test_check_config_names_the_task_whose_module_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry reports each broken module under tasks.NAME.target, all at once."""
    monkeypatch.syspath_prepend(str(tmp_path))
    expected = write_broken_modules(tmp_path, "registry")
    tasks = {n: TaskSettings(n, f"{n}:f", "async") for n in expected}
    with pytest.raises(ConfigError) as caught:
        TaskRegistry.from_settings(Settings(tasks=tasks, source="c.toml"))
    problems = caught.value.problems
    assert len(problems) == len(expected)
    syntax = next(p for p in problems if "bad_syntax" in p)
    assert syntax == (
        "tasks.bad_syntax_registry.target: importing module 'bad_syntax_registry' raised "
        "SyntaxError: invalid syntax (bad_syntax_registry.py, line 3)"
    )
    for name, message in expected.items():
        assert any(p.startswith(f"tasks.{name}.target: ") and message in p for p in problems)


# Redaction of passwords with characters that should have been percent-encoded


@pytest.mark.parametrize("char", ["/", "@", "?", "#", ":", "/@?#"])
def test_redaction_hides_the_whole_password_whatever_it_contains(char: str) -> None:
    """A password with an unencoded / @ ? or # is redacted whole: everything up to the
    last '@' before whitespace is the password."""
    secret = f"top{char}secret"
    for scheme in ("redis", "rediss", "postgresql", "unix"):
        url = f"{scheme}://user:{secret}@db.example:5432/x"
        assert redact_url(url) == f"{scheme}://user:***@db.example:5432/x"
        text = redact_text(f"cannot connect to {url} (refused); see https://example.com/a@b")
        assert "secret" not in text and "user:***@db.example:5432/x (refused)" in text


def test_a_url_alone_is_redacted_up_to_its_last_at_sign() -> None:
    """A URL on its own (a setting, a repr) hides everything to its last '@', even a
    password with an unencoded space; a URL without a password is left alone."""
    assert redact_url("redis://u:pa ss/x@h:1/0") == "redis://u:***@h:1/0"
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"
    assert redact_url("REDIS://u:p/w@h") == "REDIS://u:***@h"


def test_redaction_of_several_urls_in_one_text() -> None:
    """Two URLs in one message are each redacted, and text between them survives."""
    text = redact_text("redis://:p/1@r:6379 and postgresql://u:p@2@pg/db failed")
    assert text == "redis://:***@r:6379 and postgresql://u:***@pg/db failed"


# Job ids


@pytest.mark.parametrize(
    "job_id", ['say"hi"', "{braces}", "{x}:job:y", "日本語-ü-😀", "a\\b", "it's", "-x", "%s%n"]
)
def test_odd_but_printable_job_ids_are_accepted(client: Client, job_id: str) -> None:
    """Quotes, braces, backslashes and any Unicode letter or symbol are fine in an id."""
    assert client.new_job("echo", job_id=job_id).id == job_id


@pytest.mark.parametrize("job_id", ["nul\x00", "esc\x1b[31m", "del\x7f", "csi\x9b", "\udcff"])
def test_job_ids_with_control_characters_or_lone_surrogates_are_refused(
    client: Client, job_id: str
) -> None:
    """A control character (Postgres text cannot hold NUL; escapes garble a terminal) or
    a lone surrogate (not encodable as UTF-8) is a UsageError, not a lost history."""
    with pytest.raises(UsageError, match="job id must be"):
        client.new_job("echo", job_id=job_id)
