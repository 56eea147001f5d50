"""A local Redis Cluster for tests: three primaries and three replicas on free loopback ports.

:class:`LocalCluster` starts six ``redis-server`` processes with
``--cluster-enabled yes`` (no persistence), joins them with
``redis-cli --cluster create ... --cluster-replicas 1`` and waits until
every node reports ``cluster_state:ok`` and every replica is attached::

    with LocalCluster() as cluster:
        repo = RedisRepository(RedisConfig(url=cluster.url))

Fault helpers: :meth:`LocalCluster.kill_primary_of` (kills the primary that
serves a key, as a crash would), :meth:`LocalCluster.wait_for_promotion`
and :meth:`LocalCluster.migrate_slot` (moves one slot and its keys to
another primary with ``CLUSTER SETSLOT IMPORTING/MIGRATING``, ``MIGRATE``
and ``SETSLOT NODE``). Every process is stopped by pid.

The helpers talk to the nodes with a tiny blocking RESP client of their
own so the kit needs no client library and no event loop.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from ..config.topology import hash_slot
from .server import RedisServer, free_port, redis_server_binary

__all__ = ["ClusterNode", "LocalCluster", "key_slot"]

_random = random.Random()


def key_slot(key: str | bytes) -> int:
    """The cluster slot of ``key`` (its hash tag ``{...}`` only, when it has a non-empty one)."""
    return hash_slot(key)


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_port(taken: set[int] = frozenset()) -> int:  # type: ignore[assignment]
    """A free loopback port whose cluster bus port (+10000) is free too; at most 55535, as Redis requires."""
    for _ in range(200):
        port = free_port()
        if port > 55535:
            port = _random.randrange(20000, 55535)
        if port not in taken and port + 10000 not in taken and _bindable(port) and _bindable(port + 10000):
            return port
    raise RuntimeError("no free pair of loopback ports (port and port + 10000) was found")


def _encode(args: Sequence[Any]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class _Reader:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = b""

    def _line(self) -> bytes:
        while b"\r\n" not in self._buffer:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionError("the node closed the connection")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\r\n", 1)
        return line

    def _exact(self, size: int) -> bytes:
        while len(self._buffer) < size + 2:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionError("the node closed the connection")
            self._buffer += chunk
        data, self._buffer = self._buffer[:size], self._buffer[size + 2 :]
        return data

    def reply(self) -> Any:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else self._exact(size).decode(errors="replace")
        if kind == b"*":
            size = int(rest)
            return None if size < 0 else [self.reply() for _ in range(size)]
        raise RuntimeError(f"unexpected reply {line!r}")


@dataclass(eq=False)
class ClusterNode:
    """One node of a :class:`LocalCluster`: its server process and its cluster id."""

    server: RedisServer
    node_id: str = ""

    @property
    def host(self) -> str:
        """The node's address (always loopback)."""
        return self.server.host

    @property
    def port(self) -> int:
        """The node's port."""
        return self.server.port

    @property
    def alive(self) -> bool:
        """Whether the process runs."""
        return self.server.pid is not None

    def call(self, *args: Any, timeout: float = 5.0) -> Any:
        """Send one command to this node and return its reply (errors raise ``RuntimeError``)."""
        with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
            sock.sendall(_encode(args))
            return _Reader(sock).reply()

    def info(self, section: str = "replication") -> dict[str, str]:
        """``INFO section`` as a dict."""
        text = self.call("INFO", section)
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))

    @property
    def role(self) -> str:
        """``"master"`` or ``"slave"`` as the node reports it now."""
        return self.info()["role"]

    def __repr__(self) -> str:
        return f"ClusterNode(port={self.port}, id={self.node_id[:8]}, alive={self.alive})"


