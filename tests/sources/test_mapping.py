"""A message -> a job or the reason it is none, against real settings (the test tasks)
and the client's own checks."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
import pytest

from runner.client.client import Client
from runner.config.sources import SourceSettings
from runner.sources.mapping import Rejected, to_job
from runner.store import SourceMessage

STREAM = SourceSettings(name="orders", kind="redis-stream", key="orders", dead_letter="dl")
LIST = replace(STREAM, kind="redis-list", key="mails")


def _entry(**fields: str) -> SourceMessage:
    return SourceMessage("1700000000000-0", fields)


def _item(value: Any, token: str = "ab12-7") -> SourceMessage:
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return SourceMessage(token, item=text, raw=f"{token}\n{text}".encode())


def test_a_stream_entry_names_its_task_and_arguments(client: Client) -> None:
    """task, args and kwargs fields make the job; its id is the stream's name and the
    entry's id, so a redelivery names the same job."""
    job = to_job(client, STREAM, _entry(task="echo", args="[1, 2]", kwargs='{"a": 1}'))
    assert (job.task, job.args_json, job.kwargs_json) == ("echo", "[1,2]", '{"a":1}')
    assert (job.id, job.chosen_id) == ("orders:1700000000000-0", True)


def test_a_fixed_task_id_field_and_delay(client: Client) -> None:
    """A fixed task needs no task field; the id field names the job; a delay field
    puts its due time that many seconds ahead."""
    source = replace(STREAM, task="noop", id_field="ref", delay_field="in")
    now = client.clock.now_ms()
    job = to_job(client, source, _entry(ref="order-7", **{"in": "30"}))
    assert (job.task, job.id, job.args_json) == ("noop", "order-7", "[]")
    assert now + 29_000 < job.due_at_ms < now + 32_000


def test_a_due_field_takes_rfc3339_or_ms(client: Client) -> None:
    """A due time field is RFC 3339 with an offset or ms since the epoch."""
    source = replace(STREAM, task="noop", due_field="at")
    assert to_job(client, source, _entry(at="2030-01-01T00:00:00Z")).due_at_ms == 1893456000000
    assert to_job(client, source, _entry(at="1893456000000")).due_at_ms == 1893456000000


def test_list_items_are_json_objects_or_text(client: Client) -> None:
    """A JSON item holds the fields as values (args an array, or its JSON text); a text
    item is the one argument of the fixed task; ids come from the list and token."""
    job = to_job(client, LIST, _item({"task": "echo", "args": [1], "kwargs": {"k": "v"}}))
    assert (job.task, job.args_json, job.kwargs_json, job.id) == (
        "echo", "[1]", '{"k":"v"}', "mails:ab12-7",
    )  # fmt: skip
    text = replace(LIST, format="text", task="echo")
    assert to_job(client, text, _item("hello there")).args_json == '["hello there"]'


@pytest.mark.parametrize(
    ("source", "message", "reason"),
    [
        (STREAM, _entry(args="[]"), "field 'task' missing"),
        (STREAM, _entry(task="rm_rf", args="[]"), "unknown task 'rm_rf'"),
        (STREAM, _entry(task="echo", args="{oops"), "field 'args': not JSON"),
        (STREAM, _entry(task="echo", args='{"a": 1}'), "field 'args': must be a JSON array"),
        (STREAM, _entry(task="echo", kwargs="[1]"), "field 'kwargs': must be a JSON object"),
        (replace(STREAM, max_message=50), _entry(task="echo", args="[" + "1," * 40 + "1]"),
         "too big:"),
        (replace(STREAM, id_field="ref"), _entry(task="echo", ref="has space"), "job id must be"),
        (replace(STREAM, delay_field="in"), _entry(task="echo", **{"in": "-3"}),
         "field 'in': must be a finite number >= 0"),
        (replace(STREAM, due_field="at"), _entry(task="echo", at="tomorrow"),
         "field 'at': not RFC 3339"),
        (LIST, _item("not json at all"), "not JSON"),
        (LIST, _item([1, 2]), "not a JSON object"),
        (LIST, _item({"task": 7}), "field 'task': must be a non-empty string"),
    ],
)  # fmt: skip
def test_a_bad_message_is_rejected_with_its_reason(
    client: Client, source: SourceSettings, message: SourceMessage, reason: str
) -> None:
    """Each kind of bad message is refused with a reason naming what is wrong."""
    with pytest.raises(Rejected) as caught:
        to_job(client, source, message)
    assert reason in str(caught.value)
