"""`runner web` refusing to start, as an operator meets it: the exit code, and a
message that names where the bad value came from (the config key, the environment
variable or the command-line flag) and what to do."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

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
