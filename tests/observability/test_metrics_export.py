"""Metrics: exact figures after a known sequence, and their export.

A repository with ``enable_metrics=True`` runs a fixed sequence of commands
on a private ``redis-server``; the counts of commands, hits, misses and
errors are then exact, and they read back the same through the Prometheus
text exposition (parsed with ``prometheus_client.parser``) and through
OpenTelemetry (an ``InMemoryMetricReader``). The page's
``CachePerformanceMonitor`` runs as written.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from neuroglia.data.redis import (
    CacheCommandError,
    CacheMetrics,
    CacheUnavailableError,
    CircuitBreakerPolicy,
    CircuitOpenError,
    ConfigurationError,
    DistributedLock,
    LockTimeoutError,
    PrometheusCollector,
    RedisConfig,
    RedisRepository,
    register_opentelemetry,
    register_prometheus,
)
from neuroglia.data.redis.demo.pizzeria import CachePerformanceMonitor
from neuroglia.data.redis.testing import FakeClock, RedisEndpoint, free_port

PREFIX = "pizzeria"


@pytest.fixture
async def measured(redis_server: RedisEndpoint) -> AsyncIterator[RedisRepository]:
    """A repository with metrics on, on a flushed database, after the known sequence below."""
    repo = redis_server.repository(enable_metrics=True, metrics_prefix=PREFIX)
    await repo.flushdb()
    assert repo.metrics is not None
    repo.metrics.reset()  # FLUSHDB above is not part of the sequence
    await known_sequence(repo)
    try:
        yield repo
    finally:
        await repo.disconnect()


async def known_sequence(repo: RedisRepository) -> None:
    await repo.set_async("a", "1")  # SET
    assert await repo.get_async("a") == "1"  # GET hit
    assert await repo.get_async("missing") is None  # GET miss
    assert await repo.get_async("a") == "1"  # GET hit
    await repo.hset_async("h", "f", "v")  # HSET
    assert await repo.hget_async("h", "f") == "v"  # HGET hit
    assert await repo.hget_async("h", "nope") is None  # HGET miss
    assert await repo.hgetall_async("no-hash") == {}  # HGETALL miss (an empty reply)
    assert await repo.hgetall_async("h") == {"f": "v"}  # HGETALL hit
    with pytest.raises(CacheCommandError):
        await repo.lpush_async("a", "x")  # WRONGTYPE: an error, not a command done


EXPECTED_COMMANDS = {"SET": 1, "GET": 3, "HSET": 1, "HGET": 2, "HGETALL": 2}
EXPECTED_HITS, EXPECTED_MISSES = 4, 3


async def test_exact_figures_after_a_known_sequence(measured: RedisRepository) -> None:
    metrics = measured.metrics
    assert metrics is not None
    for command, count in EXPECTED_COMMANDS.items():
        assert metrics.get_counter("commands_total", {"command": command}) == count, command
    assert metrics.get_counter("commands_total") == sum(EXPECTED_COMMANDS.values())
    assert metrics.get_counter("cache_hits_total") == EXPECTED_HITS
    assert await metrics.get_counter("cache_misses_total") == EXPECTED_MISSES
    assert metrics.hit_ratio == pytest.approx(4 / 7)
    assert metrics.get_counter("errors_total") == 1
    assert metrics.get_counter("errors_total", {"command": "LPUSH", "type": "CacheCommandError"}) == 1
    histogram = metrics.histogram("command_duration_seconds", {"command": "GET"})
    assert histogram is not None
    assert histogram.count == 3
    assert 0 < histogram.total < 1
    snapshot = metrics.snapshot()
    assert snapshot["commands_total{command=GET}"] == 3
    assert snapshot["hit_ratio"] == pytest.approx(4 / 7)


async def test_outages_and_the_breaker_are_counted(fake_clock: FakeClock) -> None:
    breaker = CircuitBreakerPolicy(failure_threshold=2, recovery_timeout=30, success_threshold=1, clock=fake_clock)
    config = RedisConfig(
        url=f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        enable_metrics=True,
        metrics_prefix=PREFIX,
        retry_policy={"retries": 0},
        circuit_breaker=breaker,
        connection_pool={"socket_connect_timeout": 1.0},
    )
    repo = RedisRepository(config)
    metrics = repo.metrics
    assert metrics is not None
    for _ in range(2):
        with pytest.raises(CacheUnavailableError) as caught:
            await repo.get_async("k")
        assert not isinstance(caught.value, CircuitOpenError)
    with pytest.raises(CircuitOpenError):
        await repo.get_async("k")  # fails fast: the breaker is open
    outage = type(caught.value).__name__
    assert metrics.get_counter("errors_total", {"command": "GET", "type": outage}) == 2
    assert metrics.get_counter("errors_total", {"command": "GET", "type": "CircuitOpenError"}) == 1
    assert metrics.get_counter("commands_total") == 0
    assert metrics.get_counter("cache_misses_total") == 0  # an outage is never a miss
    assert metrics.get_gauge("circuit_breaker_open") == 1.0
    assert metrics.get_counter("circuit_breaker_transitions_total", {"to": "open"}) == 1

    registry = CollectorRegistry()
    register_prometheus(repo, registry)
    assert sample_value(registry, f"{PREFIX}_circuit_breaker_state", state="open") == 1.0
    fake_clock.advance(30)
    assert sample_value(registry, f"{PREFIX}_circuit_breaker_state", state="half_open") == 1.0
    assert sample_value(registry, f"{PREFIX}_circuit_breaker_state", state="open") == 0.0
    await repo.disconnect()


async def test_lock_waits_and_hold_times(redis_server: RedisEndpoint) -> None:
    repo = redis_server.repository(enable_metrics=True, metrics_prefix=PREFIX)
    metrics = repo.metrics
    assert metrics is not None
    held = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with DistributedLock(repo, "metrics:lock", timeout=5):
            held.set()
            await release.wait()

    task = asyncio.create_task(holder())
    await held.wait()
    with pytest.raises(LockTimeoutError):
        await DistributedLock(repo, "metrics:lock", timeout=5, wait_timeout=0.05).acquire()
    release.set()
    await task
    assert metrics.get_counter("lock_acquisitions_total", {"outcome": "acquired"}) == 1
    assert metrics.get_counter("lock_acquisitions_total", {"outcome": "timeout"}) == 1
    timed_out = metrics.histogram("lock_wait_seconds", {"outcome": "timeout"})
    assert timed_out is not None
    assert timed_out.count == 1
    assert timed_out.total >= 0.04
    hold = metrics.histogram("lock_hold_seconds")
    assert hold is not None
    assert hold.count == 1
    assert hold.total >= 0.04  # held at least while the other waited
    await repo.disconnect()


# -- Prometheus ---------------------------------------------------------------------


def families_of(registry: CollectorRegistry) -> dict[str, Any]:
    text = generate_latest(registry).decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def sample_value(registry: CollectorRegistry, sample_name: str, **labels: str) -> float:
    for family in families_of(registry).values():
        for sample in family.samples:
            if sample.name == sample_name and sample.labels == labels:
                return float(sample.value)
    raise AssertionError(f"no sample {sample_name}{labels}")


async def test_prometheus_text_parses_back_to_the_same_figures(measured: RedisRepository) -> None:
    registry = CollectorRegistry()
    collector = register_prometheus(measured, registry)
    assert isinstance(collector, PrometheusCollector)
    assert collector.prefix == PREFIX
    families = families_of(registry)

    commands = families[f"{PREFIX}_commands"]
    assert commands.type == "counter"
    by_command = {s.labels["command"]: s.value for s in commands.samples if s.name.endswith("_total")}
    assert by_command == EXPECTED_COMMANDS
    assert sample_value(registry, f"{PREFIX}_cache_hits_total") == EXPECTED_HITS
    assert sample_value(registry, f"{PREFIX}_cache_misses_total") == EXPECTED_MISSES
    assert sample_value(registry, f"{PREFIX}_errors_total", command="LPUSH", type="CacheCommandError") == 1

    latency = families[f"{PREFIX}_command_duration_seconds"]
    assert latency.type == "histogram"
    get_buckets = [s for s in latency.samples if s.name.endswith("_bucket") and s.labels["command"] == "GET"]
    counts = [s.value for s in get_buckets]
    assert counts == sorted(counts)  # cumulative
    assert get_buckets[-1].labels["le"] == "+Inf"
    assert counts[-1] == 3
    assert sample_value(registry, f"{PREFIX}_command_duration_seconds_count", command="GET") == 3
    assert 0 < sample_value(registry, f"{PREFIX}_command_duration_seconds_sum", command="GET") < 1

    # Read from the pool and the breaker at scrape time.
    assert sample_value(registry, f"{PREFIX}_connections_in_use") == 0
    assert sample_value(registry, f"{PREFIX}_connections_created") >= 1
    assert sample_value(registry, f"{PREFIX}_connections_max") == measured.config.pool.max_connections
    assert sample_value(registry, f"{PREFIX}_circuit_breaker_state", state="closed") == 1
    assert families[f"{PREFIX}_circuit_breaker_state"].type == "gauge"

    # A scrape sees later commands without re-registering.
    await measured.get_async("a")
    assert sample_value(registry, f"{PREFIX}_cache_hits_total") == EXPECTED_HITS + 1
    await measured.disconnect()
    assert sample_value(registry, f"{PREFIX}_connections_created") == 0


async def test_prometheus_prefix_and_names(measured: RedisRepository) -> None:
    assert measured.metrics is not None
    measured.metrics.increment_counter("page views/total", labels={"menu-item": "margherita"})
    registry = CollectorRegistry()
    register_prometheus(measured, registry, prefix="custom")
    families = families_of(registry)
    assert "custom_commands" in families
    assert not any(name.startswith(f"{PREFIX}_") for name in families)
    assert sample_value(registry, "custom_page_views_total", menu_item="margherita") == 1
    with pytest.raises(ValueError, match="Duplicated"):
        register_prometheus(measured, registry, prefix="custom")  # one registry, one set of names
    with pytest.raises(ConfigurationError, match="identifier"):
        PrometheusCollector(measured, prefix="not a prefix")
    with pytest.raises(ConfigurationError, match="RedisRepository or a CacheMetrics"):
        PrometheusCollector("redis")  # type: ignore[arg-type]


async def test_a_repository_without_metrics_still_exports_pool_and_breaker(redis_repository: RedisRepository) -> None:
    registry = CollectorRegistry()
    register_prometheus(redis_repository, registry)
    await redis_repository.set_async("k", "v")
    families = families_of(registry)
    assert set(families) == {
        "redis_cache_connections_in_use",
        "redis_cache_connections_created",
        "redis_cache_connections_max",
        "redis_cache_circuit_breaker_state",
    }


def test_register_prometheus_defaults_to_the_global_registry() -> None:
    import prometheus_client

    metrics = CacheMetrics(prefix="neuroglia_redis_global_test")
    metrics.increment_counter("cache_hit", 2)
    collector = register_prometheus(metrics)
    try:
        assert prometheus_client.REGISTRY.get_sample_value("neuroglia_redis_global_test_cache_hit_total") == 2
    finally:
        collector.unregister()
    assert prometheus_client.REGISTRY.get_sample_value("neuroglia_redis_global_test_cache_hit_total") is None


# -- OpenTelemetry --------------------------------------------------------------------


def otel_points(reader: InMemoryMetricReader) -> dict[tuple[str, frozenset[tuple[str, Any]]], float]:
    data = reader.get_metrics_data()
    points: dict[tuple[str, frozenset[tuple[str, Any]]], float] = {}
    if data is None:
        return points
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    points[(metric.name, frozenset(point.attributes.items()))] = point.value
    return points


def point(points: dict[tuple[str, frozenset[tuple[str, Any]]], float], instrument: str, /, **attributes: str) -> float:
    return points[(instrument, frozenset(attributes.items()))]


async def test_opentelemetry_reads_back_through_an_in_memory_reader(measured: RedisRepository) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        export = register_opentelemetry(measured, provider.get_meter("neuroglia-redis-test"))
        assert export.prefix == PREFIX
        points = otel_points(reader)
        for command, count in EXPECTED_COMMANDS.items():
            assert point(points, f"{PREFIX}.commands", command=command) == count
        assert point(points, f"{PREFIX}.cache.hits") == EXPECTED_HITS
        assert point(points, f"{PREFIX}.cache.misses") == EXPECTED_MISSES
        assert point(points, f"{PREFIX}.errors", command="LPUSH", type="CacheCommandError") == 1
        assert point(points, f"{PREFIX}.command.duration.count", command="GET") == 3
        assert 0 < point(points, f"{PREFIX}.command.duration.sum", command="GET") < 1
        p99 = point(points, f"{PREFIX}.command.duration.quantile", command="GET", quantile="0.99")
        assert 0 < p99 <= 10
        assert point(points, f"{PREFIX}.connections.in_use") == 0
        assert point(points, f"{PREFIX}.connections.created") >= 1
        assert point(points, f"{PREFIX}.connections.max") == measured.config.pool.max_connections
        assert point(points, f"{PREFIX}.circuit_breaker.state") == 0  # closed

        assert measured.metrics is not None
        measured.metrics.increment_counter("cache_operations_get", labels={"source": "menu"})
        measured.metrics.set_gauge("cache_hit_ratio", 0.5)
        await measured.get_async("missing")
        points = otel_points(reader)
        assert point(points, f"{PREFIX}.cache.misses") == EXPECTED_MISSES + 1
        assert point(points, f"{PREFIX}.counter", name="cache_operations_get", source="menu") == 1
        assert point(points, f"{PREFIX}.gauge", name="cache_hit_ratio") == 0.5

        export.close()
        assert not any(name.startswith(f"{PREFIX}.") for name, _ in otel_points(reader))
    finally:
        provider.shutdown()


def test_opentelemetry_rejects_a_bad_prefix() -> None:
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    try:
        with pytest.raises(ConfigurationError, match="identifier"):
            register_opentelemetry(CacheMetrics(), provider.get_meter("t"), prefix="a b")
    finally:
        provider.shutdown()


# -- the page's CachePerformanceMonitor (neuroglia.data.redis.demo.pizzeria), as written ---------


async def test_the_page_cache_performance_monitor(redis_repository: RedisRepository) -> None:
    monitor = CachePerformanceMonitor(redis_repository)
    for key in ("margherita", "pepperoni", "margherita", "quattro_stagioni"):
        hit = await redis_repository.get_async(f"menu:{key}") is not None
        await monitor.track_cache_operation("get", key, hit=hit)
        if not hit:
            await redis_repository.set_async(f"menu:{key}", "{}")
            await monitor.track_cache_operation("set", key)

    summary = await monitor.get_performance_summary()
    assert summary["cache_hits"] == 1
    assert summary["cache_misses"] == 3
    assert summary["hit_ratio"] == 0.25
    # The page sums "cache_operations_total", a name its own code never increments.
    assert summary["total_operations"] == 0
    assert monitor.metrics.get_counter("cache_operations_get") == 4
    assert monitor.metrics.get_counter("cache_operations_set") == 3
    assert summary["active_connections"] >= 1
    assert summary["memory_usage"] > 0
    assert all(type(v) in (int, float) for v in summary.values())  # plain numbers after await

    # The monitor's own metrics export like the repository's.
    registry = CollectorRegistry()
    register_prometheus(monitor.metrics, registry, prefix="mario_pizzeria_redis")
    assert sample_value(registry, "mario_pizzeria_redis_cache_hit_total") == 1
    assert sample_value(registry, "mario_pizzeria_redis_cache_hit_ratio") == 0.25
