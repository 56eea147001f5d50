"""Back-pressure on the shared connection, the dedicated pool, and what pool_stats() reports."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from neuroglia.data.redis import (
    CacheException,
    CircuitState,
    Delivery,
    PoolExhaustedError,
    RedisConfig,
    RedisRepository,
)
from neuroglia.data.redis.testing import RedisServer
from tests.support.faults import outcome
from tests.support.transports import MakeTransport, value_of

if TYPE_CHECKING:
    from proxy import TcpProxy

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


@pytest.mark.both_loops
async def test_commands_in_flight_stay_within_max_in_flight(
    server: RedisServer, proxy: TcpProxy, make_transport: MakeTransport
) -> None:
    transport = make_transport(proxy.url, max_in_flight=16, pool_timeout=30.0)
    await transport.execute(("PING",))
    conn = transport._shared[0]
    assert conn is not None
    proxy.reply_delay = 0.002
    highest = 0
    done = False

    async def watch() -> None:
        nonlocal highest
        while not done:
            highest = max(highest, conn.inflight)
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    keys = [f"bp{i}" for i in range(600)]
    try:
        replies = await asyncio.wait_for(asyncio.gather(*(transport.execute(("ECHO", value_of(k))) for k in keys)), 60)
    finally:
        done = True
        await watcher
    assert replies == [value_of(k) for k in keys]
    assert 1 < highest <= 16  # bounded: the other callers waited for room
    assert conn.inflight == 0


@pytest.mark.both_loops
async def test_callers_waiting_for_room_longer_than_pool_timeout_get_pool_exhausted_not_sent(
    server: RedisServer, proxy: TcpProxy, make_transport: MakeTransport
) -> None:
    transport = make_transport(proxy.url, max_in_flight=4, pool_timeout=0.2, socket_timeout=10.0)
    await transport.execute(("PING",))
    proxy.hold_replies = True
    try:
        first = [asyncio.create_task(outcome(transport.execute(("INCR", "sent")))) for _ in range(4)]
        await asyncio.sleep(0.05)
        later = await asyncio.gather(*(outcome(transport.execute(("INCR", "never"))) for _ in range(10)))
    finally:
        proxy.hold_replies = False
    assert all(isinstance(r, PoolExhaustedError) and r.delivery is Delivery.NOT_SENT for r in later), later[:2]
    assert "max_in_flight" in str(later[0])
    assert await asyncio.gather(*first) == [1, 2, 3, 4]
    assert await transport.execute(("GET", "never")) is None  # none of the refused ones was written


async def test_congestion_does_not_open_the_breaker(server: RedisServer, proxy: TcpProxy) -> None:
    config = RedisConfig(
        url=proxy.url,
        connection_pool={"max_in_flight": 2, "pool_timeout": 0.1, "socket_timeout": 10.0},
        retry_policy={"retries": 0},
        operation_timeout=5.0,
    )
    async with RedisRepository(config) as repo:
        breaker = repo.circuit_breaker
        assert breaker is not None
        proxy.hold_replies = True
        try:
            holders = [asyncio.create_task(outcome(repo.get_async("held"))) for _ in range(2)]
            await asyncio.sleep(0.05)
            for _ in range(breaker.failure_threshold + 2):
                result = await outcome(repo.get_async("menu"))
                assert isinstance(result, PoolExhaustedError), result
            assert breaker.state is CircuitState.CLOSED
        finally:
            proxy.hold_replies = False
        assert await asyncio.gather(*holders) == [None, None]


async def test_blocking_commands_use_dedicated_connections_within_the_bound(
    server: RedisServer, make_transport: MakeTransport
) -> None:
    transport = make_transport(server.url, max_connections=4, pool_timeout=0.3)
    await transport.execute(("PING",))
    blocked = [asyncio.create_task(transport.execute_blocking(("BLPOP", f"q{i}", 2), 2)) for i in range(3)]
    await asyncio.sleep(0.2)
    stats = transport.pool_stats()
    assert stats.created_connections == 4  # one shared, three dedicated
    assert stats.in_use_connections == 3
    assert stats.max_connections == 4
    extra = await outcome(transport.execute_blocking(("BLPOP", "q9", 1), 1))
    assert isinstance(extra, PoolExhaustedError), extra  # the bound: no fifth connection
    # The shared connection still serves everyone else at once.
    assert await transport.execute(("RPUSH", "q0", "a")) == 1
    await transport.execute_many([("RPUSH", "q1", "b"), ("RPUSH", "q2", "c")], transaction=False)
    assert await asyncio.gather(*blocked) == [[b"q0", b"a"], [b"q1", b"b"], [b"q2", b"c"]]
    stats = transport.pool_stats()
    assert (stats.created_connections, stats.in_use_connections, stats.available_connections) == (4, 0, 4)


async def test_a_single_connection_is_lent_to_a_blocking_command_and_others_wait(
    server: RedisServer, make_transport: MakeTransport
) -> None:
    # max_connections=1 leaves no room for a dedicated connection: the blocking
    # command takes the shared one to itself, as a pool of one connection would.
    transport = make_transport(server.url, max_connections=1, pool_timeout=2.0)
    await transport.execute(("SET", "menu", "margherita"))
    loop = asyncio.get_running_loop()
    holder = asyncio.create_task(transport.execute_blocking(("BLPOP", "empty", 0.3), 0.3))
    await asyncio.sleep(0.05)
    started = loop.time()
    assert await transport.execute(("GET", "menu")) == b"margherita"
    assert loop.time() - started >= 0.15  # it waited for the BLPOP to end
    assert await holder is None
    assert transport.pool_stats().created_connections == 1


async def test_a_cancelled_blocking_command_does_not_leak_its_connection(
    server: RedisServer, make_transport: MakeTransport
) -> None:
    transport = make_transport(server.url, max_connections=2, pool_timeout=1.0)
    for _ in range(5):
        task = asyncio.create_task(transport.execute_blocking(("BLPOP", "never", 5), 5))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # Its reply might still come: the connection was closed, not given to the next borrower.
    await transport.execute(("RPUSH", "later", "x"))
    assert await transport.execute_blocking(("BLPOP", "later", 1), 1) == [b"later", b"x"]
    assert transport.pool_stats().in_use_connections == 0
    assert transport.pool_stats().created_connections <= 2


@pytest.mark.both_loops
async def test_a_watch_transaction_on_a_dedicated_session(server: RedisServer, make_transport: MakeTransport) -> None:
    transport = make_transport(server.url, max_connections=3)
    await transport.execute(("SET", "stock", 5))

    async def buy() -> list[Any] | None:
        async with transport.dedicated() as session:
            await session.execute(("WATCH", "stock"))
            left = int(await session.execute(("GET", "stock")))
            # Another client changes the watched key between the read and the transaction.
            await transport.execute(("DECRBY", "stock", 2))
            return await session.transaction([("SET", "stock", left - 1), ("GET", "stock")])

    assert await buy() is None  # the watched key changed: nothing ran
    assert await transport.execute(("GET", "stock")) == b"3"
    async with transport.dedicated() as session:
        await session.execute(("WATCH", "stock"))
        left = int(await session.execute(("GET", "stock")))
        assert await session.transaction([("SET", "stock", left - 1), ("GET", "stock")]) == [b"OK", b"2"]
        assert session.clean
    stats = transport.pool_stats()
    assert (stats.created_connections, stats.in_use_connections) == (2, 0)  # the session's connection is kept
    # A session left with a WATCH open is not given to the next borrower: it is closed.
    async with transport.dedicated() as session:
        await session.execute(("WATCH", "stock"))
        assert not session.clean
    assert transport.pool_stats().created_connections == 1
    # A refused command inside leaves it clean; EXECABORT is raised.
    async with transport.dedicated() as session:
        with pytest.raises(CacheException, match="unknown command"):
            await session.transaction([("SET", "a", 1), ("NOSUCHCOMMAND",)])
        assert session.clean
    assert await transport.execute(("GET", "a")) is None
