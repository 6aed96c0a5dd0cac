"""`runner web` refusing to start, as an operator meets it: the exit code, and a
message that names where the bad value came from (the config key, the environment
variable or the command-line flag) and what to do."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.web.conftest import TOKEN
from tests.web.process import WebProcess


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port another socket on this machine listens on."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        yield holder.getsockname()[1]
    finally:
        holder.close()


def test_refuses_the_network_without_a_token(daemon_config: Callable[..., Path]) -> None:
    """Listening beyond loopback with no token configured: exit 1, naming the flag
    that chose the address (not the config file, which did not) and what to set."""
    process = WebProcess(daemon_config(), "--listen", "0.0.0.0:0")
    assert process.finish() == 1
    out = process.output()
    assert "--listen 0.0.0.0:0 is reachable from the network" in out, out
    assert "set [web] token" in out and "RUNNER_WEB_TOKEN" in out
    assert "web.listen" not in out and "is invalid" not in out


def test_refuses_the_network_without_a_token_from_the_config(
    daemon_config: Callable[..., Path],
) -> None:
    """The same refusal when [web] listen chose the address names that key and file."""
    config = daemon_config(web={"listen": "0.0.0.0:8091"})
    process = WebProcess(config)
    assert process.finish() == 1
    out = process.output()
    assert f"{config} is invalid" in out and "web.listen: 0.0.0.0:8091 is reachable" in out, out


def test_a_malformed_listen_is_a_usage_error(daemon_config: Callable[..., Path]) -> None:
    """--listen must be HOST:PORT: exit 2 naming the option."""
    process = WebProcess(daemon_config(), "--listen", "8080")
    assert process.finish() == 2
    assert "--listen: must be HOST:PORT" in process.output()


def test_a_short_token_from_the_environment_is_refused(
    daemon_config: Callable[..., Path],
) -> None:
    """[web] token must be at least 16 characters wherever it comes from: a short
    RUNNER_WEB_TOKEN stops `runner web` before it listens, naming the variable (and
    never showing the value)."""
    process = WebProcess(
        daemon_config(), "--listen", "0.0.0.0:0", env={"RUNNER_WEB_TOKEN": "abcdefg"}
    )
    assert process.finish(timeout=15) == 1
    out = process.output()
    assert "RUNNER_WEB_TOKEN: must be a string of at least 16 characters" in out, out
    assert "abcdefg" not in out and "web ready" not in out


def test_a_short_token_in_the_config_is_refused(daemon_config: Callable[..., Path]) -> None:
    """The same rule for [web] token in the file, named by its key."""
    process = WebProcess(daemon_config(web={"token": "short"}), "--listen", "127.0.0.1:0")
    assert process.finish() == 1
    out = process.output()
    assert "web.token: must be a string of at least 16 characters" in out, out


def test_a_token_from_the_environment_is_used(daemon_config: Callable[..., Path]) -> None:
    """A long enough RUNNER_WEB_TOKEN is the server's token (overriding the file's)."""
    process = WebProcess(
        daemon_config(web={"token": "a-different-token-from-the-file"}),
        "--listen", "127.0.0.1:0", env={"RUNNER_WEB_TOKEN": TOKEN},
    )  # fmt: skip
    try:
        assert process.ready()["token_configured"] is True
    finally:
        assert process.stop() == 0


def test_a_port_in_use_names_the_port_and_the_flag(
    daemon_config: Callable[..., Path], held_port: int
) -> None:
    """Another process holds the port given with --listen: exit 1, saying which
    address, that it is in use, and that --listen chose it."""
    process = WebProcess(daemon_config(), "--listen", f"127.0.0.1:{held_port}")
    assert process.finish() == 1
    out = process.output()
    assert f"cannot listen on 127.0.0.1:{held_port} (from --listen)" in out, out
    assert "in use" in out and "Traceback" not in out


def test_a_port_in_use_names_the_config_key(
    daemon_config: Callable[..., Path], held_port: int
) -> None:
    """The same, when [web] listen chose the port: the key and the file are named."""
    config = daemon_config(web={"listen": f"127.0.0.1:{held_port}"})
    process = WebProcess(config)
    assert process.finish() == 1
    out = process.output()
    assert f"cannot listen on 127.0.0.1:{held_port} (from [web] listen in {config})" in out, out
    assert "in use" in out and "Traceback" not in out
