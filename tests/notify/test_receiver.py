"""The README's webhook receiver, run as written: it accepts a request runner signed
and refuses one whose body, signature or timestamp is not runner's."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from runner.notify.signing import headers

README = Path(__file__).resolve().parents[2] / "README.md"
MARK = "<!-- not run: a server that runs until stopped; tests/notify/test_receiver.py runs it -->"
SECRET = "the-receivers-secret-0123"


def receiver_code() -> str:
    text = README.read_text(encoding="utf-8")
    after = text[text.index(MARK) + len(MARK) :]
    start = after.index("```python\n") + len("```python\n")
    return after[start : after.index("\n```", start)]


@pytest.fixture
def receiver_url(tmp_path: Path) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = tmp_path / "receiver.py"
    script.write_text(receiver_code(), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, str(script)], env={"WEBHOOK_SECRET": SECRET, "PORT": str(port)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    proc.terminate()
    proc.communicate(timeout=5)


def _post(url: str, body: bytes, sent: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=sent, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return int(refused.code)


def test_the_readme_receiver_checks_runners_signature(receiver_url: str) -> None:
    """Signed as runner signs: 204. A changed body, a wrong secret or an old
    timestamp: 401."""
    body = orjson.dumps({"event_id": "j:3", "job_id": "j", "from_state": "running",
                         "to_state": "succeeded"})  # fmt: skip
    now = int(time.time())
    assert _post(receiver_url, body, headers(SECRET, "j:3", now, body)) == 204
    assert _post(receiver_url, body + b" ", headers(SECRET, "j:3", now, body)) == 401
    assert _post(receiver_url, body, headers("another-secret-entirely", "j:3", now, body)) == 401
    assert _post(receiver_url, body, headers(SECRET, "j:3", now - 3600, body)) == 401
