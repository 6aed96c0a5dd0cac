"""`runner workflow WF`, and the CLI's requests on a whole workflow
(runner/client/workflow_verbs.py)."""

from __future__ import annotations

from typing import Any

from runner.client.client import Client
from runner.config.settings import Settings


async def workflow_document(settings: Settings, workflow_id: str) -> dict[str, Any]:
    async with await Client.connect(settings) as client:
        return await client.workflow(workflow_id)


async def workflow_request(settings: Settings, action: str, workflow_id: str) -> list[Any]:
    """The request's results, each as a dict (RequestResult's fields)."""
    async with await Client.connect(settings) as client:
        return [vars(r) for r in await client.request_workflow(action, workflow_id)]
