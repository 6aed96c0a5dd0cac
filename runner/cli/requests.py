"""The request commands: pause, resume, cancel, retry, delete and update, on job ids,
a whole task (--task), every task (--all, maintenance mode) or a workflow (--workflow)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from typing import Any

import orjson

from runner.cli.arguments import duration_arg, json_arg, settings_of, when
from runner.cli.parser import EXIT_FAILURE, EXIT_OK
from runner.errors import UsageError


def cmd_request(args: argparse.Namespace) -> int:
    """pause, resume, cancel, retry, delete: several ids at once (pause and resume also
    a whole task, or every task; all but delete a workflow); exit 1 if any id was
    refused or not found (for a workflow, only if it has no job)."""
    action = args.command
    task = getattr(args, "task", None)
    every = getattr(args, "all", False)
    workflow = getattr(args, "workflow", None)
    if bool(args.job_ids) + bool(task) + bool(every) + bool(workflow) != 1:
        raise UsageError(f"{action}: give {_targets(action)} (one of them)")
    if workflow:
        return _workflow_request(args, action, workflow)
    changes = _update_changes(args) if action == "update" else {}
    settings = settings_of(args)

    async def run() -> list[dict[str, Any]]:
        from runner.client.client import Client  # noqa: PLC0415

        async with await Client.connect(settings) as client:
            if task or every:
                return [await _task_request(client, action, task)]
            results = await client.request(action, args.job_ids, **changes)
            return [vars(result) for result in results]

    docs = asyncio.run(run())
    if args.json:
        print(orjson.dumps(docs).decode())
    else:
        for doc in docs:  # applied on stdout; refused, as every error, on stderr
            if doc["ok"]:
                print(doc["message"])
            else:
                print(f"runner: {doc['message']}", file=sys.stderr)
    return EXIT_OK if all(doc["ok"] for doc in docs) else EXIT_FAILURE


def _targets(action: str) -> str:
    if action in ("pause", "resume"):
        return "job ids, --task NAME, --all or --workflow WF"
    return "job ids or --workflow WF" if action in ("cancel", "retry") else "job ids"


def _workflow_request(args: argparse.Namespace, action: str, workflow: str) -> int:
    """One line for the whole workflow: how many of its jobs the request applied to,
    and why the others were left (a job may end between the read and the request)."""
    from runner.client.workflows import workflow_request  # noqa: PLC0415

    docs = asyncio.run(workflow_request(settings_of(args), action, workflow))
    if args.json:
        print(orjson.dumps(docs).decode())
        return EXIT_OK
    done = sum(1 for doc in docs if doc["ok"])
    left = Counter(doc["state"] or "not found" for doc in docs if not doc["ok"])
    others = "; left as they were: " + ", ".join(f"{n} {s}" for s, n in sorted(left.items()))
    print(f"{action}: workflow {workflow}: {done} jobs{others if left else ''}")
    return EXIT_OK


async def _task_request(client: Any, action: str, task: str | None) -> dict[str, Any]:
    """pause or resume of one task, or of every task (maintenance mode, --all)."""
    if task is None:
        changed, message = await _maintenance(client, action)
    elif action == "pause":
        changed = await client.pause_task(task)
        message = f"paused task {task}" if changed else f"task {task} was paused already"
    else:
        changed = await client.resume_task(task)
        message = f"resumed task {task}" if changed else f"task {task} was not paused"
    return {"task": task, "all": task is None, "action": action, "ok": True,
            "changed": changed, "message": message}  # fmt: skip


async def _maintenance(client: Any, action: str) -> tuple[bool, str]:
    """Maintenance mode on or off (whether that changed anything), and what it means
    for the daemons."""
    if action == "pause":
        if not await client.pause_all():
            return False, "maintenance mode was on already"
        return True, "maintenance mode on: no daemon starts a job until `runner resume --all`"
    if not await client.resume_all():
        return False, "maintenance mode was not on"
    still = sorted(await client.paused())
    held = f"; tasks still paused on their own: {', '.join(still)}" if still else ""
    return True, f"maintenance mode ended: daemons start jobs again{held}"


def _update_changes(args: argparse.Namespace) -> dict[str, Any]:
    changes: dict[str, Any] = when(args)
    if args.args is not None:
        changes["args"] = json_arg(args.args, "--args", list)
    if args.kwargs is not None:
        changes["kwargs"] = json_arg(args.kwargs, "--kwargs", dict)
    if args.retries is not None:
        changes["retries"] = args.retries
    if args.priority is not None:
        changes["priority"] = args.priority
    if args.timeout is not None:
        changes["timeout"] = duration_arg(args.timeout, "--timeout")
    return changes
