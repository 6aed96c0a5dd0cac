"""[sources.NAME] in the config: the defaults, and every bad source refused by
check-config with the key at fault named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runner.config.checks import check_config
from runner.config.settings import parse_settings
from tests.daemon.process import cli, write_config

TASKS = {"tasks.echo": {"target": "tests.tasks:echo", "kind": "async"}}


def _check(tmp_path: Path, source: dict[str, Any]) -> list[str]:
    config = write_config(tmp_path / "runner.toml", {**TASKS, "sources.orders": source})
    settings, problems = check_config(config, {})
    assert settings is None or not problems
    return problems


def test_a_stream_source_gets_its_defaults() -> None:
    """A stream and a task are enough: runner's Redis, group "runner", the args/kwargs
    fields, a dead-letter stream named after the stream."""
    settings = parse_settings(
        {"tasks": {"echo": {"target": "tests.tasks:echo"}},
         "sources": {"orders": {"kind": "redis-stream", "stream": "orders", "task": "echo"}}},
        "x.toml", {},
    )  # fmt: skip
    source = settings.sources["orders"]
    assert (source.key, source.url, source.group, source.dead_letter) == (
        "orders", None, "runner", "orders:dead-letter",
    )  # fmt: skip
    assert (source.args_field, source.kwargs_field, source.id_field) == ("args", "kwargs", None)
    assert (source.claim_idle, source.batch, source.max_backlog) == (30.0, 500, None)


def test_a_kafka_source_reads_a_topic_from_its_brokers() -> None:
    """A topic and brokers are enough; the dead letters go to a stream named after the
    topic on runner's Redis."""
    settings = parse_settings(
        {"tasks": {"echo": {"target": "tests.tasks:echo"}},
         "sources": {"clicks": {"kind": "kafka", "topic": "clicks", "task": "echo",
                                "bootstrap": "k1:9092, k2:9092"}}},
        "x.toml", {},
    )  # fmt: skip
    source = settings.sources["clicks"]
    assert (source.key, source.bootstrap, source.url) == ("clicks", "k1:9092,k2:9092", None)
    assert (source.dead_letter, source.group, source.is_kafka) == (
        "clicks:dead-letter", "runner", True,
    )  # fmt: skip


def test_a_source_url_password_never_shows() -> None:
    """The source's own URL is redacted in the settings' repr."""
    settings = parse_settings(
        {"sources": {"s": {"kind": "redis-list", "list": "l", "task_field": "t",
                           "url": "redis://u:hunter22@host:6379/0"}}},
        "x.toml", {},
    )  # fmt: skip
    assert "hunter22" not in repr(settings.sources)


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ({"kind": "amqp", "stream": "s", "task": "echo"},
         "sources.orders.kind: must be one of redis-stream, redis-list, kafka; got 'amqp'"),
        ({"kind": "kafka", "stream": "s", "topic": "t", "bootstrap": "b:9092", "task": "echo"},
         "sources.orders.stream: a kafka source reads a topic"),
        ({"kind": "kafka", "topic": "t", "task": "echo"}, "sources.orders.bootstrap: missing"),
        ({"kind": "kafka", "topic": "t", "bootstrap": "nohost", "task": "echo"},
         "sources.orders.bootstrap: expected 'host:port' brokers"),
        ({"kind": "kafka", "topic": "t", "bootstrap": "b:9092", "url": "redis://x/0",
          "task": "echo"}, "sources.orders.url: a kafka source names its brokers"),
        ({"kind": "redis-stream", "stream": "s", "bootstrap": "b:9092", "task": "echo"},
         "sources.orders.bootstrap: only a kafka source has brokers"),
        ({"stream": "s", "task": "echo"}, "sources.orders.kind: missing"),
        ({"kind": "redis-stream", "task": "echo"}, "sources.orders.stream: missing"),
        ({"kind": "redis-list", "task": "echo"}, "sources.orders.list: missing"),
        ({"kind": "redis-list", "stream": "s", "list": "l", "task": "echo"},
         "sources.orders.stream: a redis-list source reads a list"),
        ({"kind": "redis-stream", "stream": "s", "task": "nope"},
         "sources.orders.task: unknown task 'nope' (declared: echo)"),
        ({"kind": "redis-stream", "stream": "s", "task": "echo", "claim_idle": "soon"},
         "sources.orders.claim_idle: expected a duration"),
        ({"kind": "redis-stream", "stream": "s", "task": "echo", "block": -1},
         "sources.orders.block: must be > 0"),
        ({"kind": "redis-stream", "stream": "s", "task": "echo", "max_message": "big"},
         "sources.orders.max_message: expected a size"),
        ({"kind": "redis-stream", "stream": "s", "task": "echo", "max_backlog": 0},
         "sources.orders.max_backlog: must be a whole number > 0"),
        ({"kind": "redis-stream", "stream": "s", "task": "echo", "batch": "many"},
         "sources.orders.batch: must be a whole number > 0"),
        ({"kind": "redis-stream", "stream": "s", "task": "echo", "colour": "red"},
         "sources.orders.colour: unknown key"),
        ({"kind": "redis-stream", "stream": "s", "task": "echo", "url": "http://x"},
         "sources.orders.url: must be a URL starting with redis://"),
        ({"kind": "redis-stream", "stream": "s", "task": "echo", "format": "text"},
         "sources.orders.format: only redis-list and kafka sources"),
        ({"kind": "redis-list", "list": "l", "format": "text"},
         "sources.orders.task: a text item names no task"),
        ({"kind": "redis-list", "list": "my list", "task": "echo"},
         "sources.orders.list: must have no spaces"),
        ({"kind": "redis-stream", "stream": "s", "task": "echo", "delay_field": "d",
          "due_field": "at"}, "sources.orders.due_field: give a delay_field or a due_field"),
    ],
)  # fmt: skip
def test_check_config_refuses_a_bad_source_naming_the_key(
    tmp_path: Path, source: dict[str, Any], problem: str
) -> None:
    """Each bad source is refused with its key path, and nothing else is reported."""
    problems = _check(tmp_path, source)
    assert any(p.startswith(problem) for p in problems), problems
    assert len(problems) == 1, problems


def test_the_check_config_command_names_the_source_key(tmp_path: Path) -> None:
    """`runner check-config` exits 1 and prints the source's key at fault."""
    config = write_config(
        tmp_path / "bad.toml",
        {**TASKS, "sources.orders": {"kind": "redis-stream", "stream": "s", "task": "nope"}},
    )
    done = cli("check-config", config=config)
    assert done.returncode == 1
    assert "sources.orders.task: unknown task 'nope'" in done.stderr
