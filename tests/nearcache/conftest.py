"""Fixtures of the near cache suite.

``repo_factory``, ``backend_url`` and ``redis_server`` come from
``tests/conftest.py`` (``memory://`` and a private real server);
``make_cache`` builds :class:`RedisCache` objects and closes them after the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from neuroglia.data.redis import RedisCache, RedisRepository

MakeCache = Callable[..., RedisCache]


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
