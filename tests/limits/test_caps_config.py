"""`concurrency`, `concurrency_key`, `unique` and `unique_key` under [tasks.NAME]: read
as documented, and a bad value refused with the key named (check-config says the
same)."""

from __future__ import annotations

import re

import pytest

from runner.config.settings import parse_settings
from runner.errors import ConfigError

TASK = {"target": "tests.tasks:noop", "kind": "async"}


def _tasks(**fields: object) -> dict[str, object]:
    return {"tasks": {"pay": {**TASK, **fields}}}


def test_a_cap_and_its_key_are_read() -> None:
    settings = parse_settings(_tasks(concurrency=5, concurrency_key="kwargs.account"), "t", {})
    assert settings.tasks["pay"].concurrency == 5
    assert settings.tasks["pay"].concurrency_key == "kwargs.account"
    assert parse_settings(_tasks(), "t", {}).tasks["pay"].concurrency is None
    unique = parse_settings(_tasks(unique="10m", unique_key="args.0"), "t", {}).tasks["pay"]
    assert (unique.unique, unique.unique_key) == ("for:600000", "args.0")
    assert parse_settings(_tasks(unique="until_done"), "t", {}).tasks["pay"].unique == "until_done"


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"concurrency": 0}, "tasks.pay.concurrency"),
        ({"concurrency": "5"}, "tasks.pay.concurrency"),
        ({"concurrency": 5, "concurrency_key": "account"}, "must be 'kwargs.NAME' or 'args.INDEX'"),
        ({"concurrency": 5, "concurrency_key": "args.first"}, "args takes an index from 0"),
        ({"concurrency_key": "kwargs.account"}, "needs concurrency = N beside it"),
        ({"unique": "sometimes"}, "must be queued, running, until_done or a duration"),
        ({"unique": "0s"}, "must be a duration above 0"),
        ({"unique_key": "kwargs.account"}, "needs unique = ... beside it"),
        ({"unique": "queued", "unique_key": "account"}, "tasks.pay.unique_key"),
        ({"max_queued": 0}, "tasks.pay.max_queued: must be a whole number > 0"),
        ({"max_queued": "1000"}, "tasks.pay.max_queued"),
        ({"fair_key": "tenant"}, "tasks.pay.fair_key: must be 'kwargs.NAME' or 'args.INDEX'"),
    ],
)
def test_a_bad_cap_is_refused_with_its_key_named(fields: dict[str, object], said: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_settings(_tasks(**fields), "t", {})
    assert said in str(refused.value) and "tasks.pay." in str(refused.value)


def test_a_cron_schedule_must_give_its_tasks_keys() -> None:
    """Each tick's job needs the arguments its task's keys name: said at load, not at
    every tick."""
    data = {
        **_tasks(concurrency=1, concurrency_key="kwargs.account"),
        "cron": {"nightly": {"schedule": "0 3 * * *", "task": "pay", "kwargs": {"user": 1}}},
    }
    with pytest.raises(
        ConfigError,
        match=r"cron\.nightly: concurrency_key kwargs\.account: the job has no kwargs 'account'",
    ):
        parse_settings(data, "t", {})
    data["cron"]["nightly"]["kwargs"] = {"account": "a1"}  # type: ignore[index]
    assert parse_settings(data, "t", {}).cron["nightly"].task == "pay"


def test_a_queue_s_bound_is_read_and_a_bad_one_refused_with_its_key_named() -> None:
    data = {"queues": {"mail": {"max_queued": 500}}}
    assert parse_settings(data, "t", {}).queue_limits == {"mail": 500}
    for queues, said in (
        ({"mail": {"max_queued": 0}}, "queues.mail.max_queued: must be a whole number > 0"),
        ({"mail": {"max_waiting": 5}}, "queues.mail.max_waiting: unknown key"),
        ({"No Spaces": {"max_queued": 5}}, "queues.No Spaces: not a queue's name"),
    ):
        with pytest.raises(ConfigError, match=re.escape(said)):
            parse_settings({"queues": queues}, "t", {})
