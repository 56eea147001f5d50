"""Prometheus export: a ``prometheus_client`` collector over :class:`CacheMetrics`.

``prometheus-client`` is an optional dependency (extra ``prometheus``): it is
imported only when a collector is registered or collected. Figures are read
at scrape time; nothing is copied on the command path.

Series (``{prefix}`` is the config's ``metrics_prefix``)::

    {prefix}_commands_total{command}            commands completed
    {prefix}_cache_hits_total                   reads that found a value
    {prefix}_cache_misses_total                 reads that found nothing
    {prefix}_errors_total{command,type}         failed commands, by error type
    {prefix}_command_duration_seconds{command}  latency histogram
    {prefix}_circuit_breaker_open               1 while the breaker is open
    {prefix}_circuit_breaker_transitions_total{to}
    ... and every counter, gauge and histogram recorded through the page's API
    {prefix}_connections_in_use                 read from the pool at scrape time
    {prefix}_connections_created
    {prefix}_connections_max
    {prefix}_circuit_breaker_state{state}       1 for the current state, else 0
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ..exceptions import ConfigurationError
from ..resilience.breaker import CircuitState
from .metrics import CacheMetrics, Histogram
from .source import Observed

__all__ = ["PrometheusCollector", "register_prometheus"]

_INVALID_NAME = re.compile(r"[^a-zA-Z0-9_:]")
_INVALID_LABEL = re.compile(r"[^a-zA-Z0-9_]")

_HELP: dict[str, str] = {
    "commands_total": "Redis commands completed, by command.",
    "cache_hits_total": "Repository reads that found a value.",
    "cache_misses_total": "Repository reads that found nothing.",
    "errors_total": "Failed Redis commands, by command and error type.",
    "command_duration_seconds": "Latency of Redis commands, by command.",
    "circuit_breaker_open": "1 while the circuit breaker is open, else 0.",
    "circuit_breaker_transitions_total": "Circuit breaker state changes, by new state.",
}


def _source(source: Observed | CacheMetrics) -> tuple[Observed | None, CacheMetrics | None, str]:
    """``(repository, metrics, default prefix)`` of what an exporter reads."""
    if isinstance(source, CacheMetrics):
        return None, source, source.prefix
    if isinstance(source, Observed):
        return source, source.metrics, source.config.metrics_prefix
    raise ConfigurationError(f"expected a RedisRepository or a CacheMetrics, got {type(source).__name__}")


def _metric_name(prefix: str, name: str) -> str:
    return _INVALID_NAME.sub("_", f"{prefix}_{name}")


def _label_name(name: str) -> str:
    cleaned = _INVALID_LABEL.sub("_", name)
    return f"_{cleaned}" if cleaned[:1].isdigit() else cleaned


class PrometheusCollector:
    """A collector for ``prometheus_client`` registries.

    ``source`` is a repository (its ``metrics`` when ``enable_metrics``, plus
    its pool and breaker, read at scrape time) or a bare :class:`CacheMetrics`.
    ``prefix`` defaults to the config's ``metrics_prefix`` (or the metrics'
    own prefix).
    """

    def __init__(self, source: Observed | CacheMetrics, *, prefix: str | None = None) -> None:
        self._repository, self._metrics, default_prefix = _source(source)
        chosen = default_prefix if prefix is None else prefix
        if not isinstance(chosen, str) or not chosen.isidentifier():
            raise ConfigurationError(f"metrics prefix must be an identifier, got {chosen!r}")
        self.prefix = chosen
        self.registry: Any = None  # where register_prometheus put it

    def unregister(self) -> None:
        """Remove this collector from the registry :func:`register_prometheus` added it to."""
        if self.registry is not None:
            self.registry.unregister(self)
            self.registry = None

    def describe(self) -> list[Any]:
        """The series known at registration, so a registry refuses a second collector with the same names."""
        return list(self.collect())

    def collect(self) -> Iterator[Any]:
        """Yield ``prometheus_client`` metric families (called by the registry at each scrape)."""
        from prometheus_client.core import Metric
        from prometheus_client.utils import floatToGoString

        prefix = self.prefix
        families: dict[str, Any] = {}

        def family(kind: str, name: str) -> Any:
            full = _metric_name(prefix, name)
            if kind == "counter" and full.endswith("_total"):
                full = full[: -len("_total")]  # the exposition adds it back to the samples
            found = families.get(full)
            if found is None:
                documentation = _HELP.get(name, f"{name} (neuroglia-redis)")
                found = families[full] = Metric(full, documentation, kind)
            return found

        if self._metrics is not None:
            for kind, name, labels, value in self._metrics.samples():
                label_map = {_label_name(k): v for k, v in labels}
                if kind == "counter":
                    metric = family("counter", name)
                    metric.add_sample(metric.name + "_total", label_map, float(value))
                elif kind == "gauge":
                    metric = family("gauge", name)
                    metric.add_sample(metric.name, label_map, float(value))
                else:
                    self._add_histogram(family("histogram", name), label_map, value, floatToGoString)
        repository = self._repository
        if repository is not None:
            pool = repository.connection_pool
            for name, value, documentation in (
                ("connections_in_use", pool.in_use_connections, "Pool connections lent to a running command."),
                ("connections_created", pool.created_connections, "Pool connections open (idle or in use)."),
                ("connections_max", pool.max_connections, "The connection pool's bound."),
            ):
                metric = Metric(_metric_name(prefix, name), documentation, "gauge")
                metric.add_sample(metric.name, {}, float(value))
                families[metric.name] = metric
            breaker = repository.circuit_breaker
            if breaker is not None:
                current = breaker.state
                metric = Metric(
                    _metric_name(prefix, "circuit_breaker_state"),
                    "The circuit breaker's state: 1 for the current one.",
                    "gauge",
                )
                for state in CircuitState:
                    metric.add_sample(metric.name, {"state": state.value}, 1.0 if state is current else 0.0)
                families[metric.name] = metric
        yield from families.values()

    @staticmethod
    def _add_histogram(metric: Any, labels: dict[str, str], histogram: Histogram, go: Any) -> None:
        counts = list(histogram.counts)  # a copy: the event loop may record meanwhile
        cumulative = 0
        for bound, n in zip((*histogram.buckets, float("inf")), counts, strict=True):
            cumulative += n
            metric.add_sample(metric.name + "_bucket", {**labels, "le": go(bound)}, float(cumulative))
        metric.add_sample(metric.name + "_count", labels, float(cumulative))
        metric.add_sample(metric.name + "_sum", labels, float(histogram.total))

    def __repr__(self) -> str:
        return f"PrometheusCollector(prefix={self.prefix!r})"


def register_prometheus(
    source: Observed | CacheMetrics, registry: Any = None, *, prefix: str | None = None
) -> PrometheusCollector:
    """Register a :class:`PrometheusCollector` for ``source`` in ``registry``; returns it.

    ``registry`` defaults to ``prometheus_client.REGISTRY``. Remove it with
    ``collector.unregister()``. Needs the ``prometheus`` extra.
    """
    try:
        import prometheus_client
    except ImportError as exc:
        raise ConfigurationError(
            "Prometheus export needs prometheus-client: pip install 'neuroglia-redis[prometheus]'"
        ) from exc
    collector = PrometheusCollector(source, prefix=prefix)
    # Any: prometheus_client types registries for its Collector base, which it calls by duck typing.
    target: Any = prometheus_client.REGISTRY if registry is None else registry
    target.register(collector)
    collector.registry = target
    return collector
