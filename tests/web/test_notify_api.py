"""`POST /api/notify/NAME/replay`: a webhook sink's dead letters sent again through
the API, with the same token rules as every change; the sinks in `/api/status`."""

from __future__ import annotations

from typing import Any

from runner.store import RedisStore
from tests.notify.conftest import sink_settings
from tests.notify.test_replay import SINK, dead_letters
from tests.web.conftest import AUTH, Serve


async def test_api_replay_follows_the_token_rules(store: RedisStore, serve: Serve) -> None:
    """The API replays one event or all, needs the token like every change, and
    answers 404 for an unknown sink or event, 400 for a body naming neither."""
    api = await serve(notify={"app": sink_settings(SINK["url"])})
    await dead_letters(store, "a:3", "b:3")
    path = "/api/notify/app/replay"
    assert (await api.post(path, json={"all": True})).status == 401
    one = await api.post(path, json={"event_id": "a:3"}, headers=AUTH)
    assert one.status == 200 and (await one.json())["replayed"] == 1
    answers: list[tuple[str, dict[str, Any], int]] = [
        (path, {"event_id": "a:3"}, 404),
        ("/api/notify/nope/replay", {"all": True}, 404),
        (path, {}, 400),
        (path, {"event_id": "b:3", "all": True}, 400),
    ]
    for where, body, status in answers:
        assert (await api.post(where, json=body, headers=AUTH)).status == status, body
    every = await api.post(path, json={"all": True}, headers=AUTH)
    assert (await every.json())["replayed"] == 1
    status = await (await api.get("/api/status", headers=AUTH)).json()
    assert status["webhooks"][0]["replaying"] == 2
