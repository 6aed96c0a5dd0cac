"""`runner web` refusing to start, as an operator meets it: the exit code, and a
message that names where the bad value came from (the config key, the environment
variable or the command-line flag) and what to do."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.web.conftest import TOKEN
from tests.web.process import WebProcess


def test_refuses_the_network_without_a_token(daemon_config: Callable[..., Path]) -> None:
    """Listening beyond loopback with no token configured: exit 1 and say why."""
    process = WebProcess(daemon_config(), "--listen", "0.0.0.0:0")
    assert process.finish() == 1
    out = process.output()
    assert "web.listen: 0.0.0.0:0 is reachable from the network" in out
    assert "set [web] token" in out


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
