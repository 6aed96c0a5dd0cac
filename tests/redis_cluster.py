"""A real Redis Cluster for the tests: 3 primaries and 3 replicas on loopback ports.

Debian's redis-server (Redis 7, `make debian-servers` installs it), each node in a
folder of its own with the append-only file on, created by `redis-cli --cluster
create` the way an operator does it. The node timeout is short (2 s), so a replica
takes over from a primary that died in a few seconds. `close` kills every node and
removes the folders, whatever state the cluster is in.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from runner.store.redis.keys import Keys

REDIS_SERVER = Path("/usr/bin/redis-server")
REDIS_CLI = Path("/usr/bin/redis-cli")
NODE_TIMEOUT_MS = 2000
START_TIMEOUT_S = 30.0


class ClusterError(RuntimeError):
    """The cluster did not start, or did not settle, as asked."""


def _ask(port: int, *words: str, timeout: float = 2.0) -> str:
    """One command by redis-cli; its reply as text ("" when the node does not answer)."""
    try:
        done = subprocess.run(
            [str(REDIS_CLI), "-p", str(port), *words],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return ""
    return done.stdout if done.returncode == 0 else ""


def _info_field(text: str, name: str) -> str:
    for line in text.splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    return ""


@dataclass
class Node:
    port: int
    folder: Path
    proc: subprocess.Popen[bytes]
    args: list[str]

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, size: int = 1500) -> str:
        with contextlib.suppress(OSError):
            return (self.folder / "redis.log").read_text(errors="replace")[-size:]
        return ""


@dataclass
class RedisClusterServers:
    """Six nodes; `url` names one of them, the cluster client finds the rest."""

    root: Path
    nodes: list[Node] = field(default_factory=list)

    @property
    def url(self) -> str:
        port = next(node.port for node in self.nodes if node.alive)
        return f"redis://127.0.0.1:{port}/0"

    def start(self, primaries: int = 3) -> None:
        if not (REDIS_SERVER.exists() and REDIS_CLI.exists()):
            raise ClusterError(
                f"{REDIS_SERVER} or {REDIS_CLI} is missing: install Debian's redis-server "
                "(`make debian-servers`)"
            )
        ports = _free_ports(primaries * 4)  # a client port and a bus port a node
        for index in range(primaries * 2):
            self.nodes.append(self._start_node(index, ports[2 * index], ports[2 * index + 1]))
        for node in self.nodes:
            self._wait(lambda node=node: _ask(node.port, "PING").strip() == "PONG", "a node up")
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        created = subprocess.run(
            [str(REDIS_CLI), "--cluster", "create", *addresses, "--cluster-replicas", "1",
             "--cluster-yes"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if created.returncode != 0:
            raise ClusterError(f"redis-cli --cluster create failed:\n{created.stdout[-2000:]}")
        self.wait_settled()

    def _start_node(self, index: int, port: int, bus_port: int) -> Node:
        folder = self.root / f"node{index}"
        folder.mkdir(parents=True)
        args = [str(REDIS_SERVER), "--port", str(port), "--bind", "127.0.0.1",
                "--dir", str(folder), "--logfile", "redis.log", "--save", "",
                "--appendonly", "yes", "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                "--cluster-port", str(bus_port),  # not port + 10000: past 65535
                "--repl-diskless-sync-delay", "0"]  # a replica syncs at once  # fmt: skip
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return Node(port, folder, proc, args)

    def wait_settled(self, timeout: float = START_TIMEOUT_S) -> None:
        """Every live node sees the cluster ok, every slot served, and each primary's
        replicas in sync with it."""
        self._wait(self._settled, "the cluster settled (state ok, replicas in sync)", timeout)

    def _settled(self) -> bool:
        live = [node for node in self.nodes if node.alive]
        for node in live:
            info = _ask(node.port, "CLUSTER", "INFO")
            if _info_field(info, "cluster_state") != "ok":
                return False
            if _info_field(info, "cluster_slots_ok") != "16384":
                return False
            replication = _ask(node.port, "INFO", "replication")
            role = _info_field(replication, "role")
            if role == "slave" and _info_field(replication, "master_link_status") != "up":
                return False
        return True

    def _wait(self, ready: object, what: str, timeout: float = START_TIMEOUT_S) -> None:
        assert callable(ready)
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                tails = "\n".join(f"--- {n.port}\n{n.log_tail()}" for n in self.nodes)
                raise ClusterError(f"timed out waiting for {what}\n{tails}")
            dead = [node for node in self.nodes if node.proc.poll() not in (None, -9)]
            if dead:
                raise ClusterError(f"node {dead[0].port} exited:\n{dead[0].log_tail()}")
            time.sleep(0.05)

    def primary_of(self, key: str) -> Node:
        """The live node serving `key`'s slot as a primary now."""
        slot = int(_ask(self.url_port, "CLUSTER", "KEYSLOT", key).strip())
        for node in self.nodes:
            if not node.alive:
                continue
            for line in _ask(node.port, "CLUSTER", "NODES").splitlines():
                parts = line.split()
                if "myself" in parts[2] and "master" in parts[2] and _serves(parts[8:], slot):
                    return node
        raise ClusterError(f"no live primary serves slot {slot} of {key!r}")

    def shard_subscribers(self, channel: str) -> int:
        """Clients subscribed (SSUBSCRIBE) to `channel` on the primary serving its slot."""
        reply = _ask(self.primary_of(channel).port, "PUBSUB", "SHARDNUMSUB", channel).split()
        return int(reply[1]) if len(reply) == 2 else 0

    def replica_of(self, key: str) -> Node:
        """A live replica of the primary serving `key`'s slot."""
        primary = self.primary_of(key)
        for node in self.nodes:
            replication = _ask(node.port, "INFO", "replication") if node.alive else ""
            if _info_field(replication, "master_port") == str(primary.port):
                return node
        raise ClusterError(f"the primary on {primary.port} has no live replica")

    @property
    def url_port(self) -> int:
        return next(node.port for node in self.nodes if node.alive)

    def kill(self, node: Node) -> None:
        """SIGKILL: the node dies with whatever it had not sent to its replicas."""
        node.proc.send_signal(signal.SIGKILL)
        node.proc.wait(10)

    def restart(self, node: Node) -> None:
        """Start a killed node again on its port and folder: it rejoins the cluster
        from its nodes.conf, as a replica of the primary that took its slots."""
        node.proc = subprocess.Popen(
            node.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def close(self) -> None:
        for node in self.nodes:
            if node.alive:
                node.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.proc.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)


