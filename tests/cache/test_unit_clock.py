"""Expiry, jitter, eager refresh, XFetch and fail-safe with an injected clock (memory://, no sleeping on expiry)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from neuroglia.data.redis import (
    CacheOptions,
    FactoryTimeoutError,
    RedisCache,
    RedisConfig,
    RedisRepository,
)
from neuroglia.data.redis.testing import FakeClock
from tests.support.cache import Item, Loader, eventually


@pytest.fixture
async def repo() -> AsyncIterator[RedisRepository]:
    repository = RedisRepository(RedisConfig(url=f"memory://cache-unit-{uuid.uuid4().hex}"))
    try:
        yield repository
    finally:
        await repository.disconnect()


@pytest.fixture
async def cache(repo: RedisRepository, clock: FakeClock) -> AsyncIterator[RedisCache]:
    async with RedisCache(repo, "unit", default_expiration=60, clock=clock) as c:
        yield c


class Boom(Exception):
    """A factory failure."""


# -- expiry ---------------------------------------------------------------------------


async def test_a_value_is_fresh_until_its_expiration_then_recomputed(cache: RedisCache, clock: FakeClock) -> None:
    load = Loader("v1")
    assert await cache.get_or_set_async("k", load) == "v1"
    clock.advance(59.9)
    assert await cache.get_or_set_async("k", load) == "v1"
    assert load.calls == 1
    load.value = "v2"
    clock.advance(0.2)
    assert await cache.get_async("k") is None  # expired: a plain read misses
    assert await cache.get_or_set_async("k", load) == "v2"
    assert load.calls == 2


async def test_per_call_expiration_overrides_the_default(cache: RedisCache, clock: FakeClock) -> None:
    await cache.set_async("short", 1, expiration=timedelta(seconds=5))
    await cache.set_async("default", 2)
    clock.advance(6)
    assert await cache.get_async("short") is None
    assert await cache.get_async("default") == 2


async def test_expiration_and_creation_times_are_reported(cache: RedisCache, clock: FakeClock) -> None:
    await cache.set_async("k", "v", expiration=30)
    entry = await cache.get_entry_async("k")
    assert entry is not None
    assert entry.created_at == pytest.approx(clock.now, abs=0.001)
    assert entry.expires_at == pytest.approx(clock.now + 30, abs=0.001)
    assert entry.source == "redis"
    assert not entry.is_stale


async def test_the_physical_ttl_covers_expiration_plus_staleness(repo: RedisRepository, clock: FakeClock) -> None:
    async with RedisCache(repo, "ttl", default_expiration=60, clock=clock) as plain:
        await plain.set_async("k", "v")
        assert 59_000 <= await repo.pttl_async("ttl:k") <= 60_000
    async with RedisCache(
        repo, "ttl2", default_expiration=60, clock=clock, fail_safe=True, fail_safe_max_staleness=600
    ) as safe:
        await safe.set_async("k", "v")
        assert 659_000 <= await repo.pttl_async("ttl2:k") <= 660_000


async def test_jitter_spreads_expirations_within_the_percentage(repo: RedisRepository, clock: FakeClock) -> None:
    async with RedisCache(repo, "jit", default_expiration=100, clock=clock, jitter_percent=20) as c:
        expirations = []
        for n in range(40):
            await c.set_async(f"k{n}", n)
            entry = await c.get_entry_async(f"k{n}")
            assert entry is not None
            assert entry.expires_at is not None
            expirations.append(entry.expires_at - clock.now)
    assert all(100 <= e <= 120.001 for e in expirations), expirations
    assert len({round(e, 3) for e in expirations}) > 30  # spread, not all equal


# -- eager refresh ------------------------------------------------------------------------


async def test_eager_refresh_recomputes_in_the_background_and_serves_the_old_value(
    cache: RedisCache, clock: FakeClock
) -> None:
    load = Loader("v1")
    options = cache.default_options.with_(eager_refresh_threshold=0.8)
    assert await cache.get_or_set_async("k", load, options=options) == "v1"
    clock.advance(47)  # 78 % of 60 s: not yet
    assert await cache.get_or_set_async("k", load, options=options) == "v1"
    await cache.drain_async()
    assert load.calls == 1
    load.value = "v2"
    clock.advance(2)  # 82 %: past the threshold
    assert await cache.get_or_set_async("k", load, options=options) == "v1"  # served at once
    await cache.drain_async()
    assert load.calls == 2
    entry = await cache.get_entry_async("k")
    assert entry is not None
    assert entry.value == "v2"
    assert entry.expires_at == pytest.approx(clock.now + 60, abs=0.001)  # a full expiration from the refresh
    assert cache.statistics().eager_refreshes == 1


async def test_one_refresh_at_a_time_per_key(cache: RedisCache, clock: FakeClock) -> None:
    load = Loader("v")
    await cache.get_or_set_async("k", load, eager_refresh_threshold=0.5)
    load.gate = asyncio.Event()
    clock.advance(31)
    for _ in range(20):
        assert await cache.get_or_set_async("k", load, eager_refresh_threshold=0.5) == "v"
    await eventually(lambda: load.calls == 2, what="the refresh started")
    load.gate.set()
    await cache.drain_async()
    assert load.calls == 2


async def test_a_failed_refresh_keeps_the_fresh_value(cache: RedisCache, clock: FakeClock) -> None:
    load = Loader("v1")
    await cache.get_or_set_async("k", load, eager_refresh_threshold=0.5, fail_safe=True)
    load.fail = Boom("source down")
    clock.advance(40)
    assert await cache.get_or_set_async("k", load, eager_refresh_threshold=0.5, fail_safe=True) == "v1"
    await cache.drain_async()
    assert load.calls == 2
    entry = await cache.get_entry_async("k")
    assert entry is not None
    assert entry.value == "v1"
    assert not entry.is_stale
    assert cache.metrics.get_counter("rediscache_eager_refreshes_total", {"cache": "unit", "outcome": "error"}) == 1


async def test_xfetch_refreshes_early_with_a_probability_growing_near_expiry(
    cache: RedisCache, clock: FakeClock
) -> None:
    async def slow_source() -> str:
        clock.advance(2.0)  # the factory "takes" 2 s of clock time: XFetch's delta
        return "v"

    draws = iter([0.5] * 1000)
    # -ln(1 - 0.5) = 0.69: refresh when within 0.69 * 2 s = 1.39 s of expiry
    cache._parts.timing.random = lambda: next(draws)
    await cache.get_or_set_async("k", slow_source, xfetch_beta=1.0)
    refreshes_before = cache.statistics().factory_runs
    clock.advance(58.5)  # 1.5 s before expiry (written when the factory returned)
    await cache.get_or_set_async("k", slow_source, xfetch_beta=1.0)
    await cache.drain_async()
    assert cache.statistics().factory_runs == refreshes_before
    clock.advance(0.2)  # 1.3 s before expiry
    await cache.get_or_set_async("k", slow_source, xfetch_beta=1.0)
    await cache.drain_async()
    assert cache.statistics().factory_runs == refreshes_before + 1


# -- fail-safe ------------------------------------------------------------------------------


@pytest.fixture
async def safe(repo: RedisRepository, clock: FakeClock) -> AsyncIterator[RedisCache]:
    async with RedisCache(
        repo,
        "safe",
        default_expiration=60,
        clock=clock,
        fail_safe=True,
        fail_safe_max_staleness=300,
        fail_safe_throttle=30,
    ) as c:
        yield c


async def test_a_failing_factory_is_answered_with_the_stale_value_flagged(safe: RedisCache, clock: FakeClock) -> None:
    load = Loader(Item("Margherita", 8.5))
    await safe.get_or_set_async("k", load, type_=Item)
    clock.advance(61)
    load.fail = Boom("database down")
    result = await safe.get_or_set_entry_async("k", load, type_=Item)
    assert result.value == Item("Margherita", 8.5)
    assert result.is_stale
    assert result.source == "redis"
    assert isinstance(result.error, Boom)
    assert safe.statistics().stale_served == 1
    assert safe.metrics.get_counter("rediscache_stale_served_total", {"cache": "safe", "reason": "factory_error"}) == 1


async def test_fail_safe_throttles_the_factory_after_a_failure(safe: RedisCache, clock: FakeClock) -> None:
    load = Loader("v1")
    await safe.get_or_set_async("k", load)
    clock.advance(61)
    load.fail = Boom("down")
    assert (await safe.get_or_set_entry_async("k", load)).is_stale
    assert load.calls == 2
    for _ in range(5):
        clock.advance(5)
        result = await safe.get_or_set_entry_async("k", load)
        assert result.value == "v1"
        assert result.is_stale
    assert load.calls == 2  # the throttle (30 s) keeps the failing factory quiet
    clock.advance(6)  # past the throttle
    load.fail = None
    load.value = "v2"
    result = await safe.get_or_set_entry_async("k", load)
    assert result.value == "v2"
    assert not result.is_stale
    assert load.calls == 3


async def test_no_stale_value_past_the_maximum_staleness(safe: RedisCache, clock: FakeClock) -> None:
    load = Loader("v1")
    await safe.get_or_set_async("k", load)
    clock.advance(60 + 301)
    load.fail = Boom("down")
    with pytest.raises(Boom):
        await safe.get_or_set_async("k", load)


async def test_without_fail_safe_the_factorys_error_is_raised_unchanged(cache: RedisCache, clock: FakeClock) -> None:
    load = Loader("v1")
    await cache.get_or_set_async("k", load)
    clock.advance(61)
    load.fail = Boom("down")
    with pytest.raises(Boom, match="down"):
        await cache.get_or_set_async("k", load)


async def test_soft_timeout_serves_stale_and_the_factory_finishes_in_the_background(
    safe: RedisCache, clock: FakeClock
) -> None:
    load = Loader("v1")
    await safe.get_or_set_async("k", load)
    clock.advance(61)
    load.value, load.delay = "v2", 0.3
    result = await safe.get_or_set_entry_async("k", load, factory_soft_timeout=0.02)
    assert result.value == "v1"
    assert result.is_stale
    assert isinstance(result.error, FactoryTimeoutError)
    await safe.drain_async()
    fresh = await safe.get_entry_async("k")
    assert fresh is not None
    assert fresh.value == "v2"
    assert not fresh.is_stale


async def test_soft_timeout_needs_a_stale_value(safe: RedisCache) -> None:
    load = Loader("v", delay=0.05)
    assert await safe.get_or_set_async("cold", load, factory_soft_timeout=0.01) == "v"


async def test_hard_timeout_without_stale_raises_and_the_result_is_still_stored(safe: RedisCache) -> None:
    load = Loader("late", delay=0.2)
    with pytest.raises(FactoryTimeoutError) as caught:
        await safe.get_or_set_async("k", load, factory_hard_timeout=0.02)
    assert caught.value.key == "k"
    assert isinstance(caught.value, TimeoutError)
    await safe.drain_async()
    assert await safe.get_async("k") == "late"


async def test_hard_timeout_without_background_completion_cancels_the_factory(safe: RedisCache) -> None:
    load = Loader("late", delay=5)
    with pytest.raises(FactoryTimeoutError):
        await safe.get_or_set_async("k", load, factory_hard_timeout=0.05, allow_background_completion=False)
    await asyncio.wait_for(safe.drain_async(), 2)
    assert await safe.get_async("k") is None
    assert safe.statistics().factory_timeouts == 1


async def test_hard_timeout_with_stale_serves_it(safe: RedisCache, clock: FakeClock) -> None:
    load = Loader("v1")
    await safe.get_or_set_async("k", load)
    clock.advance(61)
    load.delay = 0.3
    result = await safe.get_or_set_entry_async("k", load, factory_hard_timeout=0.02)
    assert result.is_stale
    assert result.value == "v1"
    assert safe.metrics.get_counter("rediscache_stale_served_total", {"cache": "safe", "reason": "hard_timeout"}) == 1


async def test_allow_stale_on_read(safe: RedisCache, clock: FakeClock) -> None:
    await safe.set_async("k", "old")
    clock.advance(70)
    assert await safe.get_async("k") is None
    entry = await safe.get_entry_async("k", allow_stale_on_read=True)
    assert entry is not None
    assert entry.value == "old"
    assert entry.is_stale


async def test_expire_keeps_a_fail_safe_value_as_stale(safe: RedisCache, cache: RedisCache) -> None:
    load = Loader("v1")
    await safe.get_or_set_async("k", load)
    assert await safe.expire_async("k")
    assert await safe.get_async("k") is None  # expired for normal reads
    load.fail = Boom("down")
    result = await safe.get_or_set_entry_async("k", load)
    assert result.value == "v1"
    assert result.is_stale
    # Without fail-safe retention, expiring removes the entry.
    await cache.set_async("plain", 1)
    assert await cache.expire_async("plain")
    assert not await cache.repository.exists_async("unit:plain")
    assert not await cache.expire_async("missing")


async def test_factory_context_adapts_expiration_and_tags(cache: RedisCache, clock: FakeClock) -> None:
    from neuroglia.data.redis import FactoryContext

    async def load(ctx: FactoryContext) -> str | None:
        assert ctx.key == "k"
        assert not ctx.has_stale_value
        ctx.expiration = timedelta(seconds=5)
        ctx.tags = ["short"]
        return "v"

    await cache.get_or_set_async("k", load)
    entry = await cache.get_entry_async("k")
    assert entry is not None
    assert entry.tags == ("short",)
    assert entry.expires_at == pytest.approx(clock.now + 5, abs=0.001)

    async def not_cached(ctx: FactoryContext) -> str:
        ctx.do_not_cache = True
        return "once"

    assert await cache.get_or_set_async("n", not_cached) == "once"
    assert await cache.get_async("n") is None


async def test_factory_context_sees_the_stale_value(safe: RedisCache, clock: FakeClock) -> None:
    from neuroglia.data.redis import FactoryContext

    await safe.set_async("k", {"etag": "abc", "body": 1})
    clock.advance(61)
    seen = []

    async def load(ctx: FactoryContext) -> dict[str, object]:
        seen.append(ctx.stale_value)
        return {"etag": "def", "body": 2}

    assert await safe.get_or_set_async("k", load) == {"etag": "def", "body": 2}
    assert seen == [{"etag": "abc", "body": 1}]


def test_options_defaults_are_fusioncache_like() -> None:
    options = CacheOptions()
    assert options.expiration_s == 300
    assert not options.fail_safe
    assert options.lease_s == 10
    assert options.soft_timeout_s is None
    assert options.hard_timeout_s is None
