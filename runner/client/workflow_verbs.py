"""The client's verbs on a workflow as a whole: its jobs and their states (`runner
workflow WF`), and the requests that apply to all of it (pause, resume, cancel,
retry). A mixin of Client (client.py), as RequestVerbs is.

A workflow's jobs are listed twice: in Redis (a set per workflow, written by the
enqueue script in the same step as the job, so a job enqueued a moment ago is
there), and in PostgreSQL (each job's row names its workflow and the jobs it
depends on, migration 009, so the graph can be read after Redis forgot it). Each
job's state and dependencies are Redis's where Redis still holds it (live: a
fan-out hands a job's dependents over to other jobs), else the recorded ones.

A request on a workflow is one request on its jobs in dependency order, which each
queue's script follows in one atomic step:
- cancel and pause go from the last jobs to the first, so no job is released by
  a dependency that ends between two of them;
- resume goes from the first to the last;
- retry takes the failed and cancelled jobs, first to last: a job whose
  dependencies were retried with it waits for them again (blocked, lua/retry.lua),
  so "the failed jobs and what depends on them" run again in order. Jobs Redis
  forgot are brought back from their history first, so the order holds for them.
"""

from __future__ import annotations

import graphlib
from collections import Counter
from typing import TYPE_CHECKING, Any

import orjson

from runner.client.results import RequestResult
from runner.config.settings import Settings
from runner.errors import UsageError
from runner.states import ENDED, State, transition
from runner.store import RedisStore, revive_for

if TYPE_CHECKING:
    from runner.clock import Clock
    from runner.store import PgStore

MOST_JOBS = 100_000
WORKFLOW_REQUESTS = ("pause", "resume", "cancel", "retry")


class WorkflowVerbs:
    settings: Settings
    store: RedisStore
    clock: Clock

    async def history_store(self) -> PgStore | None:
        raise NotImplementedError  # Client's: Postgres, connected on first use

    async def request_with(
        self, action: str, ids: list[str], argument: dict[str, Any] | None
    ) -> list[RequestResult]:
        raise NotImplementedError  # RequestVerbs'

    async def workflow(self, workflow_id: str) -> dict[str, Any]:
        """The workflow's jobs, each with its task, state, error and the ids it depends
        on, and how many are in each state."""
        graph = await self._graph(workflow_id)
        jobs = [{**job, "depends_on": graph.after[job["id"]]} for job in graph.jobs]
        return {
            "workflow": workflow_id,
            "states": dict(Counter(job["state"] for job in jobs)),
            "jobs": jobs,
        }

    async def pause_workflow(self, workflow_id: str) -> list[RequestResult]:
        """No job of the workflow starts until resume_workflow; running ones finish."""
        return await self.request_workflow("pause", workflow_id)

    async def resume_workflow(self, workflow_id: str) -> list[RequestResult]:
        return await self.request_workflow("resume", workflow_id)

    async def cancel_workflow(self, workflow_id: str) -> list[RequestResult]:
        """End every job of the workflow still going; running ones are stopped as a
        cancelled job is, and nothing after them starts."""
        return await self.request_workflow("cancel", workflow_id)

    async def retry_workflow(self, workflow_id: str) -> list[RequestResult]:
        """Run the workflow's failed and cancelled jobs again, each once the jobs it
        depends on (retried with it) succeeded."""
        return await self.request_workflow("retry", workflow_id)

    async def request_workflow(self, action: str, workflow_id: str) -> list[RequestResult]:
        """Apply `action` to the workflow's jobs it can apply to (see the module's
        docstring); a RequestResult for each of them."""
        if action not in WORKFLOW_REQUESTS:
            raise UsageError(f"a workflow takes {', '.join(WORKFLOW_REQUESTS)}, not {action!r}")
        graph = await self._graph(workflow_id)
        order = graph.dependency_order()
        states = {job["id"]: job["state"] for job in graph.jobs}
        if action == "retry":
            ids = [i for i in order if states[i] in (State.FAILED, State.CANCELLED)]
            await self._bring_back([i for i in ids if i not in graph.live])
            return await self.request_with(action, ids, {"wait_for_dependencies": True})
        going = [i for i in order if states[i] not in ENDED]
        if action in ("cancel", "pause"):
            going.reverse()
        sources = transition(action).sources
        ids = [i for i in going if action == "cancel" or states[i] in sources]
        return await self.request_with(action, ids, None)

    async def _bring_back(self, forgotten: list[str]) -> None:
        if forgotten:
            await revive_for(
                "retry", forgotten, settings=self.settings, store=self.store,
                pg=await self.history_store(), now_ms=self.clock.now_ms(),
            )  # fmt: skip

    async def _graph(self, workflow_id: str) -> _Graph:
        listed = await self.store.workflow_members(workflow_id)
        pg = await self.history_store()
        rows = {r["id"]: r for r in (await pg.workflow_jobs(workflow_id, MOST_JOBS) if pg else [])}
        ids = sorted(listed | set(rows))
        if not ids:
            raise UsageError(
                f"no job belongs to workflow {workflow_id!r}: check the id (enqueue_workflow "
                "returned it; a fan-out's workflow is its job's, or the job's own id)"
            )
        fields = await self.store.job_fields(ids, ["state", "task", "after"])
        live = {i: f for i, f in fields.items() if "state" in f}
        jobs, after = [], {}
        for i in ids:
            row, held = rows.get(i, {}), live.get(i, {})
            if not held and not row:
                continue  # listed in Redis, gone from both since
            state = held.get("state", row.get("state"))
            task = held.get("task") or row.get("task")
            jobs.append({"id": i, "task": task, "state": state, "error": row.get("error")})
            recorded = list(row.get("depends_on") or [])
            after[i] = _ids(held["after"]) if "after" in held else recorded
        return _Graph(jobs, after, set(live))


class _Graph:
    """The workflow's jobs (id, task, state, error), the ids each depends on, and
    which of them Redis holds."""

    def __init__(self, jobs: list[dict[str, Any]], after: dict[str, list[str]],
                 live: set[str]) -> None:  # fmt: skip
        self.jobs = jobs
        self.after = after
        self.live = live

    def dependency_order(self) -> list[str]:
        """Every job after the jobs of this workflow it depends on."""
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        for job in self.jobs:
            sorter.add(job["id"], *(d for d in self.after[job["id"]] if d in self.after))
        try:
            return list(sorter.static_order())
        except graphlib.CycleError:  # a hand-edited hash: any order beats none
            return [job["id"] for job in self.jobs]


def _ids(text: str) -> list[str]:
    try:
        ids = orjson.loads(text)
    except orjson.JSONDecodeError:
        return []
    return [str(i) for i in ids] if isinstance(ids, list) else []
