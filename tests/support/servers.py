"""Fixtures of the suites that break their server: a private ``redis-server`` per test and a proxy in front of it.

A conftest imports them by name (``from tests.support.servers import server,
debug_server, proxy``). Every test that kills, pauses or restarts its server
owns it: a ``redis-server`` on a free loopback port, without persistence,
stopped by pid.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from neuroglia.data.redis.testing import RedisServer
from tests.support.proxy import TcpProxy

__all__ = ["debug_server", "proxy", "server"]


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
