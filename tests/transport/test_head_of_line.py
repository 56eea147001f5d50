"""Head-of-line behaviour, as docs/transport.md states it.

A connection answers in order, so a command waits behind the replies queued
before it on its connection; the server runs one command at a time, so a
command that makes the server itself wait (``DEBUG SLEEP``, a long script)
delays every connection. The transport adds nothing to either: commands
issued during a server-wide stall complete as soon as it ends, and a command
that blocks only its own connection delays only what was queued behind it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from neuroglia.data.redis.testing import RedisServer

if TYPE_CHECKING:
    from tests.support.transports import MakeTransport

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60), pytest.mark.both_loops]

SLACK = 0.15  # scheduling noise on a loaded 2-core machine


async def test_commands_during_a_server_wide_sleep_complete_as_soon_as_it_ends(
    debug_server: RedisServer, make_transport: MakeTransport
) -> None:
    transport = make_transport(debug_server.url, socket_timeout=5.0)
    await transport.execute(("PING",))
    loop = asyncio.get_running_loop()
    sleeper = asyncio.create_task(transport.execute_blocking(("DEBUG", "SLEEP", "0.4"), 1))
    await asyncio.sleep(0.05)
    finished: list[float] = []

    async def echo(n: int) -> None:
        payload = f"during:{n}".encode()
        assert await transport.execute(("ECHO", payload)) == payload
        finished.append(loop.time())

    started = loop.time()
    waiting = asyncio.gather(*(echo(n) for n in range(100)))
    assert await sleeper == b"OK"
    woke = loop.time()
    await waiting
    assert woke - started >= 0.3  # the server really slept
    assert max(finished) - woke <= SLACK  # then everything queued meanwhile was answered at once


async def test_a_command_blocking_its_connection_delays_only_what_is_queued_behind_it(
    server: RedisServer, make_transport: MakeTransport
) -> None:
    # WAIT blocks its own client (no replica will ever acknowledge), not the server.
    transport = make_transport(server.url, multiplexed_connections=2, socket_timeout=5.0)
    await asyncio.gather(*(transport.execute(("PING",)) for _ in range(4)))
    loop = asyncio.get_running_loop()
    for _ in range(50):  # bounded: both shared connections open in the background
        if transport.pool_stats().created_connections == 2:
            break
        await asyncio.sleep(0.01)
    assert transport.pool_stats().created_connections == 2
    blocker = asyncio.create_task(transport.execute(("WAIT", 1, 400)))
    await asyncio.sleep(0.05)
    started = loop.time()
    times: list[float] = []

    async def echo(n: int) -> None:
        payload = f"m{n}".encode()
        assert await transport.execute(("ECHO", payload)) == payload
        times.append(loop.time() - started)

    # One at a time: each goes to the connection with fewer commands outstanding, the free one.
    for n in range(20):
        await echo(n)
    assert max(times) <= SLACK
    assert not blocker.done()
    assert await blocker == 0
    # With both busy, a command may queue behind WAIT on its connection: it completes when WAIT does.
    blocker = asyncio.create_task(transport.execute(("WAIT", 1, 300)))
    await asyncio.sleep(0.05)
    times.clear()
    started = loop.time()
    await asyncio.gather(*(echo(n) for n in range(20)))
    assert await blocker == 0
    behind = [t for t in times if t > SLACK]
    assert len(behind) < 20  # most went to the free connection
    assert all(t <= 0.3 + SLACK for t in times)
