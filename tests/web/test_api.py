"""The JSON API against real Redis and Postgres: every route, every error status,
the token rules, and job data coming back as data."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime
from typing import Any

import orjson
from aiohttp.test_utils import TestClient

from runner.config.settings import Settings
from runner.errors import ConfigError
from tests.daemon.harness import drain
from tests.web.conftest import AUTH, TOKEN, Serve

Api = TestClient[Any, Any]


async def _enqueue(api: Api, **job: Any) -> dict[str, Any]:
    response = await api.post("/api/jobs", json={"task": "echo", **job}, headers=AUTH)
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def test_enqueue_returns_201_with_the_id_and_show_returns_the_document(api: Api) -> None:
    """POST /api/jobs creates the job; GET /api/jobs/{id} is `runner show --json`."""
    created = await _enqueue(api, args=[1], kwargs={"k": "v"}, delay=60, id="web-1")
    assert created == {"id": "web-1", "created": True, "state": "scheduled"}
    again = await api.post("/api/jobs", json={"task": "echo", "id": "web-1"}, headers=AUTH)
    assert again.status == 200
    assert await again.json() == {"id": "web-1", "created": False, "state": "scheduled"}
    shown = await (await api.get("/api/jobs/web-1")).json()
    assert shown["task"] == "echo" and shown["state"] == "scheduled"
    assert shown["args"] == [1] and shown["kwargs"] == {"k": "v"}
    assert shown["due_at"].endswith("Z") and "history" in shown


async def test_enqueue_names_a_queue_and_a_priority_and_update_changes_it(api: Api) -> None:
    """The API speaks queues as the CLI does: `queue` and `priority` on enqueue,
    `priority` on update, `?queue=` on the listing; a bad one is 400 with why."""
    created = await _enqueue(api, queue="mail", priority=3, delay=60)
    path = f"/api/jobs/{created['id']}"
    shown = await (await api.get(path)).json()
    assert (shown["queue"], shown["priority"]) == ("mail", 3)
    updated = await api.patch(path, json={"priority": 8}, headers=AUTH)
    assert updated.status == 200, await updated.text()
    assert (await (await api.get(path)).json())["priority"] == 8
    bad = await api.post("/api/jobs", json={"task": "echo", "queue": "No Spaces"}, headers=AUTH)
    assert bad.status == 400 and "queue" in (await bad.json())["error"]
    worse = await api.post("/api/jobs", json={"task": "echo", "priority": 10}, headers=AUTH)
    assert worse.status == 400 and "priority" in (await worse.json())["error"]


async def test_enqueue_at_an_rfc3339_time(api: Api) -> None:
    """`at` takes an RFC 3339 time with its offset; the due time is that instant."""
    created = await _enqueue(api, at="2030-01-01T09:00:00+02:00")
    shown = await (await api.get(f"/api/jobs/{created['id']}")).json()
    assert shown["due_at"] == "2030-01-01T07:00:00.000Z"


async def test_batch_enqueue_creates_every_job(api: Api) -> None:
    """POST /api/jobs/batch enqueues all jobs in one request, one result each."""
    jobs = [{"task": "echo", "args": [i], "delay": 60} for i in range(3)]
    response = await api.post("/api/jobs/batch", json={"jobs": jobs}, headers=AUTH)
    assert response.status == 201
    results = (await response.json())["jobs"]
    assert [r["created"] for r in results] == [True] * 3
    assert len({r["id"] for r in results}) == 3


async def test_bad_input_is_400_with_the_reason(api: Api) -> None:
    """Malformed JSON, a wrong type, an unknown field or a bad filter: 400 and why."""
    cases: list[tuple[str, str, bytes, str]] = [
        ("POST", "/api/jobs", b'{"task": "echo",', "not valid JSON"),
        ("POST", "/api/jobs", b"", "empty"),
        ("POST", "/api/jobs", b"[1]", "must be a JSON object"),
        ("POST", "/api/jobs", b'{"task": "echo", "args": {"a": 1}}', "args must be a list"),
        ("POST", "/api/jobs", b'{"task": "echo", "dely": 5}', "unknown field(s) 'dely'"),
        ("POST", "/api/jobs", b'{"task": "echo", "delay": -1}', "delay must be >= 0"),
        ("POST", "/api/jobs", b'{"task": "echo", "at": "2030-01-01T09:00"}', "UTC offset"),
        ("POST", "/api/jobs", b'{"task": "echo", "id": "cron:x"}', "reserved"),
        ("POST", "/api/jobs/batch", b'{"jobs": []}', "one or more jobs"),
        ("POST", "/api/jobs/batch", b'{"jobs": [{"task": "echo", "args": 1}]}', "jobs[0]"),
        ("PATCH", "/api/jobs/x", b"{}", "nothing to update"),
        ("PATCH", "/api/jobs/x", b'{"retries": -1}', "retries must be"),
        ("GET", "/api/jobs?state=sleeping", b"", "state: must be one of"),
        ("GET", "/api/jobs?limit=many", b"", "limit: not a whole number"),
        ("GET", "/api/jobs?since=yesterday", b"", "since: give a duration"),
        ("GET", "/api/jobs?after=garbage", b"", "cursor"),
        ("GET", "/api/jobs?colour=red", b"", "unknown parameter(s) 'colour'"),
        ("GET", "/api/throughput?minutes=0", b"", "minutes: must be from 1"),
    ]
    for method, path, body, reason in cases:
        response = await api.request(method, path, data=body, headers=AUTH)
        doc = await response.json()
        assert response.status == 400, (path, body, doc)
        assert reason in doc["error"], (path, body, doc)


async def test_unknown_task_is_422(api: Api) -> None:
    """An unknown task in a job, single or in a batch: 422 naming the known ones."""
    for path, body in (
        ("/api/jobs", {"task": "nope"}),
        ("/api/jobs/batch", {"jobs": [{"task": "echo"}, {"task": "nope"}]}),
    ):
        response = await api.post(path, json=body, headers=AUTH)
        assert response.status == 422, await response.text()
        error = (await response.json())["error"]
        assert "unknown task 'nope'" in error and "echo" in error


async def test_batch_with_an_unknown_task_enqueues_nothing(api: Api, settings: Settings) -> None:
    """Every job of a batch is checked before any is enqueued."""
    response = await api.post(
        "/api/jobs/batch",
        json={"jobs": [{"task": "echo", "id": "first"}, {"task": "nope"}]},
        headers=AUTH,
    )
    assert response.status == 422
    assert (await response.json())["error"].startswith("jobs[1]: unknown task 'nope'")
    assert (await api.get("/api/jobs/first")).status == 404


async def test_unknown_job_is_404(api: Api) -> None:
    """GET, PATCH, DELETE and actions on an id no job has: 404."""
    assert (await api.get("/api/jobs/ghost")).status == 404
    for method, path, body in (
        ("POST", "/api/jobs/ghost/cancel", None),
        ("POST", "/api/jobs/ghost/pause", None),
        ("DELETE", "/api/jobs/ghost", None),
        ("PATCH", "/api/jobs/ghost", {"delay": 5}),
    ):
        response = await api.request(method, path, json=body, headers=AUTH)
        doc = await response.json()
        assert response.status == 404, doc
        assert doc["error"] == "no such job 'ghost'" and doc["ok"] is False


async def test_requests_apply_and_refusals_are_409_with_the_state(api: Api) -> None:
    """pause, resume, update, cancel, retry, delete: 200 and the state when the table
    allows it; 409 with the current state and the CLI's sentence when it does not."""
    job = (await _enqueue(api, delay=600))["id"]

    async def act(method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        response = await api.request(method, path, json=body, headers=AUTH)
        return response.status, await response.json()

    assert await act("POST", f"/api/jobs/{job}/pause") == (
        200,
        {"job_id": job, "action": "pause", "ok": True, "state": "paused",
         "message": f"pause: job {job} is paused"},
    )  # fmt: skip
    assert (await act("POST", f"/api/jobs/{job}/resume"))[1]["state"] == "scheduled"
    status, doc = await act("PATCH", f"/api/jobs/{job}", {"args": ["new"], "retries": 2})
    assert status == 200 and doc["ok"]
    assert (await (await api.get(f"/api/jobs/{job}")).json())["args"] == ["new"]
    status, doc = await act("POST", f"/api/jobs/{job}/retry")
    assert status == 409 and doc["state"] == "scheduled"
    assert (await act("POST", f"/api/jobs/{job}/cancel"))[1]["state"] == "cancelled"
    status, doc = await act("POST", f"/api/jobs/{job}/cancel")
    assert status == 409 and doc["state"] == "cancelled"
    assert doc["error"].startswith(f"cannot cancel job {job}: it is cancelled")
    assert (await act("POST", f"/api/jobs/{job}/retry"))[1]["state"] == "scheduled"
    status, doc = await act("DELETE", f"/api/jobs/{job}")
    assert status == 200 and doc["state"] == "deleted"
    for method, path in (("DELETE", f"/api/jobs/{job}"), ("POST", f"/api/jobs/{job}/retry")):
        status, doc = await act(method, path)  # a deleted job is gone: 410, and says so
        assert (status, doc["state"]) == (410, "deleted"), doc
        assert doc["error"].endswith(f"job {job}: it was deleted")


async def test_list_status_and_throughput_after_jobs_ran(api: Api, settings: Settings) -> None:
    """GET /api/jobs pages with the CLI's filters and cursor; /api/status counts per
    state; /api/throughput has this minute's finished jobs and lateness."""
    for i in range(3):
        await _enqueue(api, args=[i])
    await drain(settings)
    first = await (await api.get("/api/jobs?state=succeeded&task=echo&limit=2&since=1h")).json()
    assert len(first["jobs"]) == 2 and first["next_cursor"]
    assert {job["state"] for job in first["jobs"]} == {"succeeded"}
    rest = await (await api.get(f"/api/jobs?limit=2&after={first['next_cursor']}")).json()
    assert len(rest["jobs"]) == 1 and rest["next_cursor"] is None
    shown = await (await api.get(f"/api/jobs/{rest['jobs'][0]['id']}")).json()
    assert [h["to_state"] for h in shown["history"]] == ["scheduled", "running", "succeeded"]

    status = await (await api.get("/api/status")).json()
    assert status["states"] == {"succeeded": 3} and status["tasks"] == {"echo": {"succeeded": 3}}
    assert {"due", "daemons", "running", "maintenance"} <= set(status)
    assert status["configured_tasks"] == sorted(settings.tasks)  # with jobs or not

    buckets = (await (await api.get("/api/throughput?minutes=5")).json())["buckets"]
    assert len(buckets) == 5
    assert sum(b["succeeded"] for b in buckets) == 3
    assert any(b["lateness_p50_ms"] is not None for b in buckets)
    assert set(buckets[0]) == {"at", "succeeded", "failed", "lateness_p50_ms", "lateness_p99_ms"}


async def test_task_pause_and_maintenance(api: Api) -> None:
    """Pausing a task or everything says whether anything changed; status shows it."""
    response = await api.post("/api/tasks/echo/pause", headers=AUTH)
    assert await response.json() == {"task": "echo", "changed": True}
    assert await (await api.post("/api/tasks/echo/pause", headers=AUTH)).json() == {
        "task": "echo", "changed": False,
    }  # fmt: skip
    assert "echo" in (await (await api.get("/api/status")).json())["paused_tasks"]
    resumed = await (await api.post("/api/tasks/echo/resume", headers=AUTH)).json()
    assert resumed == {"task": "echo", "changed": True}
    on = await (await api.post("/api/maintenance", headers=AUTH)).json()
    assert on == {"task": None, "all": True, "changed": True}  # as pause --all --json says
    assert (await (await api.get("/api/status")).json())["maintenance"] is True
    off = await (await api.delete("/api/maintenance", headers=AUTH)).json()
    assert off == {"task": None, "all": True, "changed": True}


async def test_pausing_or_resuming_an_unknown_task_is_404(serve: Serve, settings: Settings) -> None:
    """/api/tasks/{task}/pause and /resume name a resource: a task the config does not
    declare is a 404 naming the declared ones, and nothing is paused. A task paused
    before the config dropped it can still be resumed, so its held jobs are let go."""
    api = await serve()
    for action in ("pause", "resume"):
        response = await api.post(f"/api/tasks/nope/{action}", headers=AUTH)
        error = (await response.json())["error"]
        assert response.status == 404, (action, error)
        assert error.startswith("no such task 'nope'") and "echo" in error, error
    assert "nope" not in (await (await api.get("/api/status")).json())["paused_tasks"]

    gone = replace(settings.tasks["echo"], name="gone")
    before = await serve(tasks={**settings.tasks, "gone": gone})
    assert (await before.post("/api/tasks/gone/pause", headers=AUTH)).status == 200
    response = await api.post("/api/tasks/gone/resume", headers=AUTH)
    assert response.status == 200 and (await response.json())["changed"] is True
    response = await api.post("/api/tasks/gone/pause", headers=AUTH)
    assert response.status == 404


async def test_cron_lists_the_schedules(serve: Serve, settings: Settings) -> None:
    """GET /api/cron is `runner cron --json`."""
    from runner.config.cron import CronSettings  # noqa: PLC0415

    cron = {"tick": CronSettings(name="tick", schedule="*/5 * * * *", task="echo")}
    api = await serve(cron=cron)
    [doc] = await (await api.get("/api/cron")).json()
    assert doc["name"] == "tick" and doc["task"] == "echo" and len(doc["next"]) == 3
    assert doc["last"] is None


async def test_token_rules_on_loopback(api: Api) -> None:
    """Changes need the token (401 without, 403 wrong); reads on loopback do not, but a
    wrong token sent with a read is still refused."""
    body = {"task": "echo"}
    response = await api.post("/api/jobs", json=body)
    assert response.status == 401 and "Authorization: Bearer" in (await response.json())["error"]
    wrong = {"Authorization": "Bearer " + "x" * len(TOKEN)}
    response = await api.post("/api/jobs", json=body, headers=wrong)
    assert response.status == 403 and (await response.json())["error"] == "wrong token"
    basic = {"Authorization": "Basic dXNlcjpwYXNz"}
    assert (await api.post("/api/jobs", json=body, headers=basic)).status == 401
    for method, path in (("DELETE", "/api/jobs/x"), ("PATCH", "/api/jobs/x"),
                         ("POST", "/api/maintenance"), ("POST", "/api/jobs/x/cancel")):  # fmt: skip
        assert (await api.request(method, path, json={})).status == 401, path
    assert (await api.get("/api/status")).status == 200
    assert (await api.get("/api/status", headers=wrong)).status == 403


async def test_a_loopback_server_answers_only_loopback_names(api: Api) -> None:
    """Reads on loopback need no token, so another site's name pointed at 127.0.0.1
    (DNS rebinding) must get nothing: only localhost, 127.0.0.1 and [::1] are served."""
    for host in ("localhost:8080", "127.0.0.1", "[::1]:8080"):
        assert (await api.get("/api/status", headers={"Host": host})).status == 200, host
    for host in ("evil.example", "evil.example:8080", "127.0.0.1.evil.example"):
        response = await api.get("/api/status", headers={"Host": host})
        assert response.status == 403, host
        assert "answers only for localhost" in (await response.json())["error"]
    assert (await api.get("/", headers={"Host": "evil.example"})).status == 403


async def test_reads_need_the_token_beyond_loopback(serve: Serve) -> None:
    """An app listening on a network address refuses reads without the token."""
    api = await serve(web_listen="0.0.0.0:8080")
    response = await api.get("/api/status")
    assert response.status == 401
    assert (await api.get("/api/jobs")).status == 401
    assert (await api.get("/api/status", headers=AUTH)).status == 200


async def test_no_token_configured_refuses_every_change(serve: Serve) -> None:
    """With no [web] token, changes are 403 with a message to set one; reads work."""
    api = await serve(web_token=None)
    for headers in ({}, AUTH):
        response = await api.post("/api/jobs", json={"task": "echo"}, headers=headers)
        assert response.status == 403
        assert "set [web] token" in (await response.json())["error"]
    assert (await api.get("/api/status")).status == 200


async def test_job_data_comes_back_as_escaped_json(api: Api) -> None:
    """A <script> in a job's args is data: the JSON escapes <, > and &, so no page or
    browser can read it as markup, and it decodes to exactly what was sent."""
    payload = ["<script>alert('x')</script>", {"a&b": "</textarea>"}]
    job = (await _enqueue(api, args=payload, delay=60))["id"]
    response = await api.get(f"/api/jobs/{job}")
    raw = await response.read()
    assert response.content_type == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert b"<" not in raw and b">" not in raw and b"&" not in raw
    assert b"\\u003cscript\\u003e" in raw
    assert orjson.loads(raw)["args"] == payload


async def test_no_secret_is_rendered(api: Api, settings: Settings) -> None:
    """Neither the token nor a server URL appears in any read."""
    for path in ("/api/status", "/api/cron", "/api/jobs", "/api/throughput"):
        raw = (await (await api.get(path)).read()).decode()
        assert TOKEN not in raw, path
        assert str(settings.database_url) not in raw and str(settings.redis_url) not in raw


async def test_unknown_routes_and_methods_answer_json(api: Api) -> None:
    """aiohttp's own 404 and 405 come back as JSON errors too."""
    response = await api.get("/api/nothing-here")
    assert response.status == 404 and "error" in await response.json()
    response = await api.put("/api/status", headers=AUTH)
    assert response.status == 405 and "error" in await response.json()


async def test_an_unreachable_store_is_503(serve: Serve) -> None:
    """A Redis that cannot be reached: 503 with the CLI's "cannot reach a server"."""
    api = await serve(redis_url="redis://127.0.0.1:9/0")
    response = await api.get("/api/jobs/any")
    assert response.status == 503
    assert (await response.json())["error"].startswith("cannot reach a server: redis")


async def test_a_short_token_is_refused_however_the_settings_were_built(serve: Serve) -> None:
    """Settings built in code (not read from a file) cannot slip a short token past
    the 16-character rule: the app refuses to be built, naming the key."""
    try:
        await serve(web_token="short")
    except ConfigError as exc:
        assert "web.token (or RUNNER_WEB_TOKEN): must be a string of at least 16" in str(exc)
    else:
        raise AssertionError("an app with a 5-character token was built")


def _seconds_ahead(rfc3339: str, since: float) -> float:
    return datetime.fromisoformat(rfc3339).timestamp() - since


async def test_durations_are_numbers_or_the_configs_strings(api: Api) -> None:
    """delay (enqueue, batch, PATCH) and timeout (PATCH) take seconds as a number or
    a duration as the config and the CLI write it ("30s", "2m", "250ms"); anything
    else is a 400 that names the field and shows what is accepted."""
    before = time.time()
    for delay, seconds in ((90, 90), ("30s", 30), ("2m", 120), ("5m", 300), ("250ms", 0.25)):
        job = (await _enqueue(api, delay=delay))["id"]
        due = (await (await api.get(f"/api/jobs/{job}")).json())["due_at"]
        ahead = _seconds_ahead(due, before)
        assert seconds - 1 <= ahead <= seconds + 60, (delay, due)
    response = await api.post(
        "/api/jobs/batch", json={"jobs": [{"task": "echo", "delay": "5m"}]}, headers=AUTH
    )
    [created] = (await response.json())["jobs"]
    due = (await (await api.get(f"/api/jobs/{created['id']}")).json())["due_at"]
    assert 299 <= _seconds_ahead(due, before) <= 360

    job = (await _enqueue(api, delay=60))["id"]
    response = await api.patch(f"/api/jobs/{job}", json={"delay": "30m", "timeout": "2m"},
                               headers=AUTH)  # fmt: skip
    assert response.status == 200, await response.text()
    shown = await (await api.get(f"/api/jobs/{job}")).json()
    assert 1799 <= _seconds_ahead(shown["due_at"], before) <= 1860, shown
    assert float(shown["extra"]["timeout"]) == 120.0

    for method, path, body, field in (
        ("POST", "/api/jobs", {"task": "echo", "delay": "soon"}, "delay"),
        ("POST", "/api/jobs", {"task": "echo", "delay": "-5s"}, "delay"),
        ("POST", "/api/jobs/batch", {"jobs": [{"task": "echo", "delay": "1y"}]}, "delay"),
        ("PATCH", f"/api/jobs/{job}", {"timeout": "forever"}, "timeout"),
        ("PATCH", f"/api/jobs/{job}", {"delay": True}, "delay"),
    ):
        response = await api.request(method, path, json=body, headers=AUTH)
        error = (await response.json())["error"]
        assert response.status == 400, (body, error)
        assert field in error and "'30s'" in error, (body, error)


async def test_errors_never_name_the_clis_flags(api: Api) -> None:
    """The API's own words: a bad cursor, filter or due time names the parameter or
    field as the API spells it, never a command-line flag such as --after."""
    for path in ("/api/jobs?after=garbage", "/api/jobs?after=Zm9vOmJhcg",
                 "/api/jobs?since=yesterday", "/api/jobs?until=never",
                 "/api/jobs?limit=0", "/api/jobs?state=sleeping"):  # fmt: skip
        response = await api.get(path)
        error = (await response.json())["error"]
        assert response.status == 400, (path, error)
        assert "--" not in error, (path, error)
        assert path.split("?")[1].split("=")[0] in error, (path, error)
    response = await api.get("/api/jobs?after=garbage")
    assert "next_cursor" in (await response.json())["error"]
    response = await api.post(
        "/api/jobs", json={"task": "echo", "delay": 5, "at": "2030-01-01T00:00:00Z"}, headers=AUTH
    )
    error = (await response.json())["error"]
    assert response.status == 400 and "--" not in error and "delay" in error and "at" in error


async def test_an_unknown_api_route_lists_the_routes(api: Api) -> None:
    """A 404 under /api lists every route there is, with its methods; a wrong method
    on a route that exists says which methods it takes."""
    response = await api.get("/api/jbos")
    error = (await response.json())["error"]
    assert response.status == 404
    assert "GET /api/jbos" in error
    for route in ("POST /api/jobs", "GET /api/jobs/{job_id}", "PATCH /api/jobs/{job_id}",
                  "POST /api/tasks/{task}/pause", "GET /api/status", "GET /api/cron",
                  "GET /api/throughput", "DELETE /api/maintenance"):  # fmt: skip
        assert route in error, (route, error)
    response = await api.put("/api/status", headers=AUTH)
    error = (await response.json())["error"]
    assert response.status == 405 and "PUT" in error and "GET" in error, error
    response = await api.get("/nothing")
    error = (await response.json())["error"]
    assert response.status == 404 and "/api" in error
