"""A real `runner web` process answering a real curl, as an operator would use it."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import TOKEN
from tests.web.process import WebProcess


@pytest.fixture
def web(daemon_config: Callable[..., Path]) -> Iterator[WebProcess]:
    process = WebProcess(daemon_config(web={"token": TOKEN}), "--listen", "127.0.0.1:0")
    yield process
    process.stop()


def curl(*args: str) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) of `curl -s ARGS`; the exchange is printed for the log."""
    tool = shutil.which("curl")
    assert tool, "curl is missing: apt-get install curl (Debian package curl)"
    done = subprocess.run(
        [tool, "-s", "-w", "\n%{http_code}", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    body, _, status = done.stdout.rpartition("\n")
    print(f"$ curl {' '.join(args)}\n{status} {body}")
    return int(status), json.loads(body)


def test_curl_enqueue_auth_errors_and_a_refused_cancel(web: WebProcess) -> None:
    """201 and the id with the token; 401 without; 400 with the parser's reason for
    bad JSON; 422 for an unknown task; 409 with the state for a refused cancel; and
    a clean stop on SIGTERM."""
    url = web.url()
    assert url.startswith("http://127.0.0.1:")
    auth = ("-H", f"Authorization: Bearer {TOKEN}", "-H", "Content-Type: application/json")
    job = '{"task": "echo", "args": ["hi"], "delay": 600}'

    status, doc = curl(*auth, "-d", job, f"{url}api/jobs")
    assert status == 201 and doc["created"] is True
    job_id = doc["id"]
    status, doc = curl("-H", "Content-Type: application/json", "-d", job, f"{url}api/jobs")
    assert status == 401 and "Authorization: Bearer" in doc["error"]
    status, doc = curl(*auth, "-d", '{"task": "echo", "args": [', f"{url}api/jobs")
    assert status == 400 and doc["error"].startswith("the request body is not valid JSON")
    status, doc = curl(*auth, "-d", '{"task": "nope"}', f"{url}api/jobs")
    assert status == 422 and "unknown task 'nope'" in doc["error"]
    status, doc = curl(*auth, "-X", "POST", f"{url}api/jobs/{job_id}/cancel")
    assert status == 200 and doc["state"] == "cancelled"
    status, doc = curl(*auth, "-X", "POST", f"{url}api/jobs/{job_id}/cancel")
    assert status == 409 and doc["state"] == "cancelled"
    assert doc["error"].startswith(f"cannot cancel job {job_id}: it is cancelled")
    status, doc = curl(f"{url}api/jobs/{job_id}")
    assert status == 200 and doc["args"] == ["hi"]

    assert web.stop() == 0
    events = [event["event"] for event in web.events()]
    assert events[-2:] == ["web stopping", "web stopped"]
    assert TOKEN not in web.output()
