"""Fixtures of the resilience suite: private servers to break, a proxy, a fake clock.

Every fault test gets its own ``redis-server`` process (started by
:class:`~neuroglia.data.redis.testing.RedisServer` on a free loopback port,
without persistence) because the tests kill, pause and restart it; the shared
server on 6379 is never touched. ``REDIS_URL`` is ignored here for the same
reason: a test that kills its server must own it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from neuroglia.data.redis.testing import RedisServer
from tests.support.faults import FakeClock
from tests.support.proxy import TcpProxy


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server() -> Iterator[RedisServer]:
    """A private redis-server for one test, which the test may kill, pause and restart."""
    with RedisServer() as srv:
        yield srv


@pytest.fixture
def debug_server() -> Iterator[RedisServer]:
    """A private redis-server that accepts DEBUG from loopback clients."""
    with RedisServer(args=["--enable-debug-command", "local"]) as srv:
        yield srv


@pytest.fixture
async def proxy(server: RedisServer) -> AsyncIterator[TcpProxy]:
    """A delaying, cutting TCP proxy in front of ``server``."""
    p = await TcpProxy(server.host, server.port).start()
    try:
        yield p
    finally:
        await p.close()
