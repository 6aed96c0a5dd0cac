"""Dead letters as an operator meets them: counted by `runner status` (text and JSON),
sent again by `runner notify replay`, with the CLI's exit codes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson

from runner.store import RedisStore
from tests.daemon.process import cli
from tests.notify.conftest import SECRET

SINK = {"url": "http://127.0.0.1:9/hook", "secret": SECRET}


async def dead_letters(store: RedisStore, *event_ids: str) -> None:
    sink = store.sink("app")
    await sink.ensure_group()
    await sink.dead_letter([
        {"event_id": e, "job_id": e.split(":")[0], "seq": e.split(":")[1],
         "body": orjson.dumps({"event_id": e}).decode(), "error": "HTTP 500", "tries": "9"}
        for e in event_ids
    ])  # fmt: skip


async def test_status_and_cli_replay(store: RedisStore, daemon_config: Callable[..., Path]) -> None:
    """Status shows each sink's dead letters; replay --event moves one to the replay
    stream (exit 0), an unknown event exits 1, an unknown sink 2, --all the rest."""
    config = daemon_config(notify__app=SINK)
    await dead_letters(store, "a:3", "b:3", "c:3")
    status = cli("status", "--json", config=config)
    (sink,) = orjson.loads(status.stdout)["webhooks"]
    assert (sink["name"], sink["dead"], sink["url"]) == ("app", 3, SINK["url"])
    text = cli("status", config=config).stdout
    assert "webhook      app -> http://127.0.0.1:9/hook" in text and "3 dead letters" in text
    one = cli("notify", "replay", "app", "--event", "b:3", "--json", config=config)
    assert one.returncode == 0 and orjson.loads(one.stdout)["replayed"] == 1
    missing = cli("notify", "replay", "app", "--event", "b:3", config=config)
    assert missing.returncode == 1 and "no dead letter for event 'b:3'" in missing.stderr
    unknown = cli("notify", "replay", "nope", "--all", config=config)
    assert unknown.returncode == 2 and "no webhook sink 'nope'" in unknown.stderr
    rest = cli("notify", "replay", "app", "--all", config=config)
    assert rest.returncode == 0 and "2 dead letter(s)" in rest.stdout
    summary = await store.sink("app").summary()
    assert (summary["dead"], summary["replaying"]) == (0, 3)
