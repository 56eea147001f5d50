"""OpenTelemetry export: observable instruments over :class:`CacheMetrics`.

Only ``opentelemetry-api`` is needed (extra ``otel``); the application owns
the SDK, its meter provider and exporters. Every instrument is observable:
its callback reads the figures when the SDK collects, so the command path
records nothing twice.

Instruments (``{p}`` is the config's ``metrics_prefix``)::

    {p}.commands                     counter  {command}        commands completed
    {p}.cache.hits                   counter                   reads that found a value
    {p}.cache.misses                 counter                   reads that found nothing
    {p}.errors                       counter  {command, type}  failed commands
    {p}.command.duration.sum         counter  {command}        seconds spent, in total
    {p}.command.duration.count       counter  {command}        commands timed
    {p}.command.duration.quantile    gauge    {command, quantile} p50/p90/p99 estimates (s)
    {p}.counter                      counter  {name, ...}      every other counter
    {p}.gauge                        gauge    {name, ...}      every gauge
    {p}.histogram.sum / .count / .quantile  {name, ...}        every other histogram
    {p}.connections.in_use / .created / .max  gauge            the pool, read at collection
    {p}.circuit_breaker.state        gauge                     0 closed, 1 half-open, 2 open

OpenTelemetry has no observable histogram, hence sums, counts and quantile
estimates (bucket upper bounds) for latencies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..exceptions import ConfigurationError
from ..resilience.breaker import CircuitState
from .metrics import CacheMetrics, Histogram, Labels
from .prometheus import _source
from .source import Observed

__all__ = ["OpenTelemetryExport", "register_opentelemetry"]

QUANTILES: tuple[float, ...] = (0.5, 0.9, 0.99)
_BREAKER_VALUE = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}
# Counters with an instrument of their own: metric name -> (instrument suffix, description).
_COUNTERS: dict[str, tuple[str, str]] = {
    "commands_total": ("commands", "Redis commands completed, by command"),
    "cache_hits_total": ("cache.hits", "Repository reads that found a value"),
    "cache_misses_total": ("cache.misses", "Repository reads that found nothing"),
    "errors_total": ("errors", "Failed Redis commands, by command and error type"),
}
_DURATION = "command_duration_seconds"

Observe = Callable[[], Iterator[tuple[float, dict[str, str]]]]


class OpenTelemetryExport:
    """The instruments :func:`register_opentelemetry` created.

    OpenTelemetry cannot remove an instrument from a meter: :meth:`close`
    makes every callback report nothing from then on.
    """

    def __init__(self, source: Observed | CacheMetrics, meter: Any, prefix: str) -> None:
        self._repository, self._metrics, _ = _source(source)
        self.prefix = prefix
        self.closed = False
        self.instruments: list[Any] = []
        self._create(meter)

    def close(self) -> None:
        """Stop reporting (the instruments stay on the meter, silent)."""
        self.closed = True

    # -- reading -------------------------------------------------------------------

    def _samples(self, wanted: str) -> Iterator[tuple[str, Labels, Any]]:
        if self.closed or self._metrics is None:
            return
        for kind, name, labels, value in self._metrics.samples():
            if kind == wanted:
                yield name, labels, value

    def _counter(self, metric: str) -> Observe:
        def observe() -> Iterator[tuple[float, dict[str, str]]]:
            for name, labels, value in self._samples("counter"):
                if name == metric:
                    yield float(value), dict(labels)

        return observe

    def _other_counters(self) -> Iterator[tuple[float, dict[str, str]]]:
        for name, labels, value in self._samples("counter"):
            if name not in _COUNTERS:
                yield float(value), {**dict(labels), "name": name}

    def _gauges(self) -> Iterator[tuple[float, dict[str, str]]]:
        for name, labels, value in self._samples("gauge"):
            yield float(value), {**dict(labels), "name": name}

    def _histograms(self, duration: bool, part: str) -> Observe:
        def observe() -> Iterator[tuple[float, dict[str, str]]]:
            for name, labels, histogram in self._samples("histogram"):
                if (name == _DURATION) != duration:
                    continue
                attributes = dict(labels) if duration else {**dict(labels), "name": name}
                yield from _histogram_points(histogram, part, attributes)

        return observe

    def _pool(self, figure: str) -> Observe:
        def observe() -> Iterator[tuple[float, dict[str, str]]]:
            if self._repository is not None and not self.closed:
                yield float(getattr(self._repository.connection_pool, figure)), {}

        return observe

    def _breaker(self) -> Iterator[tuple[float, dict[str, str]]]:
        repository = self._repository
        if repository is not None and not self.closed and repository.circuit_breaker is not None:
            yield float(_BREAKER_VALUE[repository.circuit_breaker.state]), {}

    # -- instruments ---------------------------------------------------------------

    def _create(self, meter: Any) -> None:
        from opentelemetry.metrics import CallbackOptions, Observation

        def callback(observe: Observe) -> Callable[[CallbackOptions], Iterable[Observation]]:
            def run(options: CallbackOptions) -> Iterable[Observation]:
                return [Observation(value, attributes) for value, attributes in observe()]

            return run

        p = self.prefix

        def counter(name: str, observe: Observe, description: str, unit: str = "1") -> None:
            self.instruments.append(
                meter.create_observable_counter(f"{p}.{name}", [callback(observe)], unit=unit, description=description)
            )

        def gauge(name: str, observe: Observe, description: str, unit: str = "1") -> None:
            self.instruments.append(
                meter.create_observable_gauge(f"{p}.{name}", [callback(observe)], unit=unit, description=description)
            )

        for metric, (name, description) in _COUNTERS.items():
            counter(name, self._counter(metric), description)
        counter("command.duration.sum", self._histograms(True, "sum"), "Seconds spent in Redis commands", "s")
        counter("command.duration.count", self._histograms(True, "count"), "Redis commands timed")
        gauge("command.duration.quantile", self._histograms(True, "quantile"), "Command latency estimates", "s")
        counter("counter", self._other_counters, "Other neuroglia-redis counters, by name")
        gauge("gauge", self._gauges, "neuroglia-redis gauges, by name")
        counter("histogram.sum", self._histograms(False, "sum"), "Sums of other neuroglia-redis histograms")
        counter("histogram.count", self._histograms(False, "count"), "Counts of other neuroglia-redis histograms")
        gauge("histogram.quantile", self._histograms(False, "quantile"), "Quantile estimates of other histograms")
        gauge("connections.in_use", self._pool("in_use_connections"), "Pool connections lent to a running command")
        gauge("connections.created", self._pool("created_connections"), "Pool connections open (idle or in use)")
        gauge("connections.max", self._pool("max_connections"), "The connection pool's bound")
        gauge("circuit_breaker.state", self._breaker, "Circuit breaker state: 0 closed, 1 half-open, 2 open")

    def __repr__(self) -> str:
        return f"OpenTelemetryExport(prefix={self.prefix!r}, instruments={len(self.instruments)}, closed={self.closed})"


def _histogram_points(
    histogram: Histogram, part: str, attributes: dict[str, str]
) -> Iterator[tuple[float, dict[str, str]]]:
    if part == "sum":
        yield histogram.total, attributes
    elif part == "count":
        yield float(histogram.count), attributes
    elif histogram.count:
        for q in QUANTILES:
            yield histogram.quantile(q), {**attributes, "quantile": f"{q:g}"}


def register_opentelemetry(
    source: Observed | CacheMetrics, meter: Any, *, prefix: str | None = None
) -> OpenTelemetryExport:
    """Create observable instruments for ``source`` on ``meter`` (an OpenTelemetry ``Meter``).

    ``prefix`` defaults to the config's ``metrics_prefix``. Needs the ``otel``
    extra (``opentelemetry-api``); the SDK and exporters are the application's.
    """
    try:
        import opentelemetry.metrics  # noqa: F401
    except ImportError as exc:
        raise ConfigurationError(
            "OpenTelemetry export needs opentelemetry-api: pip install 'neuroglia-redis[otel]'"
        ) from exc
    _, _, default_prefix = _source(source)
    chosen = default_prefix if prefix is None else prefix
    if not isinstance(chosen, str) or not chosen.isidentifier():
        raise ConfigurationError(f"metrics prefix must be an identifier, got {chosen!r}")
    return OpenTelemetryExport(source, meter, chosen)
