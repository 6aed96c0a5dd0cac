"""`runner wait ID`: block until a job ends, and say how it ended in the exit code,
so a shell script can chain on a job (`runner wait "$job" && next-step`).

Exit 0 succeeded, 1 failed, cancelled or deleted (or an error, as every command),
3 still not ended at --timeout. Woken by the job's transitions, not by polling.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import orjson

from runner.cli.parser import EXIT_FAILURE, EXIT_OK, EXIT_TIMEOUT
from runner.config.durations import parse_duration
from runner.config.settings import Settings
from runner.errors import JobFailed, ResultTimeout, UsageError


def timeout_seconds(text: str | None) -> float | None:
    """--timeout as seconds: a duration (90, 30s, 5m); None waits for good."""
    if text is None:
        return None
    try:
        seconds = parse_duration(_number_or_text(text))
    except ValueError as exc:
        raise UsageError(f"--timeout: {exc}") from None
    if seconds <= 0:
        raise UsageError(f"--timeout: must be more than 0, got {text!r}")
    return seconds


def _number_or_text(text: str) -> float | str:
    """A bare number is seconds, as in `timeout 90`."""
    try:
        return float(text)
    except ValueError:
        return text


async def _outcome(settings: Settings, job_id: str, timeout: float | None) -> dict[str, Any]:
    from runner.client.client import Client  # noqa: PLC0415  # keeps `runner --help` fast

    async with await Client.connect(settings) as client:
        try:
            result = await client.result(job_id, timeout=timeout)
        except JobFailed as exc:
            return {"id": job_id, "state": exc.state, "error": exc.error}
        except ResultTimeout as exc:
            return {"id": job_id, "state": exc.state, "timed_out": True}
        return {"id": job_id, "state": "succeeded", "result": result}


def wait_for_job(args: argparse.Namespace, settings: Settings) -> int:
    doc = asyncio.run(_outcome(settings, args.job_id, timeout_seconds(args.timeout)))
    if args.json:
        print(orjson.dumps(doc).decode())
    elif doc.get("timed_out"):
        print(f"job {args.job_id} is still {doc['state']} after {args.timeout}")
    elif doc["state"] == "succeeded":
        print(orjson.dumps(doc["result"]).decode())
    else:
        error = f": {doc['error']}" if doc.get("error") else ""
        print(f"job {args.job_id} ended {doc['state']}{error}")
    if doc.get("timed_out"):
        return EXIT_TIMEOUT
    return EXIT_OK if doc["state"] == "succeeded" else EXIT_FAILURE
