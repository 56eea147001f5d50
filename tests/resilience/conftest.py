"""Fixtures of the resilience suite: private servers to break, a proxy, a fake clock.

Every fault test gets its own ``redis-server`` process (started by
:class:`~neuroglia.data.redis.testing.RedisServer` on a free loopback port,
without persistence) because the tests kill, pause and restart it; the shared
server on 6379 is never touched. ``REDIS_URL`` is ignored here for the same
reason: a test that kills its server must own it.
"""

from __future__ import annotations

import pytest

from tests.support.faults import FakeClock
from tests.support.servers import debug_server, proxy, server  # noqa: F401  (fixtures, by name)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
