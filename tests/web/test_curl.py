"""A real `runner web` process answering a real curl, as an operator would use it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import TOKEN

ROOT = Path(__file__).resolve().parents[2]


class WebProcess:
    """`python -m runner web` with its JSON log lines read as they come."""

    def __init__(self, config: Path, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runner", "web", "--config", str(config), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
            text=True,
        )
        self.lines: list[str] = []

    def wait_ready(self, timeout: float = 30.0) -> dict[str, Any]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            if '"web ready"' in line:
                ready: dict[str, Any] = json.loads(line)
                return ready
        raise AssertionError(f"runner web did not start:\n{''.join(self.lines)}")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=20)
        self.lines.extend(out.splitlines(keepends=True))
        return self.proc.returncode


@pytest.fixture
def web(daemon_config: Callable[..., Path]) -> Iterator[WebProcess]:
    process = WebProcess(daemon_config(web={"token": TOKEN}), "--listen", "127.0.0.1:0")
    yield process
    if process.proc.poll() is None:
        process.proc.kill()
        process.proc.communicate(timeout=10)


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
    url = web.wait_ready()["url"]
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
    events = [json.loads(line)["event"] for line in web.lines if line.startswith("{")]
    assert events[-2:] == ["web stopping", "web stopped"]
    assert TOKEN not in "".join(web.lines)


def test_refuses_the_network_without_a_token(daemon_config: Callable[..., Path]) -> None:
    """Listening beyond loopback with no token configured: exit 1 and say why."""
    process = WebProcess(daemon_config(), "--listen", "0.0.0.0:0")
    out, _ = process.proc.communicate(timeout=30)
    assert process.proc.returncode == 1
    assert "web.listen: 0.0.0.0:0 is reachable from the network" in out
    assert "set [web] token" in out


def test_a_malformed_listen_is_a_usage_error(daemon_config: Callable[..., Path]) -> None:
    """--listen must be HOST:PORT: exit 2 naming the option."""
    process = WebProcess(daemon_config(), "--listen", "8080")
    out, _ = process.proc.communicate(timeout=30)
    assert process.proc.returncode == 2
    assert "--listen: must be HOST:PORT" in out
