"""A local Sentinel group for tests: one primary, one replica, three sentinels, on free loopback ports.

:class:`SentinelGroup` starts every process as a private ``redis-server``
(without persistence, stopped by pid), the sentinels from config files in a
temporary folder with short timings (``down-after-milliseconds`` 1000,
``failover-timeout`` 3000), so a failover completes in a few seconds::

    with SentinelGroup() as group:
        repo = RedisRepository(RedisConfig(url=group.url))
        group.kill_primary()
        group.wait_for_failover()   # a sentinel reports the replica as primary, and it says so
        group.restart_killed()      # the old primary comes back as a replica

The helpers talk to the processes with a tiny blocking RESP client of their
own, so they work from synchronous fixtures and from async tests alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

from .sentinel_server import SentinelServer, SentinelTls
from .server import RedisServer, free_port
from .wire import command, fields, info, wait_until

__all__ = ["SentinelGroup", "SentinelServer", "SentinelTls", "command"]


class SentinelGroup:
    """One primary, its replica and three sentinels, started together and stopped by pid.

    ``url`` is the group's ``redis+sentinel://`` URL. The data servers keep
    their ports across a kill and restart, so ``servers`` always holds both;
    which one is the primary changes with each failover (see :meth:`primary`).
    ``password`` protects the data servers (``requirepass``, ``masterauth``,
    and the sentinels' ``auth-pass``); ``sentinel_password`` the sentinels
    themselves (their ``requirepass``); ``url`` carries both. With ``tls``
    every server also listens on a TLS port, members talk TLS to each other,
    and ``url`` is a ``rediss+sentinel://`` URL on the TLS ports.
    """

    def __init__(
        self,
        service_name: str = "neuroglia",
        *,
        sentinels: int = 3,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
        password: str | None = None,
        sentinel_password: str | None = None,
        tls: SentinelTls | None = None,
        args: Sequence[str] = (),
    ) -> None:
        if sentinels < 1:
            raise ValueError("SentinelGroup needs at least one sentinel")
        self.service_name = service_name
        self.args = list(args)
        self._down_after_ms = down_after_ms
        self._failover_timeout_ms = failover_timeout_ms
        self._sentinel_count = sentinels
        # Diskless sync without its default 5 s wait for more replicas: a replica links up at once.
        self.args = ["--repl-diskless-sync-delay", "0", *self.args]
        self.password = password
        self.sentinel_password = sentinel_password
        if password is not None:
            self.args += ["--requirepass", password, "--masterauth", password]
        self.tls = tls
        # With TLS, clients and members use each server's TLS port; the kit's helpers its plain one.
        self._tls_ports: dict[int, int] = {}
        first = self._data_server(self.args)
        second = self._data_server([*self.args, "--replicaof", first.host, str(self.client_port(first))])
        self.servers: list[RedisServer] = [first, second]
        self.sentinels: list[SentinelServer] = []
        self._killed: RedisServer | None = None

    def _data_server(self, args: list[str]) -> RedisServer:
        server = RedisServer(args=args)
        if self.tls is not None:
            self._tls_ports[server.port] = free_port()
            server.args += self.tls.args(self._tls_ports[server.port])
        return server

    # -- addresses ---------------------------------------------------------------------

    def client_port(self, server: RedisServer) -> int:
        """The port clients use for ``server`` (its TLS port in a TLS group)."""
        return self._tls_ports.get(server.port, server.port)

    def _server_at(self, port: int) -> RedisServer | None:
        return next((s for s in [*self.servers, *self.sentinels] if port in (s.port, self.client_port(s))), None)

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """``(host, port)`` of every sentinel, as clients reach them (TLS ports in a TLS group)."""
        return [(s.host, self.client_port(s)) for s in self.sentinels]

    @property
    def url(self) -> str:
        """``redis+sentinel://[:password@]127.0.0.1:s1,127.0.0.1:s2,127.0.0.1:s3/<service_name>[?sentinel_password=...]``."""
        hosts = ",".join(f"{host}:{port}" for host, port in self.sentinel_addresses)
        credentials = f":{quote(self.password, safe='')}@" if self.password is not None else ""
        query = f"?sentinel_password={quote(self.sentinel_password, safe='')}" if self.sentinel_password else ""
        scheme = "rediss+sentinel" if self.tls is not None else "redis+sentinel"
        return f"{scheme}://{credentials}{hosts}/{self.service_name}{query}"

    def primary(self) -> RedisServer:
        """The data server the sentinels currently report as the primary."""
        host, port = self.primary_address()
        server = self._server_at(port)
        if server in self.servers:
            assert isinstance(server, RedisServer)
            return server
        raise RuntimeError(f"the sentinels report {host}:{port}, which is not one of the group's servers")

    def primary_address(self) -> tuple[str, int]:
        """The primary's address as the first answering sentinel reports it."""
        for sentinel in self.sentinels:
            try:
                reply = self._sentinel(sentinel.port, "SENTINEL", "get-master-addr-by-name", self.service_name)
            except OSError:
                continue
            if isinstance(reply, list) and len(reply) == 2:
                return reply[0].decode(), int(reply[1])
        raise RuntimeError(f"no sentinel reports a primary for {self.service_name!r}")

    # -- lifetime ----------------------------------------------------------------------

    def start(self) -> Self:
        """Start the primary, the replica (waiting for its link) and the sentinels (waiting until they see it)."""
        try:
            primary, replica = self.servers
            primary.start()
            replica.start()
            wait_until(
                lambda: b"master_link_status:up" in info(replica.port, "replication", self.password),
                10,
                "the replica to sync",
            )
            for _ in range(self._sentinel_count):
                sentinel = SentinelServer(
                    self.service_name,
                    (primary.host, self.client_port(primary)),
                    down_after_ms=self._down_after_ms,
                    failover_timeout_ms=self._failover_timeout_ms,
                    auth_pass=self.password,
                    requirepass=self.sentinel_password,
                )
                if self.tls is not None:
                    self._tls_ports[sentinel.port] = free_port()
                    sentinel.args += self.tls.args(self._tls_ports[sentinel.port])
                self.sentinels.append(sentinel)
                sentinel.start()
            wait_until(self._sentinels_ready, 15, "the sentinels to discover the replica and each other")
        except BaseException:
            self.close()
            raise
        return self

    def _sentinels_ready(self) -> bool:
        """Every sentinel knows the replica and the other sentinels: a failover can be voted."""
        for sentinel in self.sentinels:
            state = fields(self._sentinel(sentinel.port, "SENTINEL", "master", self.service_name))
            if (
                int(state.get(b"num-slaves", 0)) < 1
                or int(state.get(b"num-other-sentinels", 0)) < len(self.sentinels) - 1
            ):
                return False
        return True

    def stop(self) -> None:
        """Stop every process (sentinels first, so they do not react to the data servers stopping)."""
        for sentinel in self.sentinels:
            sentinel.stop()
        for server in self.servers:
            server.stop()

    def close(self) -> None:
        """Stop every process and remove their folders."""
        for sentinel in self.sentinels:
            sentinel.close()
        for server in self.servers:
            server.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- faults ------------------------------------------------------------------------

    def wait_ready(self, timeout: float = 15.0) -> None:
        """Wait until the primary has a linked replica (after a failover the old primary links up within ~10 s)."""
        wait_until(
            lambda: b"state=online" in info(self.primary().port, "replication", self.password),
            timeout,
            "the primary to have a linked replica",
        )

    def kill_primary(self) -> RedisServer:
        """Kill the current primary abruptly (SIGKILL) once a replica is linked to it; returns it.

        See :meth:`restart_killed`.
        """
        self.wait_ready()
        server = self.primary()
        server.kill()
        self._killed = server
        return server

    def wait_for_failover(self, timeout: float = 30.0) -> tuple[str, int]:
        """Wait until every sentinel reports a primary other than the killed one, and it answers ``ROLE`` master.

        Returns the new primary's address.
        """
        killed = self._killed
        if killed is None:
            raise RuntimeError("wait_for_failover() follows kill_primary()")
        return self.wait_for_new_primary(killed, timeout)

    def wait_for_new_primary(self, old: RedisServer, timeout: float = 30.0) -> tuple[str, int]:
        """Wait until every sentinel reports a primary other than ``old``, and it answers ``ROLE`` master.

        For faults other than a kill (``old.pause()``: a hung primary).
        Returns the new primary's address.
        """
        found: list[tuple[str, int]] = []

        def promoted() -> bool:
            addresses = {self._reported(sentinel) for sentinel in self.sentinels}
            if len(addresses) != 1:
                return False
            (address,) = addresses
            if address[1] == self.client_port(old):
                return False
            role = command(self._plain(address[1]), "ROLE", password=self.password)
            if not (isinstance(role, list) and role and role[0] == b"master"):
                return False
            found[:] = [address]
            return True

        wait_until(promoted, timeout, "the sentinels to promote the replica")
        return found[0]

    def failover(self, timeout: float = 30.0) -> tuple[str, int]:
        """A manual failover (``SENTINEL FAILOVER``): the primary is demoted, alive, and its replica promoted.

        Waits until every sentinel reports the new primary and it answers
        ``ROLE`` master; returns its address. The sentinels turn the old
        primary into a replica at their next look at it (``INFO``, every
        10 s), and promote only a replica they refreshed in the last 5 s, so
        a failover requested right after another may wait up to 10 s to be
        accepted.
        """
        old = self.primary_address()

        def started() -> bool:
            try:
                self._sentinel(self.sentinels[0].port, "SENTINEL", "FAILOVER", self.service_name)
            except RuntimeError as exc:
                # A replica the sentinel has not refreshed lately (every 10 s) is not
                # promoted, nor is one while an earlier failover is still settling.
                if str(exc).startswith(("NOGOODSLAVE", "INPROG")):
                    return False
                raise
            return True

        wait_until(started, timeout, "a sentinel to accept SENTINEL FAILOVER", retry_errors=False)
        found: list[tuple[str, int]] = []

        def promoted() -> bool:
            addresses = {self._reported(sentinel) for sentinel in self.sentinels}
            if len(addresses) != 1 or old in addresses:
                return False
            (address,) = addresses
            role = command(self._plain(address[1]), "ROLE", password=self.password)
            if isinstance(role, list) and role and role[0] == b"master":
                found[:] = [address]
                return True
            return False

        wait_until(promoted, timeout, "the manual failover")
        return found[0]

    def _plain(self, port: int) -> int:
        """The plain port of the server whose client port is ``port``."""
        server = self._server_at(port)
        return server.port if server is not None else port

    def _sentinel(self, port: int, *args: str) -> Any:
        return command(port, *args, password=self.sentinel_password)

    def _reported(self, sentinel: SentinelServer) -> tuple[str, int]:
        reply = self._sentinel(sentinel.port, "SENTINEL", "get-master-addr-by-name", self.service_name)
        return reply[0].decode(), int(reply[1])

    def restart_killed(self, timeout: float = 30.0) -> RedisServer:
        """Start the killed server again, as a replica of the current primary; waits for its link."""
        server = self._killed
        if server is None:
            raise RuntimeError("restart_killed() follows kill_primary()")
        self._killed = None
        return self.restart_as_replica(server, timeout)

    def restart_as_replica(self, server: RedisServer, timeout: float = 30.0) -> RedisServer:
        """Stop ``server`` (running, paused or dead) and start it as a replica of the current primary.

        Waits until it is linked and every sentinel sees it as a replica it
        could promote: the quick way back to a group that can fail over
        again (a demoted primary left running waits for the sentinels'
        next look, up to 10 s).
        """
        server.stop()
        host, port = self.primary_address()
        server.args = [*self.args, "--replicaof", host, str(port)]
        if self.tls is not None:
            server.args += self.tls.args(self._tls_ports[server.port])
        server.start()
        wait_until(
            lambda: b"master_link_status:up" in info(server.port, "replication", self.password),
            timeout,
            "the old primary to sync",
        )
        wait_until(
            lambda: self._replica_ready(server), timeout, "the sentinels to see the old primary as a healthy replica"
        )
        return server

    def _replica_ready(self, server: RedisServer) -> bool:
        """Every sentinel lists ``server`` as a replica it could promote (up, linked)."""
        for sentinel in self.sentinels:
            replicas = [
                fields(entry) for entry in self._sentinel(sentinel.port, "SENTINEL", "replicas", self.service_name)
            ]
            mine = [r for r in replicas if r.get(b"port") == str(self.client_port(server)).encode()]
            if not mine or mine[0].get(b"flags") != b"slave" or mine[0].get(b"master-link-status") != b"ok":
                return False  # the sentinels refresh a replica's state every 10 s
        return True

    def __repr__(self) -> str:
        return f"SentinelGroup({self.service_name!r}, servers={self.servers!r}, sentinels={self.sentinels!r})"
