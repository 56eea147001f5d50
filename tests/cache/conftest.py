"""Fixtures of the cache suite.

``repo_factory`` and ``backend`` come from ``tests/conftest.py``: repositories
on the embedded ``memory://`` backend and on a private real ``redis-server``
(started once per session on a free loopback port, never the shared one),
sharing one flushed database per test, so the contract tests run the same
assertions on both. ``make_cache`` builds caches over them and closes every
one at the end of the test; ``clock`` is a :class:`FakeClock` for the tests of
expiry, refresh and fail-safe.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from neuroglia.data.redis import RedisCache, RedisRepository
from neuroglia.data.redis.testing import FakeClock

MakeCache = Callable[..., RedisCache]


@pytest.fixture
def clock() -> FakeClock:
    """A wall clock that moves only when the test says so."""
    return FakeClock(start=1_700_000_000.0)


@pytest.fixture
async def make_cache() -> AsyncIterator[MakeCache]:
    """Build caches over given repositories; every cache is closed after the test."""
    made: list[RedisCache] = []

    def make(repository: RedisRepository, namespace: str = "t", **settings: Any) -> RedisCache:
        cache = RedisCache(repository, namespace, **settings)
        made.append(cache)
        return cache

    yield make
    for cache in reversed(made):
        await cache.close()