class LocalCluster:
    """Three primaries with one replica each, private and without persistence (see the module docstring)."""

    def __init__(
        self,
        *,
        primaries: int = 3,
        replicas_per_primary: int = 1,
        node_timeout_ms: int = 1000,
        args: Sequence[str] = (),
        startup_timeout: float = 30.0,
    ) -> None:
        if primaries < 3:
            raise ValueError("a Redis Cluster needs at least 3 primaries")
        self.primaries_count = primaries
        self.replicas_per_primary = replicas_per_primary
        self.node_timeout_ms = node_timeout_ms
        self.args = list(args)
        self.startup_timeout = startup_timeout
        self.nodes: list[ClusterNode] = []

    # -- lifetime ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:p1,127.0.0.1:p2,...`` (every node as a seed)."""
        return "redis+cluster://" + ",".join(f"{n.host}:{n.port}" for n in self.nodes)

    @property
    def seeds(self) -> tuple[tuple[str, int], ...]:
        """Every node's ``(host, port)``."""
        return tuple((n.host, n.port) for n in self.nodes)

    def start(self) -> Self:
        """Start the nodes, create the cluster and wait until it is ready."""
        if self.nodes:
            return self
        cli = shutil.which("redis-cli")
        if cli is None or redis_server_binary() is None:
            raise FileNotFoundError("redis-server and redis-cli are needed for a local cluster")
        count = self.primaries_count * (1 + self.replicas_per_primary)
        try:
            taken: set[int] = set()
            for _ in range(count):
                port = cluster_port(taken)
                taken.add(port)
                server = RedisServer(
                    port=port,
                    args=[
                        "--cluster-enabled", "yes",
                        "--cluster-config-file", "nodes.conf",
                        "--cluster-node-timeout", str(self.node_timeout_ms),
                        "--enable-debug-command", "local",
                        *self.args,
                    ],
                )  # fmt: skip
                self.nodes.append(ClusterNode(server))
                server.start()
            for node in self.nodes:
                node.node_id = node.call("CLUSTER", "MYID")
            addresses = [f"{n.host}:{n.port}" for n in self.nodes]
            result = subprocess.run(
                [cli, "--cluster", "create", *addresses, "--cluster-replicas", str(self.replicas_per_primary),
                 "--cluster-yes"],
                capture_output=True,
                timeout=self.startup_timeout,
                check=False,
            )  # fmt: skip
            if result.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed: {result.stdout.decode()[-2000:]}")
            self.wait_until_ready(self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every node by pid and remove their folders."""
        nodes, self.nodes = self.nodes, []
        for node in nodes:
            node.server.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- state -------------------------------------------------------------------------

    def alive_nodes(self) -> list[ClusterNode]:
        """The nodes whose process runs."""
        return [n for n in self.nodes if n.alive]

    def primaries(self) -> list[ClusterNode]:
        """The running nodes that are primaries now."""
        return [n for n in self.alive_nodes() if n.role == "master"]

    def node_by_id(self, node_id: str) -> ClusterNode:
        """The node with this cluster id."""
        return next(n for n in self.nodes if n.node_id == node_id)

    def owner_of_slot(self, slot: int) -> ClusterNode:
        """The primary that serves ``slot``, as the running nodes agree."""
        for node in self.alive_nodes():
            try:
                ranges = node.call("CLUSTER", "SLOTS")
            except (OSError, RuntimeError):
                continue
            for entry in ranges:
                if int(entry[0]) <= slot <= int(entry[1]):
                    port = int(entry[2][1])
                    return next(n for n in self.nodes if n.port == port)
        raise RuntimeError(f"no node serves slot {slot}")

    def primary_of(self, key: str | bytes) -> ClusterNode:
        """The primary that serves ``key``'s slot."""
        return self.owner_of_slot(key_slot(key))

    def _ready(self) -> bool:
        try:
            for node in self.alive_nodes():
                info = node.call("CLUSTER", "INFO", timeout=1.0)
                if "cluster_state:ok" not in info:
                    return False
                if node.role == "slave" and node.info().get("master_link_status") != "up":
                    return False
                lines = node.call("CLUSTER", "NODES", timeout=1.0).splitlines()
                if any(
                    ("fail" in line.split()[2] and "noaddr" not in line) for line in lines if self._alive_line(line)
                ):
                    return False
            return True
        except (OSError, RuntimeError, ConnectionError):
            return False

    def _alive_line(self, line: str) -> bool:
        port = int(line.split()[1].split("@")[0].rsplit(":", 1)[1] or 0)
        return any(n.port == port for n in self.alive_nodes())

    def wait_until_ready(self, timeout: float = 30.0) -> None:
        """Wait until every running node says ``cluster_state:ok`` and every replica is attached."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ready():
                return
            time.sleep(0.05)
        raise RuntimeError(f"the cluster was not ready within {timeout}s")

    # -- faults ------------------------------------------------------------------------

    def kill_primary_of(self, key: str | bytes) -> ClusterNode:
        """Kill (SIGKILL) the primary serving ``key`` and return it."""
        node = self.primary_of(key)
        node.server.kill()
        return node

    def wait_for_promotion(self, key: str | bytes, dead: ClusterNode, timeout: float = 20.0) -> ClusterNode:
        """Wait until a running primary other than ``dead`` serves ``key``'s slot and the cluster is ok."""
        deadline = time.monotonic() + timeout
        slot = key_slot(key)
        while time.monotonic() < deadline:
            try:
                owner = self.owner_of_slot(slot)
                if owner is not dead and owner.alive and owner.role == "master":
                    states = [n.call("CLUSTER", "INFO", timeout=1.0) for n in self.alive_nodes()]
                    if all("cluster_state:ok" in s for s in states):
                        return owner
            except (OSError, RuntimeError, ConnectionError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"no replica was promoted for slot {slot} within {timeout}s")

    def restart(self, node: ClusterNode) -> None:
        """Start a killed node again on its port (it rejoins with its nodes.conf, as a replica after a failover)."""
        node.server.start()

    def migrate_slot(self, slot: int, to_node: ClusterNode, *, batch: int = 100) -> int:
        """Move ``slot`` and its keys to ``to_node`` (a primary); returns the number of keys moved."""
        source = self.owner_of_slot(slot)
        if source is to_node:
            return 0
        to_node.call("CLUSTER", "SETSLOT", slot, "IMPORTING", source.node_id)
        source.call("CLUSTER", "SETSLOT", slot, "MIGRATING", to_node.node_id)
        moved = 0
        while True:
            keys = source.call("CLUSTER", "GETKEYSINSLOT", slot, batch)
            if not keys:
                break
            source.call("MIGRATE", to_node.host, to_node.port, "", 0, 5000, "REPLACE", "KEYS", *keys)
            moved += len(keys)
        # The new owner first, then the old one, then everyone else (as redis-cli does).
        for node in [to_node, source, *[n for n in self.primaries() if n not in (to_node, source)]]:
            node.call("CLUSTER", "SETSLOT", slot, "NODE", to_node.node_id)
        return moved

    def __repr__(self) -> str:
        return f"LocalCluster({[n.port for n in self.nodes]})"
