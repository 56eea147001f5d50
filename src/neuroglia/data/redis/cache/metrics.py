"""The cache's figures and traces.

Figures go to a :class:`~neuroglia.data.redis.CacheMetrics`: the repository's
own when its config has ``enable_metrics=True`` (so they export to Prometheus
and OpenTelemetry with the repository's), else one the cache owns. Every series
carries the label ``cache=<namespace>``::

    rediscache_hits_total{cache, source}           fresh values served (source: redis, local)
    rediscache_misses_total{cache}                 calls that found no fresh value
    rediscache_stale_served_total{cache, reason}   stale values served by fail-safe
                                                   (reason: factory_error, soft_timeout,
                                                   hard_timeout, redis_unavailable, read,
                                                   throttle)
    rediscache_factory_runs_total{cache, outcome}  factory runs (outcome: ok, error, timeout)
    rediscache_factory_duration_seconds{cache}     how long factories ran (histogram)
    rediscache_stampede_waits_total{cache, scope}  callers that waited for another's factory
                                                   (scope: local = this process,
                                                   distributed = another process's lease)
    rediscache_eager_refreshes_total{cache, outcome}  background refreshes (ok, error, skipped)
    rediscache_tag_invalidations_total{cache}      remove_by_tag_async calls
    rediscache_tag_removed_entries_total{cache}    entries those calls deleted
    rediscache_redis_errors_total{cache, operation}  Redis unavailable during a cache call
    rediscache_near_cache_hits_total{cache}        entries the near cache answered (the coherent
                                                   first level, ``RedisConfig(near_cache=...)``)
    rediscache_near_cache_removals_total{cache, reason}  near-cache entries of the cache dropped
                                                   (reason: invalidated = changed in Redis,
                                                   written = by this process, evicted = size
                                                   bounds, expired, flushed)

Factory runs are traced as OpenTelemetry spans named ``cache.factory`` (with
``cache.namespace``, ``cache.key`` and ``cache.outcome``) when
``opentelemetry-api`` is installed; without it tracing costs nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ._library import CacheMetrics

__all__ = ["CacheInstruments", "CacheStatistics"]

try:  # optional: the otel extra
    from opentelemetry import trace as _trace
except ImportError:  # pragma: no cover - exercised only without opentelemetry-api
    _trace = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class CacheStatistics:
    """A snapshot of one cache's figures (see :meth:`RedisCache.statistics`)."""

    hits: int
    misses: int
    stale_served: int
    factory_runs: int
    factory_errors: int
    factory_timeouts: int
    stampede_waits_local: int
    stampede_waits_distributed: int
    eager_refreshes: int
    tag_invalidations: int
    tag_removed_entries: int
    redis_errors: int
    near_cache_hits: int = 0
    near_cache_evictions: int = 0
    """Near-cache entries of the cache dropped by its size bounds or their deadline."""
    near_cache_invalidations: int = 0
    """Near-cache entries of the cache dropped because they changed (in Redis or by this process)."""

    @property
    def hit_ratio(self) -> float:
        """Hits / (hits + misses); 0.0 before any call."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


# field -> (counter, labels it must have: a value, or one of several)
_STAT_SOURCES: dict[str, tuple[str, dict[str, str | tuple[str, ...]] | None]] = {
    "hits": ("rediscache_hits_total", None),
    "misses": ("rediscache_misses_total", None),
    "stale_served": ("rediscache_stale_served_total", None),
    "factory_runs": ("rediscache_factory_runs_total", None),
    "factory_errors": ("rediscache_factory_runs_total", {"outcome": "error"}),
    "factory_timeouts": ("rediscache_factory_runs_total", {"outcome": "timeout"}),
    "stampede_waits_local": ("rediscache_stampede_waits_total", {"scope": "local"}),
    "stampede_waits_distributed": ("rediscache_stampede_waits_total", {"scope": "distributed"}),
    "eager_refreshes": ("rediscache_eager_refreshes_total", {"outcome": "ok"}),
    "tag_invalidations": ("rediscache_tag_invalidations_total", None),
    "tag_removed_entries": ("rediscache_tag_removed_entries_total", None),
    "redis_errors": ("rediscache_redis_errors_total", None),
    "near_cache_hits": ("rediscache_near_cache_hits_total", None),
    "near_cache_evictions": ("rediscache_near_cache_removals_total", {"reason": ("evicted", "expired")}),
    "near_cache_invalidations": ("rediscache_near_cache_removals_total", {"reason": ("invalidated", "written")}),
}


def _matches(found: str | None, wanted: str | tuple[str, ...]) -> bool:
    return found == wanted if isinstance(wanted, str) else found in wanted


class CacheInstruments:
    """Records one cache's figures in a :class:`CacheMetrics` and traces its factories."""

    __slots__ = ("_hit_labels", "_labels", "_local_hit_labels", "_tracer", "metrics", "namespace")

    def __init__(self, metrics: CacheMetrics, namespace: str) -> None:
        self.metrics = metrics
        self.namespace = namespace
        self._labels = {"cache": namespace}
        self._hit_labels = {"cache": namespace, "source": "redis"}
        self._local_hit_labels = {"cache": namespace, "source": "local"}
        self._tracer: Any = _trace.get_tracer("neuroglia.data.redis.cache") if _trace is not None else None

    def _count(self, name: str, **labels: str) -> None:
        self.metrics.increment_counter(name, 1, {**self._labels, **labels})

    def hit(self, local: bool = False) -> None:
        """A fresh value served."""
        self.metrics.increment_counter(
            "rediscache_hits_total", 1, self._local_hit_labels if local else self._hit_labels
        )

    def miss(self) -> None:
        """No fresh value found."""
        self.metrics.increment_counter("rediscache_misses_total", 1, self._labels)

    def stale(self, reason: str) -> None:
        """A stale value served by fail-safe."""
        self._count("rediscache_stale_served_total", reason=reason)

    def factory(self, outcome: str, seconds: float) -> None:
        """One factory run finished (``ok``, ``error``, ``timeout``)."""
        self._count("rediscache_factory_runs_total", outcome=outcome)
        self.metrics.observe("rediscache_factory_duration_seconds", seconds, self._labels)

    def wait(self, scope: str) -> None:
        """A caller waited for another's factory (``local`` or ``distributed``)."""
        self._count("rediscache_stampede_waits_total", scope=scope)

    def eager_refresh(self, outcome: str) -> None:
        """A background refresh ended (``ok``, ``error``, ``skipped``)."""
        self._count("rediscache_eager_refreshes_total", outcome=outcome)

    def tag_invalidation(self, removed: int) -> None:
        """One ``remove_by_tag_async`` that deleted ``removed`` entries."""
        self.metrics.increment_counter("rediscache_tag_invalidations_total", 1, self._labels)
        self.metrics.increment_counter("rediscache_tag_removed_entries_total", removed, self._labels)

    def near_hit(self) -> None:
        """The near cache answered for an entry."""
        self.metrics.increment_counter("rediscache_near_cache_hits_total", 1, self._labels)

    def near_removed(self, reason: str, count: int) -> None:
        """``count`` near-cache entries of this cache were dropped, for ``reason``."""
        self.metrics.increment_counter(
            "rediscache_near_cache_removals_total", count, {**self._labels, "reason": reason}
        )

    def redis_error(self, operation: str) -> None:
        """Redis was unavailable during ``operation``."""
        self._count("rediscache_redis_errors_total", operation=operation)

    @contextlib.contextmanager
    def factory_span(self, key: str) -> Iterator[Any]:
        """An OpenTelemetry span around a factory run (a no-op without opentelemetry-api)."""
        if self._tracer is None:
            yield None
            return
        attributes = {"cache.namespace": self.namespace, "cache.key": key}
        with self._tracer.start_as_current_span("cache.factory", attributes=attributes) as span:
            yield span

    def statistics(self) -> CacheStatistics:
        """This cache's figures, summed over their other labels."""
        totals = dict.fromkeys(_STAT_SOURCES, 0)
        for kind, name, labels, value in self.metrics.samples():
            if kind != "counter":
                continue
            found = dict(labels)
            if found.get("cache") != self.namespace:
                continue
            for field, (wanted, subset) in _STAT_SOURCES.items():
                if name == wanted and (subset is None or all(_matches(found.get(k), v) for k, v in subset.items())):
                    totals[field] += int(value)
        return CacheStatistics(**totals)
