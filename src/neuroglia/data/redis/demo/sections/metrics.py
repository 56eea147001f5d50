"""The page's CachePerformanceMonitor, then what the run's repositories measured by themselves
(``enable_metrics=True``): hit ratio, commands, latencies, errors, locks, breaker, pool."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ... import CacheMetrics
from ...observability import Histogram
from ..context import DemoContext
from ..pizzeria import MENU, CachePerformanceMonitor
from ..report import ms

__all__ = ["metrics_section"]


def _merged(histograms: Iterable[Histogram]) -> Histogram:
    """One histogram holding every observation of ``histograms`` (same buckets)."""
    total = Histogram()
    for histogram in histograms:
        if histogram.buckets != total.buckets:
            continue
        total.counts = [a + b for a, b in zip(total.counts, histogram.counts, strict=True)]
        total.total += histogram.total
        total.count += histogram.count
    return total


@dataclass
class _Figures:
    """What a report needs from one or more :class:`CacheMetrics`."""

    commands: Counter[str] = field(default_factory=Counter)
    latency: dict[str, Histogram] = field(default_factory=dict)
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)
    hits: int = 0
    misses: int = 0
    lock_acquired: int = 0
    lock_timeouts: int = 0
    lock_wait: Histogram = field(default_factory=Histogram)
    lock_hold: Histogram = field(default_factory=Histogram)

    @classmethod
    def of(cls, metrics: Iterable[CacheMetrics]) -> _Figures:
        figures = cls()
        waits: list[Histogram] = []
        holds: list[Histogram] = []
        for m in metrics:
            for kind, name, labels, value in m.samples():
                label = dict(labels)
                if kind == "counter" and name == "commands_total":
                    figures.commands[label["command"]] += value
                elif kind == "counter" and name == "errors_total":
                    figures.errors[(label["type"], label["command"])] += value
                elif kind == "counter" and name == "lock_acquisitions_total":
                    if label["outcome"] == "acquired":
                        figures.lock_acquired += value
                    else:
                        figures.lock_timeouts += value
                elif kind == "histogram" and name == "command_duration_seconds":
                    command = label["command"]
                    figures.latency[command] = _merged([figures.latency.get(command, Histogram()), value])
                elif kind == "histogram" and name == "lock_wait_seconds" and label.get("outcome") == "acquired":
                    waits.append(value)
                elif kind == "histogram" and name == "lock_hold_seconds":
                    holds.append(value)
            figures.hits += m.get_counter("cache_hits_total")
            figures.misses += m.get_counter("cache_misses_total")
        figures.lock_wait = _merged(waits)
        figures.lock_hold = _merged(holds)
        return figures

    @property
    def hit_ratio(self) -> float:
        return self.hits / (self.hits + self.misses) if self.hits + self.misses else 0.0

    @property
    def all_latency(self) -> Histogram:
        return _merged(self.latency.values())


def _quantiles(histogram: Histogram) -> str:
    if not histogram.count:
        return "-"
    return f"{ms(histogram.quantile(0.5))} / {ms(histogram.quantile(0.99))}"


async def metrics_section(ctx: DemoContext) -> None:
    """The page's CachePerformanceMonitor, then what the repositories measured by themselves."""
    repo = ctx.repo
    metrics = repo.metrics
    ctx.check(metrics is not None, "the demo repository runs with enable_metrics=True")
    assert metrics is not None

    # The page's monitor, fed by hand, beside the repository's own counting.
    monitor = CachePerformanceMonitor(repo)
    reads = ["margherita", "pepperoni", "margherita", "quattro_stagioni", "pepperoni", "margherita"]
    await repo.delete_async([f"mario_pizzeria:menu:item:{item_id}" for item_id in set(reads)])
    hits_before, misses_before = metrics.get_counter("cache_hits_total"), metrics.get_counter("cache_misses_total")
    for item_id in reads:
        key = f"mario_pizzeria:menu:item:{item_id}"
        hit = await repo.get_async(key) is not None
        await monitor.track_cache_operation("get", key, hit=hit)
        if not hit:
            await repo.set_async(key, json.dumps(MENU[item_id]), expiration=timedelta(hours=24))
            await monitor.track_cache_operation("set", key)
    hits = metrics.get_counter("cache_hits_total") - hits_before
    misses = metrics.get_counter("cache_misses_total") - misses_before
    summary = await monitor.get_performance_summary()
    ctx.check(summary["cache_hits"] == 3 and summary["cache_misses"] == 3, "the monitor counts 3 hits, 3 misses")
    ctx.check(summary["hit_ratio"] == 0.5, "the monitor's hit ratio is 0.5")
    ctx.check((hits, misses) == (3, 3), "repo.metrics counted the same hits and misses by itself")
    ctx.check(summary["active_connections"] >= 1 and summary["memory_usage"] > 0, "pool and memory figures are read")
    ctx.table(
        ["get_performance_summary()", "value"],
        [[name, value] for name, value in summary.items()],
    )
    ctx.note("total_operations is 0 as on the page: its code counts cache_operations_get/_set,")
    ctx.note(
        f"never cache_operations_total (get: {monitor.metrics.get_counter('cache_operations_get')}, "
        f"set: {monitor.metrics.get_counter('cache_operations_set')})."
    )
    ctx.out.write("\n")

    # What the repositories measured by themselves over the whole run.
    everyone = [r.metrics for r in ctx.run.repositories if r.metrics is not None]
    own, run = _Figures.of([metrics]), _Figures.of(everyone)
    snapshot = metrics.snapshot()
    ctx.check(abs(snapshot["hit_ratio"] - own.hit_ratio) < 1e-9, "snapshot()['hit_ratio'] = hits / (hits + misses)")
    ctx.check(sum(own.commands.values()) == own.all_latency.count, "every counted command has its latency observed")
    breaker = repo.circuit_breaker
    transitions = Counter(
        {
            dict(labels)["to"]: value
            for kind, name, labels, value in metrics.samples()
            if kind == "counter" and name == "circuit_breaker_transitions_total"
        }
    )
    breaker_text = "off"
    if breaker is not None:
        breaker_text = (
            f"{breaker.state.value} (opened {breaker.opened_count}x, {sum(transitions.values())} transitions)"
        )
    pool = repo.connection_pool

    def both(own_value: Any, run_value: Any) -> list[Any]:
        return [own_value, run_value]

    ctx.table(
        ["figure", "demo repository", f"all {len(everyone)} repositories of the run"],
        [
            ["commands", *both(sum(own.commands.values()), sum(run.commands.values()))],
            ["reads: hits / misses", *both(f"{own.hits} / {own.misses}", f"{run.hits} / {run.misses}")],
            ["hit ratio", *both(f"{own.hit_ratio:.1%}", f"{run.hit_ratio:.1%}")],
            ["latency p50 / p99", *both(_quantiles(own.all_latency), _quantiles(run.all_latency))],
            ["errors", *both(sum(own.errors.values()), sum(run.errors.values()))],
            [
                "locks acquired / timed out",
                *both(f"{own.lock_acquired} / {own.lock_timeouts}", f"{run.lock_acquired} / {run.lock_timeouts}"),
            ],
            ["lock wait p50 / p99", *both(_quantiles(own.lock_wait), _quantiles(run.lock_wait))],
            ["lock hold p50 / p99", *both(_quantiles(own.lock_hold), _quantiles(run.lock_hold))],
            ["circuit breaker", breaker_text, ""],
            ["connections created", f"{pool.created_connections} of {pool.max_connections}", ""],
        ],
    )

    top = own.commands.most_common(10)
    rows: list[list[Any]] = [
        [command, count, ms(own.latency[command].quantile(0.5)), ms(own.latency[command].quantile(0.99))]
        for command, count in top
    ]
    rest = [c for c in own.commands if c not in dict(top)]
    if rest:
        rest_latency = _merged(own.latency[c] for c in rest)
        rows.append(
            [
                f"{len(rest)} other commands",
                sum(own.commands[c] for c in rest),
                ms(rest_latency.quantile(0.5)),
                ms(rest_latency.quantile(0.99)),
            ]
        )
    ctx.table(["command (demo repository)", "calls", "p50", "p99"], rows)

    if own.errors:
        ctx.table(
            ["error type (demo repository)", "command", "count"],
            [[kind, command, count] for (kind, command), count in sorted(own.errors.items())],
        )
    latency = own.all_latency
    peak = max(latency.counts)
    bounds = [*latency.buckets, float("inf")]
    bars = [
        [f"<= {ms(bound)}" if bound != float("inf") else "> 10 s", n, "#" * max(1, round(30 * n / peak))]
        for bound, n in zip(bounds, latency.counts, strict=True)
        if n
    ]
    ctx.table(["latency (all commands)", "calls", ""], bars)
    ctx.note(f"Latencies are histogram bucket bounds (prefix {metrics.prefix!r}); the same figures export to")
    ctx.note("Prometheus and OpenTelemetry (docs/framework.md, Metrics).")
