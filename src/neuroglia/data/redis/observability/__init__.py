"""Observability: the repository's own metrics, their Prometheus and OpenTelemetry export, health checks.

:class:`CacheMetrics` is filled by the executor on every command (counts,
hit/miss, errors, latency histograms, breaker state, lock waits); the
exporters and :func:`check_health` read a repository through the small
protocols of :mod:`.source`, never by importing it.
"""

from .awaitable import AwaitableFloat, AwaitableInt
from .health import HealthReport, HealthStatus, check_health, format_report
from .metrics import CacheMetrics, Histogram
from .otel import OpenTelemetryExport, register_opentelemetry
from .prometheus import PrometheusCollector, register_prometheus
from .source import Observed

__all__ = [
    "AwaitableFloat",
    "AwaitableInt",
    "CacheMetrics",
    "HealthReport",
    "HealthStatus",
    "Histogram",
    "Observed",
    "OpenTelemetryExport",
    "PrometheusCollector",
    "check_health",
    "format_report",
    "register_opentelemetry",
    "register_prometheus",
]
