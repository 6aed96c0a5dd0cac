"""The JSON API's routes: each one a thin call into the Client (or the status, cron
and show documents the CLI prints), so the API and the CLI cannot drift apart.

Errors are not handled here: they propagate to the middleware in app.py, which
answers them through errors.py's one table.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from aiohttp import web

from runner.client.client import Client
from runner.client.cron import cron_documents
from runner.client.results import RequestResult
from runner.client.show import job_document
from runner.client.webhooks import replay
from runner.config.settings import Settings
from runner.errors import UsageError
from runner.jobs import EnqueueResult
from runner.web import bodies
from runner.web.counts import TaskCounts
from runner.web.errors import TaskNotFound, error_response
from runner.web.output import json_response
from runner.web.views import status_of_web, throughput_of

CLIENT = web.AppKey("client", Client)
SETTINGS = web.AppKey("settings", Settings)
COUNTS = web.AppKey("counts", TaskCounts)
JOB_ACTIONS = ("pause", "resume", "cancel", "retry")
Handler = Callable[[web.Request], Awaitable[web.Response]]

routes = web.RouteTableDef()


def _client(request: web.Request) -> Client:
    return request.app[CLIENT]


async def _body(request: web.Request) -> Any:
    return bodies.parse_json(await request.read())


def _job_id(request: web.Request) -> str:
    return request.match_info["job_id"]


def _created(result: EnqueueResult) -> dict[str, Any]:
    doc = {"id": result.id, "created": result.created, "state": result.state}
    return doc if result.refused is None else doc | {"refused": result.refused}


@routes.post("/api/jobs")
async def enqueue(request: web.Request) -> web.Response:
    """201 with the new job's id; 200 with created=false when a job already holds the
    id asked for (nothing was enqueued: an id names one job for good); 429 when its
    task's max_queued jobs wait (after the body's "wait" seconds, if any)."""
    body = await _body(request)
    wait = bodies.take_wait(body)
    result = await _client(request).enqueue_result(**bodies.enqueue_arguments(body), wait=wait)
    return json_response(_created(result), status=201 if result.created else 200)


@routes.post("/api/jobs/batch")
async def enqueue_batch(request: web.Request) -> web.Response:
    """Every job is checked before any is enqueued, then all go in one round trip. A
    job refused at its task's max_queued says so in its own result ("refused"); 429
    when every job was refused."""
    client = _client(request)
    body = await _body(request)
    wait = bodies.take_wait(body)
    jobs = []
    for i, arguments in enumerate(bodies.batch_arguments(body)):
        try:
            jobs.append(client.new_job(**arguments))
        except UsageError as exc:
            exc.args = (f"jobs[{i}]: {exc}",)  # keeps its class: an unknown task stays a 422
            raise
    results = await client.enqueue_many_results(jobs, wait)
    status = 429 if all(result.refused is not None for result in results) else 201
    return json_response({"jobs": [_created(result) for result in results]}, status=status)


@routes.get("/api/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    page = await _client(request).list(**bodies.list_arguments(request.query))
    return json_response(page.as_json())


@routes.get("/api/jobs/{job_id}")
async def show(request: web.Request) -> web.Response:
    client = _client(request)
    job = await client.get(_job_id(request))
    return json_response(job_document(job, await client.history(job.id)))


def _result_response(result: RequestResult) -> web.Response:
    """200 when applied; 404 for no such job; 410 for a deleted one; 409 when the
    state table refused it, with the state that refused it."""
    doc = asdict(result)
    if result.ok:
        return json_response(doc)
    if result.state is None:
        return error_response(404, result.message, doc)
    return error_response(410 if result.state == "deleted" else 409, result.message, doc)


async def _request(request: web.Request, action: str, **changes: Any) -> web.Response:
    [result] = await _client(request).request(action, [_job_id(request)], **changes)
    return _result_response(result)


@routes.patch("/api/jobs/{job_id}")
async def update(request: web.Request) -> web.Response:
    return await _request(request, "update", **bodies.update_arguments(await _body(request)))


@routes.delete("/api/jobs/{job_id}")
async def delete(request: web.Request) -> web.Response:
    return await _request(request, "delete")


def _job_action(action: str) -> Handler:
    async def job_action(request: web.Request) -> web.Response:
        return await _request(request, action)

    return job_action


for _action in JOB_ACTIONS:  # one route each, so that a 404 can list them all
    routes.post(f"/api/jobs/{{job_id}}/{_action}")(_job_action(_action))


@routes.get("/api/workflows/{workflow}")
async def workflow(request: web.Request) -> web.Response:
    """A workflow's jobs, each with its state and the ids it depends on (the dashboard
    draws the graph from it)."""
    return json_response(await _client(request).workflow(request.match_info["workflow"]))


def _workflow_action(action: str) -> Handler:
    async def workflow_action(request: web.Request) -> web.Response:
        """The request on every job of the workflow it applies to: how many, and each
        job's result."""
        workflow = request.match_info["workflow"]
        results = await _client(request).request_workflow(action, workflow)
        applied = sum(1 for r in results if r.ok)
        return json_response({"workflow": workflow, "action": action, "applied": applied,
                              "message": f"{action}: workflow {workflow}: {applied} jobs",
                              "jobs": [asdict(r) for r in results]})  # fmt: skip

    return workflow_action


