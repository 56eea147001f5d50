"""CacheMetrics: counters, gauges and latency histograms of cache operations.

Usable on its own, as the framework's page does (``CachePerformanceMonitor``
keeps its own counters), and fed automatically by a repository whose config
has ``enable_metrics=True`` (``repo.metrics``): commands by name, hits and
misses of reads, errors by type, latencies, and the breaker's state.

Every figure is readable both ways the page reads it: plainly
(``metrics.get_counter("cache_hit") + 1``) and awaited
(``await metrics.get_counter("cache_hit")``).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .awaitable import AwaitableFloat, AwaitableInt

__all__ = ["CacheMetrics", "Histogram"]

Labels = tuple[tuple[str, str], ...]

# Latency buckets in seconds: sub-millisecond resolution where Redis lives.
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


@dataclass(slots=True)
class Histogram:
    """Cumulative-bucket latency histogram (Prometheus style)."""

    buckets: tuple[float, ...] = DEFAULT_BUCKETS
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, value: float) -> None:
        """Record one observation."""
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.count += 1

    def quantile(self, q: float) -> float:
        """An estimate of the ``q`` quantile: the upper bound of its bucket."""
        if not self.count:
            return 0.0
        rank = q * self.count
        seen = 0
        for bound, n in zip((*self.buckets, float("inf")), self.counts, strict=True):
            seen += n
            if seen >= rank:
                return bound
        return float("inf")


_HIT: tuple[str, Labels] = ("cache_hits_total", ())
_MISS: tuple[str, Labels] = ("cache_misses_total", ())


def _labels(labels: Mapping[str, str] | None) -> Labels:
    return tuple(sorted(labels.items())) if labels else ()


class CacheMetrics:
    """Counters, gauges and histograms kept in process.

    ``prefix`` names the exported series (``{prefix}_cache_hits_total``...).
    Names given to :meth:`increment_counter` and :meth:`set_gauge` are free
    form, as on the framework's page.
    """

    def __init__(self, prefix: str = "redis_cache") -> None:
        self.prefix = prefix
        self._counters: dict[tuple[str, Labels], int] = {}
        self._gauges: dict[tuple[str, Labels], float] = {}
        self._histograms: dict[tuple[str, Labels], Histogram] = {}
        # Per command name: its counter key and latency histogram, so the hot
        # path builds no tuples (record_command runs once per command).
        self._per_command: dict[str, tuple[tuple[str, Labels], Histogram]] = {}

    # -- the page's API --------------------------------------------------------

    def increment_counter(self, name: str, value: int = 1, labels: Mapping[str, str] | None = None) -> AwaitableInt:
        """Add ``value`` to a counter; returns the new total (awaitable or not)."""
        key = (name, _labels(labels))
        total = self._counters.get(key, 0) + value
        self._counters[key] = total
        return AwaitableInt(total)

    def set_gauge(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> AwaitableFloat:
        """Set a gauge; returns the value (awaitable or not)."""
        self._gauges[(name, _labels(labels))] = float(value)
        return AwaitableFloat(value)

    def get_counter(self, name: str, labels: Mapping[str, str] | None = None) -> AwaitableInt:
        """A counter's value (0 if never incremented); with no ``labels``, summed over all labels."""
        if labels is None:
            return AwaitableInt(sum(v for (n, _), v in self._counters.items() if n == name))
        return AwaitableInt(self._counters.get((name, _labels(labels)), 0))

    def get_gauge(self, name: str, labels: Mapping[str, str] | None = None) -> AwaitableFloat:
        """A gauge's value (0.0 if never set)."""
        return AwaitableFloat(self._gauges.get((name, _labels(labels)), 0.0))

    def observe(self, name: str, seconds: float, labels: Mapping[str, str] | None = None) -> None:
        """Record a duration in a histogram."""
        key = (name, _labels(labels))
        histogram = self._histograms.get(key)
        if histogram is None:
            histogram = self._histograms[key] = Histogram()
        histogram.observe(seconds)

    def histogram(self, name: str, labels: Mapping[str, str] | None = None) -> Histogram | None:
        """A histogram, or ``None`` if nothing was observed under that name."""
        return self._histograms.get((name, _labels(labels)))

    @property
    def hit_ratio(self) -> float:
        """Hits / (hits + misses) of repository reads, 0.0 before any read."""
        hits = self.get_counter("cache_hits_total")
        total = hits + self.get_counter("cache_misses_total")
        return hits / total if total else 0.0

    def reset(self) -> None:
        """Forget every figure."""
        self._counters.clear()
        self._gauges.clear()
        self._histograms.clear()
        self._per_command.clear()

    # -- fed by the repository's execute path ----------------------------------

    def record_command(self, command: str, seconds: float, *, read: bool, hit: bool) -> None:
        """One successful command: its count, latency and, for reads, hit or miss."""
        entry = self._per_command.get(command)
        if entry is None:
            labels = (("command", command),)
            histogram = self._histograms.get(("command_duration_seconds", labels))
            if histogram is None:
                histogram = self._histograms[("command_duration_seconds", labels)] = Histogram()
            entry = self._per_command[command] = (("commands_total", labels), histogram)
        key, histogram = entry
        counters = self._counters
        counters[key] = counters.get(key, 0) + 1
        if read:
            key = _HIT if hit else _MISS
            counters[key] = counters.get(key, 0) + 1
        histogram.observe(seconds)

    def record_error(self, command: str, error: BaseException) -> None:
        """One failed command, counted by error type."""
        self.increment_counter("errors_total", labels={"command": command, "type": type(error).__name__})

    def record_lock_wait(self, seconds: float, *, acquired: bool) -> None:
        """One lock request: how long it waited, and whether it got the lock (else it timed out)."""
        outcome = "acquired" if acquired else "timeout"
        self.increment_counter("lock_acquisitions_total", labels={"outcome": outcome})
        self.observe("lock_wait_seconds", seconds, labels={"outcome": outcome})

    def record_lock_hold(self, seconds: float) -> None:
        """One lock released after being held ``seconds``."""
        self.observe("lock_hold_seconds", seconds)

    # -- export ------------------------------------------------------------------

    def samples(self) -> Iterator[tuple[str, str, Labels, Any]]:
        """Every series as ``(kind, name, labels, value)``; histograms yield a :class:`Histogram`."""
        for (name, labels), value in sorted(self._counters.items()):
            yield "counter", name, labels, value
        for (name, labels), gauge in sorted(self._gauges.items()):
            yield "gauge", name, labels, gauge
        for (name, labels), histogram in sorted(self._histograms.items(), key=lambda kv: kv[0]):
            yield "histogram", name, labels, histogram

    def snapshot(self) -> dict[str, Any]:
        """A plain dict of every figure, for logs and reports."""
        out: dict[str, Any] = {}
        for kind, name, labels, value in self.samples():
            label_text = ",".join(f"{k}={v}" for k, v in labels)
            key = f"{name}{{{label_text}}}" if label_text else name
            if kind == "histogram":
                out[key] = {
                    "count": value.count,
                    "sum": value.total,
                    "p50": value.quantile(0.5),
                    "p99": value.quantile(0.99),
                }
            else:
                out[key] = value
        out["hit_ratio"] = self.hit_ratio
        return out
