"""Fail-safe while Redis is unavailable: an in-process outage on both backends, and a real server stopped."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from neuroglia.data.redis import CacheUnavailableError, RedisCache, RedisConfig, RedisRepository
from neuroglia.data.redis.testing import FakeClock, RedisServer
from tests.support.cache import Faults, Loader, repository_with_outage

# Fail at once: no retries, a breaker that never opens (each call really tries).
QUICK: dict[str, Any] = {"retry_policy": {"retries": 0}, "circuit_breaker": False}


class Down(Exception):
    """The source of truth failing too."""


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
async def outage_repo(request: pytest.FixtureRequest) -> AsyncIterator[tuple[RedisRepository, Faults]]:
    if request.param == "memory":
        url = f"memory://cache-outage-{uuid.uuid4().hex}"
    else:
        url = request.getfixturevalue("redis_server").url
    switch = Faults()
    repo = repository_with_outage(url, switch, **QUICK)
    await repo.connect()
    await repo.flushdb()
    try:
        yield repo, switch
    finally:
        switch.outage = False
        await repo.disconnect()


@pytest.fixture
async def safe(outage_repo: tuple[RedisRepository, Faults], clock: FakeClock) -> AsyncIterator[RedisCache]:
    repo, _ = outage_repo
    async with RedisCache(repo, "menu", default_expiration=60, clock=clock, fail_safe=True) as cache:
        yield cache


async def test_a_fresh_copy_is_served_from_the_process_during_an_outage(
    safe: RedisCache, outage_repo: tuple[RedisRepository, Faults]
) -> None:
    _, switch = outage_repo
    load = Loader({"name": "Margherita"})
    await safe.get_or_set_async("item", load)
    switch.outage = True
    result = await safe.get_or_set_entry_async("item", load)
    assert result.value == {"name": "Margherita"}
    assert result.source == "local"
    assert not result.is_stale
    assert isinstance(result.error, CacheUnavailableError)
    assert load.calls == 1
    entry = await safe.get_entry_async("item")
    assert entry is not None
    assert entry.source == "local"
    assert isinstance(entry.error, CacheUnavailableError)
    assert safe.statistics().redis_errors == 2


async def test_a_stale_copy_is_served_when_redis_and_the_source_are_both_down(
    safe: RedisCache, outage_repo: tuple[RedisRepository, Faults], clock: FakeClock
) -> None:
    _, switch = outage_repo
    load = Loader("v1")
    await safe.get_or_set_async("item", load)
    clock.advance(61)
    switch.outage = True
    load.fail = Down("database down too")
    result = await safe.get_or_set_entry_async("item", load)
    assert result.value == "v1"
    assert result.is_stale
    assert result.source == "local"
    assert isinstance(result.error, Down)
    # A plain read serves it too, flagged, rather than raising.
    entry = await safe.get_entry_async("item")
    assert entry is not None
    assert entry.is_stale
    assert isinstance(entry.error, CacheUnavailableError)


async def test_without_a_copy_the_factory_runs_and_its_value_is_kept_for_the_outage(
    safe: RedisCache, outage_repo: tuple[RedisRepository, Faults]
) -> None:
    _, switch = outage_repo
    switch.outage = True
    load = Loader("computed")
    result = await safe.get_or_set_entry_async("item", load)
    assert result.value == "computed"
    assert result.source == "factory"
    assert isinstance(result.error, CacheUnavailableError)  # why it was not a hit
    again = await safe.get_or_set_entry_async("item", load)
    assert again.source == "local"
    assert load.calls == 1
    switch.outage = False
    assert await safe.get_async("item") is None  # it never reached Redis


async def test_plain_calls_raise_during_an_outage_without_a_copy(
    outage_repo: tuple[RedisRepository, Faults], clock: FakeClock
) -> None:
    repo, switch = outage_repo
    async with RedisCache(repo, "menu", default_expiration=60, clock=clock) as cache:
        await cache.set_async("item", "v")
        switch.outage = True
        with pytest.raises(CacheUnavailableError):
            await cache.get_async("item")
        with pytest.raises(CacheUnavailableError):
            await cache.set_async("item", "w")
        with pytest.raises(CacheUnavailableError):
            await cache.remove_by_tag_async("menu")
        load = Loader("computed")
        assert await cache.get_or_set_async("item", load) == "computed"  # never fails because Redis is unavailable
        assert await cache.get_or_set_async("item", load) == "computed"
        assert load.calls == 2  # no fail-safe, no in-process copy: each call computes


async def test_removals_during_an_outage_drop_the_process_copy(
    safe: RedisCache, outage_repo: tuple[RedisRepository, Faults]
) -> None:
    _, switch = outage_repo
    await safe.set_async("a", 1, tags=["menu"])
    await safe.set_async("b", 2, tags=["menu"])
    await safe.set_async("c", 3)
    switch.outage = True
    with pytest.raises(CacheUnavailableError):
        await safe.remove_async("c")
    with pytest.raises(CacheUnavailableError):
        await safe.remove_by_tag_async("menu")
    for key in ("a", "b", "c"):
        with pytest.raises(CacheUnavailableError):
            await safe.get_async(key)  # never the removed value from this process
    switch.outage = False
    assert await safe.get_async("c") == 3  # Redis was never told: the caller saw the error


async def test_the_process_copy_is_bounded(outage_repo: tuple[RedisRepository, Faults]) -> None:
    repo, switch = outage_repo
    async with RedisCache(repo, "menu", fail_safe=True, local_max_entries=3) as cache:
        for n in range(5):
            await cache.set_async(f"k{n}", n)
        assert len(cache.local_store) == 3  # type: ignore[arg-type]
        switch.outage = True
        assert await cache.get_async("k4") == 4
        with pytest.raises(CacheUnavailableError):
            await cache.get_async("k0")  # evicted, least recently used


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    """A private redis-server for one test, which it stops."""
    with RedisServer() as server:
        yield server


@pytest.mark.integration
async def test_a_stopped_server_falls_back_to_the_process_copy(own_server: RedisServer) -> None:
    config = RedisConfig(
        url=own_server.url,
        retry_policy={"retries": 0},
        operation_timeout=1.0,
        connection_pool={"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
    )
    repo = RedisRepository(config)
    try:
        async with RedisCache(repo, "menu", fail_safe=True) as cache:
            load = Loader({"name": "Diavola"})
            await cache.get_or_set_async("item", load)
            own_server.stop()
            result = await cache.get_or_set_entry_async("item", load)
            assert result.value == {"name": "Diavola"}
            assert result.source == "local"
            assert load.calls == 1
    finally:
        await repo.disconnect()