for _action in JOB_ACTIONS:
    routes.post(f"/api/workflows/{{workflow}}/{_action}")(_workflow_action(_action))


async def _task(request: web.Request, *, or_paused: bool) -> str:
    """The task the path names, if the config declares it (or, with `or_paused`, it
    is paused: a task paused before the config dropped it can still be resumed);
    TaskNotFound (a 404) otherwise."""
    client, task = _client(request), request.match_info["task"]
    if task in client.settings.tasks or (or_paused and task in await client.paused()):
        return task
    raise TaskNotFound(task, list(client.settings.tasks))


@routes.post("/api/tasks/{task}/pause")
async def pause_task(request: web.Request) -> web.Response:
    """Hold every job of a task, on every daemon."""
    task = await _task(request, or_paused=False)
    return json_response({"task": task, "changed": await _client(request).pause_task(task)})


@routes.post("/api/tasks/{task}/resume")
async def resume_task(request: web.Request) -> web.Response:
    """Release the jobs of a paused task, those held while it was paused first."""
    task = await _task(request, or_paused=True)
    return json_response({"task": task, "changed": await _client(request).resume_task(task)})


@routes.post("/api/maintenance")
async def maintenance_on(request: web.Request) -> web.Response:
    """Maintenance mode: no daemon claims anything; running jobs finish."""
    changed = await _client(request).pause_all()
    return json_response({"task": None, "all": True, "changed": changed})


@routes.delete("/api/maintenance")
async def maintenance_off(request: web.Request) -> web.Response:
    changed = await _client(request).resume_all()
    return json_response({"task": None, "all": True, "changed": changed})


@routes.get("/api/status")
async def status(request: web.Request) -> web.Response:
    return json_response(await status_of_web(_client(request), request.app[COUNTS]))


@routes.get("/api/cron")
async def cron(request: web.Request) -> web.Response:
    return json_response(await cron_documents(request.app[SETTINGS]))


@routes.get("/api/throughput")
async def throughput(request: web.Request) -> web.Response:
    minutes = bodies.minutes_argument(request.query)
    return json_response(await throughput_of(_client(request), minutes))


@routes.post("/api/notify/{sink}/replay")
async def replay_dead_letters(request: web.Request) -> web.Response:
    """Send a webhook sink's dead letters again: {"event_id": "JOB:SEQ"} for one,
    {"all": true} for every one. 404 for an unknown sink or an event with no dead
    letter."""
    event_id = bodies.replay_target(await _body(request))
    return json_response(await replay(_client(request), request.match_info["sink"], event_id))
