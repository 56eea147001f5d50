"""Deadlines, the stall bound and lost connections: every caller gets an answer that says how far its command got."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
import redis

from neuroglia.data.redis import CacheException, CacheTimeoutError, CacheUnavailableError, Delivery
from neuroglia.data.redis.testing import RedisServer
from tests.support.faults import outcome
from tests.support.transports import MakeTransport, value_of

if TYPE_CHECKING:
    from proxy import TcpProxy

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90), pytest.mark.both_loops]

MARGIN = 0.75  # scheduling noise on a loaded 2-core machine


async def test_a_written_command_past_its_deadline_is_maybe_applied_and_its_late_reply_dropped(
    server: RedisServer, proxy: TcpProxy, make_transport: MakeTransport
) -> None:
    transport = make_transport(proxy.url, socket_timeout=5.0)
    await transport.execute(("SET", "k", value_of("k")))
    loop = asyncio.get_running_loop()
    proxy.hold_replies = True
    started = loop.time()
    result = await outcome(transport.execute(("INCR", "n"), loop.time() + 0.2))
    assert isinstance(result, CacheTimeoutError), result
    assert result.delivery is Delivery.MAYBE_APPLIED
    assert 0.2 * 0.9 <= loop.time() - started <= 0.2 + MARGIN
    proxy.hold_replies = False
    # The INCR's reply arrives now and is read and dropped: the next caller gets its own.
    assert await transport.execute(("GET", "k")) == value_of("k")
    assert await transport.execute(("GET", "n")) == b"1"  # it did run, once
    assert transport.pool_stats().in_use_connections == 0


async def test_a_command_still_buffered_at_its_deadline_is_not_sent_and_never_written(
    server: RedisServer, make_transport: MakeTransport
) -> None:
    # A frozen server stops reading: the socket's buffers fill, the transport pauses
    # writing, and later commands stay in the transport's own buffer.
    transport = make_transport(server.url, socket_timeout=None, max_in_flight=100_000)
    await transport.execute(("PING",))
    loop = asyncio.get_running_loop()
    server.pause()
    try:
        big = b"x" * (1 << 20)
        fillers = [asyncio.create_task(outcome(transport.execute(("SET", f"big{i}", big)))) for i in range(96)]
        await asyncio.sleep(0.3)
        conn = transport._shared[0]
        assert conn is not None
        assert conn._paused  # the socket said it is full
        result = await outcome(transport.execute(("SET", "marker", "written"), loop.time() + 0.2))
        assert isinstance(result, CacheTimeoutError), result
        assert result.delivery is Delivery.NOT_SENT
    finally:
        server.resume()
    await asyncio.wait_for(asyncio.gather(*fillers), 30)
    assert await transport.execute(("GET", "marker")) is None  # taken back before it was written
    assert await transport.execute(("EXISTS", "big95")) == 1


async def test_a_silent_connection_fails_everything_in_flight_at_once(
    server: RedisServer, make_transport: MakeTransport
) -> None:
    transport = make_transport(server.url, socket_timeout=0.3)
    await transport.execute(("PING",))
    loop = asyncio.get_running_loop()
    server.pause()
    try:
        started = loop.time()
        results = await asyncio.wait_for(
            asyncio.gather(*(outcome(transport.execute(("INCR", "n"))) for _ in range(50))), 10
        )
        elapsed = loop.time() - started
    finally:
        server.resume()
    assert all(isinstance(r, CacheTimeoutError) for r in results), results[:3]
    assert {r.delivery for r in results} == {Delivery.MAYBE_APPLIED}
    assert "no reply" in str(results[0])
    assert elapsed <= 0.3 + MARGIN  # a frozen server is detected, callers do not hang
    assert int(await transport.execute(("GET", "n")) or 0) <= 50  # a fresh connection works
    assert transport.pool_stats().created_connections == 1


async def test_a_killed_connection_fails_500_commands_in_flight_at_once(
    server: RedisServer, proxy: TcpProxy, make_transport: MakeTransport
) -> None:
    transport = make_transport(proxy.url, socket_timeout=30.0)
    await transport.execute(("PING",))
    loop = asyncio.get_running_loop()
    proxy.hold_replies = True
    tasks = [asyncio.create_task(outcome(transport.execute(("INCR", "n")))) for _ in range(500)]
    await asyncio.sleep(0.2)
    assert not any(task.done() for task in tasks)
    assert transport.pool_stats().in_use_connections == 1
    cut_at = loop.time()
    await proxy.cut_all()
    results = await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert loop.time() - cut_at < 1.0
    assert all(isinstance(r, CacheUnavailableError) for r in results), results[:3]
    assert {r.delivery for r in results} == {Delivery.MAYBE_APPLIED}  # written: they may have run
    proxy.hold_replies = False
    assert int(await transport.execute(("GET", "n"))) <= 500
    assert transport.pool_stats().in_use_connections == 0


async def test_a_client_kill_fails_the_commands_in_flight_and_the_next_ones_reconnect(
    debug_server: RedisServer, make_transport: MakeTransport
) -> None:
    transport = make_transport(debug_server.url, client_name="killed", socket_timeout=10.0)
    await transport.execute(("PING",))
    admin = redis.Redis(host=debug_server.host, port=debug_server.port)
    try:
        # The server sleeps inside a command of the admin connection, so ours pile up unanswered.
        sleeper = asyncio.create_task(asyncio.to_thread(admin.execute_command, "DEBUG", "SLEEP", "0.5"))
        await asyncio.sleep(0.1)
        tasks = [asyncio.create_task(outcome(transport.execute(("INCR", "n")))) for _ in range(500)]
        await sleeper
        admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        results = await asyncio.wait_for(asyncio.gather(*tasks), 10)
    finally:
        admin.close()
    # Some may have been answered before the kill; the others failed, maybe applied.
    failed = [r for r in results if isinstance(r, CacheException)]
    assert all(isinstance(r, CacheUnavailableError) and r.delivery is Delivery.MAYBE_APPLIED for r in failed)
    answered = [r for r in results if not isinstance(r, CacheException)]
    assert sorted(answered) == list(range(1, len(answered) + 1))
    assert await transport.execute(("ECHO", b"again")) == b"again"


async def test_deadlines_use_one_timer_per_connection_not_one_per_command(
    server: RedisServer, make_transport: MakeTransport
) -> None:
    loop = asyncio.get_running_loop()
    scheduled = getattr(loop, "_scheduled", None)
    if scheduled is None:
        # uvloop keeps its timers in libuv: count the transport's own instead.
        scheduled = []
    transport = make_transport(server.url)
    await transport.execute(("PING",))
    before = len(scheduled)
    tasks = [asyncio.create_task(transport.execute(("ECHO", b"x"), loop.time() + 5.0)) for _ in range(1000)]
    await asyncio.sleep(0)
    during = len(scheduled)
    conn = transport._shared[0]
    assert conn is not None
    assert conn._timer is not None  # the connection's one timer is armed
    await asyncio.gather(*tasks)
    assert during - before <= 2


async def test_cancellation_of_a_queued_or_written_command_never_desynchronises(
    server: RedisServer, proxy: TcpProxy, make_transport: MakeTransport
) -> None:
    transport = make_transport(proxy.url)
    proxy.reply_delay = 0.005
    for round_ in range(40):
        victims = [asyncio.create_task(transport.execute(("ECHO", f"victim{round_}:{i}"))) for i in range(20)]
        await asyncio.sleep(0.001 * (round_ % 8))
        for task in victims[::2]:
            task.cancel()
        payload = f"survivor{round_}".encode()
        assert await transport.execute(("ECHO", payload)) == payload
        for i, task in enumerate(victims):
            try:
                assert await task == f"victim{round_}:{i}".encode()
            except asyncio.CancelledError:
                assert i % 2 == 0
    assert transport.pool_stats().in_use_connections == 0