def _free_ports(count: int) -> list[int]:
    """Distinct free ports: each held open until all are found, so none repeats."""
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(count):
            sock = held.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def _serves(ranges: list[str], slot: int) -> bool:
    for text in ranges:
        if text.startswith("["):
            continue  # a slot being migrated or imported
        low, _, high = text.partition("-")
        if int(low) <= slot <= int(high or low):
            return True
    return False


def start_cluster() -> RedisClusterServers:
    """A settled cluster of 3 primaries and 3 replicas; close() it when done."""
    cluster = RedisClusterServers(Path(tempfile.mkdtemp(prefix="runner-cluster-")))
    try:
        cluster.start()
    except BaseException:
        cluster.close()
        raise
    return cluster


def queues_on_every_primary(
    cluster: RedisClusterServers, prefix: str, per_primary: int = 1
) -> dict[int, list[str]]:
    """Queue names ("q0", "q1", ...) whose slots put `per_primary` queues on each
    primary: primary port -> names."""
    by_primary: dict[int, list[str]] = {}
    n = 0
    while len(by_primary) < 3 or any(len(v) < per_primary for v in by_primary.values()):
        name = f"q{n}"
        port = cluster.primary_of(Keys(prefix, name).events).port
        if len(by_primary.setdefault(port, [])) < per_primary:
            by_primary[port].append(name)
        n += 1
    return by_primary
