"""Fixtures of the lock suite: private redis-server processes, never the shared one.

The shared real server is the testing plugin's ``redis_server`` (private to
the session); tests that stop, pause or kill a server get their own
(``own_server``, ``three_servers``). The lock tests that run on both
backends use the root fixtures ``backend`` and ``repo_factory``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from neuroglia.data.redis.testing import RedisServer


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    """A private redis-server for one test, which it may stop, pause or restart."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def three_servers() -> Iterator[list[RedisServer]]:
    """Three independent private redis-servers (for Redlock)."""
    servers = [RedisServer() for _ in range(3)]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.close()
