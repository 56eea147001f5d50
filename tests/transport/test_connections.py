"""Opening connections: one shared attempt, backoff, health checks, keepalive, handshake, unix sockets."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import redis

from neuroglia.data.redis import (
    CacheAuthenticationError,
    CachePermissionError,
    CacheUnavailableError,
    Delivery,
)
from neuroglia.data.redis.testing import RedisServer
from tests.support.faults import outcome

if TYPE_CHECKING:
    from tests.support.transports import MakeTransport

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


class ConnectCounter:
    """Counts the transport's connect calls on the running loop (patched on the instance)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.calls = 0
        self._original = loop.create_connection

    def __enter__(self) -> ConnectCounter:
        original = self._original

        async def counting(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return await original(*args, **kwargs)

        self.loop.create_connection = counting  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        del self.loop.create_connection


@pytest.mark.both_loops
async def test_concurrent_callers_share_one_connect_attempt(server: RedisServer, make_transport: MakeTransport) -> None:
    transport = make_transport(server.url)
    with ConnectCounter(asyncio.get_running_loop()) as counter:
        replies = await asyncio.gather(*(transport.execute(("ECHO", f"m{i}")) for i in range(200)))
    assert replies == [f"m{i}".encode() for i in range(200)]
    assert counter.calls == 1
    server.kill()
    server.start()
    await asyncio.sleep(0.05)
    with ConnectCounter(asyncio.get_running_loop()) as counter:
        replies = await asyncio.gather(*(transport.execute(("ECHO", f"n{i}")) for i in range(200)))
    assert replies == [f"n{i}".encode() for i in range(200)]
    assert counter.calls == 1  # no connect storm after a restart


async def test_connect_attempts_to_a_dead_server_are_spaced_by_backoff(
    server: RedisServer, make_transport: MakeTransport
) -> None:
    transport = make_transport(server.url, socket_connect_timeout=0.5)
    await transport.execute(("PING",))
    server.kill()
    await asyncio.sleep(0.05)  # the loss is seen: later commands are never written
    loop = asyncio.get_running_loop()
    failures: list[Any] = []
    with ConnectCounter(loop) as counter:
        started = loop.time()
        while loop.time() - started < 1.0:  # bounded: one second of callers hammering
            failures.append(await outcome(transport.execute(("GET", "k"), loop.time() + 0.05)))
    assert all(isinstance(f, CacheUnavailableError) and f.delivery is Delivery.NOT_SENT for f in failures)
    assert len(failures) > 50
    # 20 ms doubling (with jitter) to 1 s: a handful of attempts in a second, not one per call.
    assert 2 <= counter.calls <= 10, counter.calls
    server.start()
    for _ in range(100):  # bounded: the backoff is at most 1 s
        result = await outcome(transport.execute(("PING",), loop.time() + 2.0))
        if result == b"PONG":
            break
    assert result == b"PONG"


async def test_an_idle_connection_is_pinged_before_reuse(server: RedisServer, make_transport: MakeTransport) -> None:
    transport = make_transport(server.url, health_check_interval=0.2)
    admin = redis.Redis(host=server.host, port=server.port, decode_responses=True)
    try:

        def pings() -> int:
            stats = admin.info("commandstats").get("cmdstat_ping", {})
            return int(stats.get("calls", 0))

        await transport.execute(("SET", "k", "v"))
        before = pings()
        assert await transport.execute(("GET", "k")) == b"v"  # busy: no check
        assert pings() == before
        await asyncio.sleep(0.5)
        assert await transport.execute(("GET", "k")) == b"v"  # idle past the interval: PING first
        assert pings() == before + 1
        # A connection that died while idle fails its check and is replaced before the command is sent.
        admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        await asyncio.sleep(0.5)
        assert await transport.execute(("INCR", "once")) == 1
    finally:
        admin.close()


async def test_keepalive_is_set_on_tcp_connections(server: RedisServer, make_transport: MakeTransport) -> None:
    transport = make_transport(server.url, socket_keepalive_options={socket.TCP_KEEPIDLE: 60})
    await transport.execute(("PING",))
    conn = transport._shared[0]
    assert conn is not None
    assert conn.transport is not None
    sock = conn.transport.get_extra_info("socket")
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 60


@pytest.mark.both_loops
@pytest.mark.parametrize("protocol", [2, 3])
async def test_the_handshake_sets_user_name_and_database(make_transport: MakeTransport, protocol: int) -> None:
    with RedisServer() as server:
        admin = redis.Redis(host=server.host, port=server.port, decode_responses=True)
        try:
            admin.execute_command("ACL", "SETUSER", "app", "on", ">s3cret", "~*", "+@all")
            url = f"redis://app:s3cret@{server.host}:{server.port}/5?protocol={protocol}"
            transport = make_transport(url, client_name=f"named-{protocol}")
            await transport.execute(("SET", "where", "db5"))
            info = (await transport.execute(("CLIENT", "INFO"))).decode()
            assert f"name=named-{protocol}" in info
            assert "db=5" in info
            assert "user=app" in info
            assert f"resp={protocol}" in info
            assert admin.execute_command("SELECT", 5)
            assert admin.get("where") == "db5"
            wrong = make_transport(f"redis://app:nope@{server.host}:{server.port}/0?protocol={protocol}")
            error = await outcome(wrong.execute(("PING",)))
            assert isinstance(error, CacheAuthenticationError), error
            assert error.delivery is Delivery.NOT_SENT
            assert "nope" not in str(error)
            admin.execute_command("ACL", "SETUSER", "nodb", "on", ">pw", "~*", "+@all", "-select")
            denied = make_transport(f"redis://nodb:pw@{server.host}:{server.port}/3?protocol={protocol}")
            error = await outcome(denied.execute(("PING",)))
            assert isinstance(error, CachePermissionError), error
            assert error.permission == "+select"
        finally:
            admin.close()


@pytest.mark.both_loops
async def test_unix_sockets(tmp_path: Path, make_transport: MakeTransport) -> None:
    path = tmp_path / "redis.sock"
    with RedisServer(args=["--unixsocket", str(path), "--unixsocketperm", "700"]):
        for _ in range(100):  # bounded: the socket appears as the server starts
            if path.exists():
                break
            await asyncio.sleep(0.01)
        transport = make_transport(f"unix://{path}?db=2", client_name="over-unix")
        assert await transport.execute(("SET", "k", "v")) == b"OK"
        assert await asyncio.gather(*(transport.execute(("GET", "k")) for _ in range(50))) == [b"v"] * 50
        assert "db=2" in (await transport.execute(("CLIENT", "INFO"))).decode()
        assert await transport.execute_blocking(("BLPOP", "none", 0.1), 0.1) is None
