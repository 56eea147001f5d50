"""Metrics per cache (in the repository's CacheMetrics or the cache's own) and OpenTelemetry spans of factories."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from neuroglia.data.redis import CacheMetrics, RedisCache, RedisConfig, RedisRepository
from tests.support.cache import Loader


@pytest.fixture
async def metered() -> AsyncIterator[RedisRepository]:
    repo = RedisRepository(RedisConfig(url=f"memory://cache-obs-{uuid.uuid4().hex}", enable_metrics=True))
    try:
        yield repo
    finally:
        await repo.disconnect()


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """Finished spans, from an SDK tracer provider (installed once for the process)."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


async def test_figures_go_to_the_repositorys_metrics(metered: RedisRepository) -> None:
    async with RedisCache(metered, "menu") as cache:
        assert cache.metrics is metered.metrics
        load = Loader("v")
        await cache.get_or_set_async("k", load)
        await cache.get_or_set_async("k", load)
        await cache.set_async("t", 1, tags=["menu"])
        await cache.remove_by_tag_async("menu")
        labels = {"cache": "menu"}
        metrics = metered.metrics
        assert metrics is not None
        assert metrics.get_counter("rediscache_hits_total", {**labels, "source": "redis"}) == 1
        assert metrics.get_counter("rediscache_misses_total", labels) == 1
        assert metrics.get_counter("rediscache_factory_runs_total", {**labels, "outcome": "ok"}) == 1
        histogram = metrics.histogram("rediscache_factory_duration_seconds", labels)
        assert histogram is not None
        assert histogram.count == 1
        assert metrics.get_counter("rediscache_tag_invalidations_total", labels) == 1
        assert metrics.get_counter("rediscache_tag_removed_entries_total", labels) == 1
        # The repository's own command figures are there too (the cache's reads are HMGETs).
        assert metrics.get_counter("commands_total", {"command": "HMGET"}) >= 2
        stats = cache.statistics()
        assert (stats.hits, stats.misses, stats.factory_runs) == (1, 1, 1)
        assert stats.hit_ratio == 0.5


async def test_two_caches_on_one_repository_keep_their_figures_apart(metered: RedisRepository) -> None:
    async with RedisCache(metered, "a") as a, RedisCache(metered, "b") as b:
        await a.get_or_set_async("k", Loader(1))
        await b.get_or_set_async("k", Loader(2))
        await b.get_or_set_async("k", Loader(2))
        assert (a.statistics().hits, b.statistics().hits) == (0, 1)


async def test_a_cache_owns_its_metrics_when_the_repository_has_none() -> None:
    repo = RedisRepository(RedisConfig(url=f"memory://cache-obs-{uuid.uuid4().hex}"))
    try:
        async with RedisCache(repo, "menu") as cache:
            assert repo.metrics is None
            assert isinstance(cache.metrics, CacheMetrics)
            await cache.get_or_set_async("k", Loader(1))
            assert cache.statistics().misses == 1
        given = CacheMetrics("mine")
        async with RedisCache(repo, "other", metrics=given) as cache:
            await cache.get_or_set_async("k", Loader(1))
            assert given.get_counter("rediscache_misses_total", {"cache": "other"}) == 1
    finally:
        await repo.disconnect()


async def test_factory_runs_are_traced(metered: RedisRepository, spans: InMemorySpanExporter) -> None:
    spans.clear()
    async with RedisCache(metered, "traced") as cache:
        await cache.get_or_set_async("item:1", Loader("v"))
        failing = Loader("x")
        failing.fail = RuntimeError("source down")
        with pytest.raises(RuntimeError):
            await cache.get_or_set_async("item:2", failing)
    finished = [s for s in spans.get_finished_spans() if s.name == "cache.factory"]
    assert len(finished) == 2
    ok, error = sorted(finished, key=lambda s: str(s.attributes["cache.key"]))  # type: ignore[index]
    assert ok.attributes is not None
    assert dict(ok.attributes) == {"cache.namespace": "traced", "cache.key": "item:1", "cache.outcome": "ok"}
    assert error.attributes is not None
    assert error.attributes["cache.outcome"] == "error"
    assert [e.name for e in error.events] == ["exception"]
    assert not error.status.is_ok
