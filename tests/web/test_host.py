"""Requests with no Host header or a malformed one, sent byte for byte to a real
`runner web`: each is a 400 that says what was wrong, and the log has one line at
info about it, never an `error` line with aiohttp's internals."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import AUTH, TOKEN, Serve
from tests.web.process import WebProcess

BAD_HOSTS = ("a b", "@@", "[::1", "localhost:99999", "localhost:8o80", "exa mple.com:80")


def exchange(url: str, request: bytes) -> bytes:
    """Send raw bytes to the server at `url` and read its whole answer."""
    host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    with socket.create_connection((host.strip("[]"), int(port)), timeout=10) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


@pytest.fixture(params=["127.0.0.1:0", "0.0.0.0:0"], ids=["loopback", "network"])
def web(request: Any, daemon_config: Callable[..., Path]) -> Iterator[WebProcess]:
    process = WebProcess(daemon_config(web={"token": TOKEN}), "--listen", request.param)
    process.ready()
    yield process
    process.stop()


def test_no_host_or_a_malformed_one_is_a_400_logged_at_info(web: WebProcess) -> None:
    """HTTP/1.1 without Host (refused by aiohttp's parser), HTTP/1.0 without Host, two
    Host headers, and Host values that are no host[:port]: 400 each, and no log line
    above info, on a loopback server and on one open to the network."""
    url = web.url().replace("0.0.0.0", "127.0.0.1")
    auth = f"Authorization: Bearer {TOKEN}\r\n".encode()
    requests = [
        b"GET /api/status HTTP/1.1\r\nConnection: close\r\n" + auth + b"\r\n",
        b"GET /api/status HTTP/1.0\r\n" + auth + b"\r\n",
        b"GET / HTTP/1.1\r\nHost: localhost\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        *(
            f"GET /api/status HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n".encode()
            + auth + b"\r\n"
            for host in BAD_HOSTS
        ),
    ]  # fmt: skip
    for request in requests:
        answer = exchange(url, request)
        assert status_of(answer) == 400, (request, answer)
        assert b"Host" in answer, (request, answer)
    good = b"GET /api/status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n" + auth
    assert status_of(exchange(url, good + b"\r\n")) == 200

    assert web.stop() == 0
    refused = [e for e in web.events() if "Host" in str(e.get("error", ""))]
    assert len(refused) == len(requests), web.output()
    for event in refused:
        assert event["level"] == "info" and event["remote"] == "127.0.0.1", event
    above_info = [e for e in web.events() if e.get("level") not in ("info", "debug")]
    assert above_info == [], web.output()


async def test_a_malformed_host_is_a_400_naming_it(serve: Serve) -> None:
    """Through the app alone: a malformed Host is a 400 whose message quotes it and
    says what a Host must look like, before the loopback rule or the token is
    looked at (on loopback it used to be a 403 about other names)."""
    for listen in ("127.0.0.1:8080", "0.0.0.0:8080"):
        api = await serve(web_listen=listen)
        for host in BAD_HOSTS:
            response = await api.get("/api/status", headers={"Host": host, **AUTH})
            error = (await response.json())["error"]
            assert response.status == 400, (listen, host, error)
            assert f"malformed Host header {host!r}" in error and "HOST[:PORT]" in error
        response = await api.get("/api/status", headers={"Host": "localhost:8080", **AUTH})
        assert response.status == 200
