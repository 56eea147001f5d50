"""RedisCache over a repository with a near cache: the coherent first level, on both backends.

A hit is answered in the process (``source == "local"``, nothing sent); a
set, remove or tag removal by another repository evicts it; this process's
own writes are never read stale; fail-safe still serves kept copies while
Redis is down, although the near cache itself is emptied.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from neuroglia.data.redis import RedisCache, RedisConfig, RedisRepository
from neuroglia.data.redis.cache import BoundedLocalStore
from neuroglia.data.redis.cache.near import NearCacheLocalStore
from neuroglia.data.redis.testing import RedisServer
from tests.nearcache.conftest import MakeCache
from tests.support.cache import Loader, eventually
from tests.support.repositories import RepositoryFactory

pytestmark = pytest.mark.timeout(60)


def hmgets(repo: RedisRepository) -> int:
    """How many entry reads the repository sent to Redis."""
    assert repo.metrics is not None
    return int(repo.metrics.get_counter("commands_total", {"command": "HMGET"}))


async def test_the_near_cache_is_the_first_level_and_answers_hits_locally(
    backend_url: str, repo_factory: RepositoryFactory, make_cache: MakeCache
) -> None:
    repo = await repo_factory(near_cache=True, enable_metrics=True)
    cache = make_cache(repo, "menu", default_expiration=60)
    assert isinstance(cache.local_store, NearCacheLocalStore)
    assert cache.local_store.coherent
    load = Loader({"name": "Margherita"})
    assert await cache.get_or_set_async("item", load) == {"name": "Margherita"}
    # Its own write is not tracked by Redis until read back: read once from Redis...
    first = await cache.get_or_set_entry_async("item", load)
    assert first.source == "redis"
    sent = hmgets(repo)
    # ... then answered in the process.
    for _ in range(3):
        hit = await cache.get_or_set_entry_async("item", load)
        assert hit.source == "local"
        assert hit.value == {"name": "Margherita"}
    assert await cache.get_async("item") == {"name": "Margherita"}
    assert hmgets(repo) == sent
    assert load.calls == 1
    stats = cache.statistics()
    assert stats.near_cache_hits == 4
    assert stats.hits == 5


async def test_its_own_writes_are_never_read_stale(
    backend_url: str, repo_factory: RepositoryFactory, make_cache: MakeCache
) -> None:
    repo = await repo_factory(near_cache=True)
    cache = make_cache(repo, "menu", default_expiration=60)
    for version in range(20):
        await cache.set_async("item", version, tags=["menu"])
        assert await cache.get_async("item") == version
        assert await cache.get_async("item") == version  # the second from the near cache
    await cache.remove_async("item")
    assert await cache.get_async("item") is None
    await cache.set_async("item", "tagged", tags=["menu"])
    assert await cache.get_async("item") == "tagged"
    assert await cache.get_async("item") == "tagged"
    assert await cache.remove_by_tag_async("menu") == 1
    assert await cache.get_async("item") is None
    await cache.set_async("item", "again")
    assert await cache.get_async("item") == "again"
    assert await cache.get_async("item") == "again"
    await cache.clear_async()
    assert await cache.get_async("item") is None


@pytest.mark.parametrize("change", ["set", "remove", "remove_by_tag", "expire"])
async def test_another_repositorys_change_evicts_the_copy(
    backend_url: str, repo_factory: RepositoryFactory, make_cache: MakeCache, change: str
) -> None:
    near_repo = await repo_factory(near_cache=True)
    other_repo = await repo_factory()
    here = make_cache(near_repo, "menu", default_expiration=60)
    there = make_cache(other_repo, "menu", default_expiration=60)
    await there.set_async("item", "v1", tags=["pizza"])
    assert await here.get_async("item") == "v1"
    assert (await here.get_entry_async("item")).source == "local"  # type: ignore[union-attr]
    expected: Any = None
    if change == "set":
        await there.set_async("item", "v2", tags=["pizza"])
        expected = "v2"
    elif change == "remove":
        await there.remove_async("item")
    elif change == "remove_by_tag":
        assert await there.remove_by_tag_async("pizza") == 1
    else:
        await there.expire_async("item")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while await here.get_async("item") != expected:
        assert loop.time() < deadline, f"{change} in another repository was not seen within 5 s"
        await asyncio.sleep(0.005)
    stats = here.statistics()
    assert stats.near_cache_invalidations >= 1


async def test_without_hmget_in_the_near_cache_the_cache_keeps_its_own_store(
    backend_url: str, backend_kind: str, repo_factory: RepositoryFactory, make_cache: MakeCache
) -> None:
    # On a cluster the cache's namespace is its hash tag: its entries are "{menu}:...".
    entries = "{menu}:" if backend_kind == "cluster" else "menu:"
    repo = await repo_factory(near_cache={"commands": ["GET"]})
    assert isinstance(make_cache(repo, "menu").local_store, BoundedLocalStore)
    outside = await repo_factory(key_prefix="app:", near_cache={"prefixes": ["sessions:"]})
    assert isinstance(make_cache(outside, "menu").local_store, BoundedLocalStore)
    inside = await repo_factory(key_prefix="app:", near_cache={"prefixes": [entries]})
    assert isinstance(make_cache(inside, "menu").local_store, NearCacheLocalStore)


async def test_a_closed_cache_stops_listening(backend_url: str, repo_factory: RepositoryFactory) -> None:
    repo = await repo_factory(near_cache=True)
    near = repo.near_cache
    assert near is not None
    cache = RedisCache(repo, "menu")
    assert len(near._listeners) == 1
    await cache.close()
    assert near._listeners == []


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with RedisServer() as private:
        yield private


@pytest.mark.integration
async def test_fail_safe_serves_kept_copies_while_redis_is_down(server: RedisServer) -> None:
    repo = RedisRepository(
        RedisConfig(url=server.url, near_cache=True, retry_policy={"retries": 0}, circuit_breaker=False)
    )
    cache = RedisCache(repo, "menu", default_expiration=60, fail_safe=True)
    try:
        load = Loader({"name": "Margherita"})
        await cache.get_or_set_async("item", load)
        assert (await cache.get_or_set_entry_async("item", load)).source == "redis"
        assert (await cache.get_or_set_entry_async("item", load)).source == "local"
        server.stop()
        near = repo.near_cache
        assert near is not None
        await eventually(lambda: len(near.store) == 0, within=5, what="the near cache is emptied")
        load.fail = RuntimeError("the database is down too")
        result = await cache.get_or_set_entry_async("item", load)
        assert result.value == {"name": "Margherita"}
        assert result.source == "local"  # the kept fail-safe copy
        assert result.error is not None
    finally:
        await cache.close()
        await repo.disconnect()
