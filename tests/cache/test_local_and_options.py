"""The in-process level (bounded LRU, the coherent-store seam) and option checks."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from neuroglia.data.redis import CacheOptions, InvalidArgumentError, RedisCache, RedisConfig, RedisRepository
from neuroglia.data.redis.cache import BoundedLocalStore, LocalStore
from neuroglia.data.redis.cache.entry import EntryMeta, StoredEntry
from tests.support.cache import Loader


def entry(size: int, tags: tuple[str, ...] = ()) -> StoredEntry:
    return StoredEntry(b"x" * size, EntryMeta(10, 10, 0), tags)


def test_the_store_is_bounded_by_entries_and_bytes() -> None:
    store = BoundedLocalStore(max_entries=3, max_bytes=100)
    for n in range(4):
        store.set(f"k{n}", entry(10))
    assert len(store) == 3
    assert store.get("k0") is None  # least recently used went first
    store.get("k1")  # used: now the most recent
    store.set("big", entry(80))
    assert store.size_bytes <= 100
    assert store.get("k1") is not None
    assert store.get("k2") is None
    store.set("k1", entry(200))  # too large to keep: the older copy goes too
    assert store.get("k1") is None
    assert isinstance(store, LocalStore)


def test_the_store_forgets_by_tag_and_clears() -> None:
    store = BoundedLocalStore()
    store.set("a", entry(1, ("menu",)))
    store.set("b", entry(1, ("menu", "pizza")))
    store.set("c", entry(1))
    assert store.remove_by_tag("menu") == 2
    assert [k for k in ("a", "b", "c") if store.get(k)] == ["c"]
    store.clear()
    assert len(store) == 0
    assert store.size_bytes == 0
    with pytest.raises(InvalidArgumentError, match="max_entries"):
        BoundedLocalStore(max_entries=0)


class CoherentStore(BoundedLocalStore):
    """Stands for a near cache kept coherent by invalidation (the seam's contract)."""

    coherent = True


@pytest.fixture
async def metered() -> AsyncIterator[RedisRepository]:
    repo = RedisRepository(RedisConfig(url=f"memory://cache-local-{uuid.uuid4().hex}", enable_metrics=True))
    try:
        yield repo
    finally:
        await repo.disconnect()


async def test_a_coherent_store_answers_reads_before_redis(metered: RedisRepository) -> None:
    async with RedisCache(metered, "near", local_store=CoherentStore()) as cache:
        load = Loader("v")
        await cache.get_or_set_async("k", load)  # written through to the store, without fail-safe
        assert metered.metrics is not None
        before = metered.metrics.get_counter("commands_total", {"command": "HMGET"})
        result = await cache.get_or_set_entry_async("k", load)
        assert result.source == "local"
        assert await cache.get_async("k") == "v"
        assert metered.metrics.get_counter("commands_total", {"command": "HMGET"}) == before
        await cache.remove_async("k")
        assert cache.local_store.get("k") is None
        assert await cache.get_async("k") is None


async def test_a_non_coherent_store_is_never_read_while_redis_answers(metered: RedisRepository) -> None:
    async with RedisCache(metered, "plain", fail_safe=True) as cache:
        await cache.set_async("k", "v1")
        assert cache.local_store.get("k") is not None
        other = RedisCache(metered, "plain")  # another process's write
        await other.set_async("k", "v2")
        await other.close()
        assert await cache.get_async("k") == "v2"


def test_options_are_checked_naming_the_field() -> None:
    for field, value, message in [
        ("expiration", 0, "expiration must be longer than 0"),
        ("expiration", -1, "expiration must be a finite duration"),
        ("expiration", "5m", "expiration must be a timedelta"),
        ("jitter_percent", 150, "jitter_percent must be in"),
        ("eager_refresh_threshold", 1.0, "eager_refresh_threshold must be in"),
        ("fail_safe", "yes", "fail_safe must be True or False"),
        ("tags", ["ok", ""], "non-empty str"),
        ("tags", ["a\x1fb"], "x1f"),
        ("xfetch_beta", -1, "xfetch_beta"),
    ]:
        with pytest.raises(InvalidArgumentError, match=message):
            CacheOptions(**{field: value})  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match=r"factory_soft_timeout .* longer than factory_hard_timeout"):
        CacheOptions(factory_soft_timeout=2, factory_hard_timeout=1)


def test_zero_and_none_mean_off() -> None:
    options = CacheOptions(
        lease=0, factory_hard_timeout=None, eager_refresh_threshold=0, fail_safe_throttle=0, jitter_percent=0
    )
    assert options.lease_s is None
    assert options.hard_timeout_s is None
    assert options.eager is None
    assert options.throttle_s is None
    assert options.jitter == 0
    assert CacheOptions(expiration=timedelta(minutes=2)).expiration_s == 120
    assert CacheOptions(tags=["a", "b", "a"]).tags == ("a", "b")
    assert CacheOptions().with_() is not None
