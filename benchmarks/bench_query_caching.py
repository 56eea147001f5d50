"""Benchmark: a cached query's hit path against the same query run by its handler, on one private server.

Run by hand (not part of the test suite)::

    .venv/bin/python benchmarks/bench_query_caching.py            # about 40 s: 9 rounds
    .venv/bin/python benchmarks/bench_query_caching.py --quick    # about 10 s
    .venv/bin/python benchmarks/bench_query_caching.py --json out.json

It starts its own ``redis-server`` (``neuroglia.data.redis.testing.RedisServer``,
a free loopback port, no persistence) and builds two applications of the
example service's pieces (``neuroglia.data.redis.demo.app``) on it, each with
its own ``RedisRepository`` (default settings): the menu's pizzas as
aggregates in ``RedisEntityRepository[Pizza, str]``, and ``GetMenuQuery``'s
handler, which reads them all (``get_all_async``: a ``ZSCAN`` of the type's
index and one pipelined round trip of ``HGET``\\ s, each document rebuilt from
its annotations) and returns ``OperationResult[MenuDto]``. Both run the query
through the framework's ``Mediator.execute_async``:

- **handler**: the application without the query caching behavior: every
  call runs the handler;
- **cached**: the same application with ``add_query_caching()``: after the
  first call, every call is a hit (one ``HMGET`` of the entry, the document
  rebuilt as ``OperationResult[MenuDto]``), and the handler never runs;
- **cache only** (an anchor, not a contender): the cache's own
  ``get_or_set_async`` hit of the same document, without the mediator and the
  behavior, to show what they add.

Per round: ``--calls`` calls per contender one at a time (sequential: the
cost of one call, round trips included), then the same from 20 concurrent
tasks. Each mode runs in slices (10 by default), the contenders alternating
slice by slice, the first one changing every round. The report gives ops/s
medians over rounds, the client CPU time per call, and the ratio cached /
handler (the ratio of medians and the median of per-round ratios).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from _machine import describe_machine, publish
from neuroglia.dependency_injection import ServiceCollection
from neuroglia.mediation import Mediator

from neuroglia.data.redis import RedisConfig, RedisRepository
from neuroglia.data.redis.demo.app.application import GetMenuHandler, GetMenuQuery
from neuroglia.data.redis.demo.app.domain import Pizza
from neuroglia.data.redis.integration import QueryCachingBehavior, RedisEntityRepository
from neuroglia.data.redis.integration._documents import DocumentCodec  # internals: the parts of a hit
from neuroglia.data.redis.integration._results import ResultCodec, declared_result
from neuroglia.data.redis.testing import RedisServer, redis_server_binary

CONCURRENCY = 20
MODES = (("seq", 1), ("conc", CONCURRENCY))
CONTENDERS = ("cached", "handler", "cache_only")
APPLICATION = "neuroglia.data.redis.demo.app.application"

TOPPINGS = ("tomato", "mozzarella", "basil", "ham", "mushrooms", "olives", "chili", "artichokes")


def menu(size: int) -> list[Pizza]:
    """``size`` pizzas, each with a name, a price and four toppings."""
    return [
        Pizza(f"Pizza {i:02d}", Decimal(f"{9 + i % 8}.{i % 100:02d}"), [TOPPINGS[(i + k) % 8] for k in range(4)])
        for i in range(size)
    ]


class _Builder:
    """Just what Mediator.configure needs of an application builder: its services."""

    def __init__(self) -> None:
        self.services = ServiceCollection()


def application(url: str, *, cached: bool) -> tuple[Any, Mediator, RedisRepository, QueryCachingBehavior | None]:
    """A provider with the example's menu handler, with or without the query caching behavior."""
    builder = _Builder()
    services: Any = builder.services
    services.add_redis_repository(RedisConfig(url=url, key_prefix="bench:"))
    services.add_redis_entity_repository(Pizza, str)
    if cached:
        services.add_query_caching()
    Mediator.configure(builder, [APPLICATION])  # type: ignore[arg-type]
    provider = services.build()
    behavior = provider.get_required_service(QueryCachingBehavior) if cached else None
    mediator = provider.get_required_service(Mediator)
    return provider, mediator, provider.get_required_service(RedisRepository), behavior


async def run(work: Callable[[], Awaitable[Any]], calls: int, concurrency: int) -> tuple[float, float]:
    """Wall and client CPU seconds of ``calls`` calls of ``work``, from ``concurrency`` tasks."""
    cpu = time.process_time()
    start = time.perf_counter()
    if concurrency == 1:
        for _ in range(calls):
            await work()
    else:

        async def worker(count: int) -> None:
            for _ in range(count):
                await work()

        share, extra = divmod(calls, concurrency)
        await asyncio.gather(*(worker(share + (1 if k < extra else 0)) for k in range(concurrency)))
    return time.perf_counter() - start, time.process_time() - cpu


async def measure(
    contenders: list[tuple[str, Callable[[], Awaitable[Any]]]], calls: int, slices: int, concurrency: int
) -> dict[str, tuple[float, float]]:
    """ops/s and client CPU µs/op per contender, the contenders alternating slice by slice."""
    per_slice = max(1, calls // slices)
    wall = {name: 0.0 for name, _ in contenders}
    cpu = {name: 0.0 for name, _ in contenders}
    gc.collect()
    for k in range(slices):
        for name, work in contenders if k % 2 == 0 else contenders[::-1]:
            spent, used = await run(work, per_slice, concurrency)
            wall[name] += spent
            cpu[name] += used
    total = per_slice * slices
    return {name: (total / wall[name], cpu[name] / total * 1e6) for name in wall}


async def bench(args: argparse.Namespace, url: str) -> dict[str, Any]:
    provider, cached_mediator, cached_redis, behavior = application(url, cached=True)
    _, handler_mediator, handler_redis, _ = application(url, cached=False)
    assert behavior is not None
    pizzas = RedisEntityRepository[Pizza, str](handler_redis, Pizza, str)
    for pizza in menu(args.menu):
        await pizzas.add_async(pizza)

    # Both give the same answer: the whole menu, as DTOs.
    by_handler = await handler_mediator.execute_async(GetMenuQuery())
    first = await cached_mediator.execute_async(GetMenuQuery())
    hit = await cached_mediator.execute_async(GetMenuQuery())
    if not (by_handler.data == first.data == hit.data and len(hit.data.pizzas) == args.menu):
        raise AssertionError("the cached query and its handler disagree")
    cache = behavior.cache
    document = await cache.get_async(behavior.key_for(GetMenuQuery()))

    async def cached() -> None:
        await cached_mediator.execute_async(GetMenuQuery())

    async def handler() -> None:
        await handler_mediator.execute_async(GetMenuQuery())

    async def never_called() -> Any:
        raise AssertionError("the entry was not cached")

    async def cache_only() -> None:
        await cache.get_or_set_async("anchor", never_called)

    await cache.set_async("anchor", document)
    contenders = [("cached", cached), ("handler", handler), ("cache_only", cache_only)]
    await measure(contenders, 300, 3, 1)  # warm-up: connections, scripts, converters, code paths
    runs_before = cache.statistics().factory_runs

    rounds: list[dict[str, float]] = []
    for n in range(args.rounds):
        order = contenders if n % 2 == 0 else contenders[::-1]
        row: dict[str, float] = {}
        for mode, concurrency in MODES:
            for name, (rate, cpu) in (await measure(order, args.calls, args.slices, concurrency)).items():
                row[f"{mode}_{name}"] = rate
                row[f"{mode}_cpu_{name}"] = cpu
        rounds.append(row)
        if not args.quiet:
            summary = ", ".join(f"{mode} {row[f'{mode}_cached'] / row[f'{mode}_handler']:.2f}x" for mode, _ in MODES)
            print(f"round {n + 1}/{args.rounds}: cached / handler: {summary}", file=sys.stderr)
    if cache.statistics().factory_runs != runs_before:
        raise AssertionError("the handler ran during the measured rounds: not every cached call was a hit")
    parts = cpu_parts(provider, document, args.rounds)
    await behavior.close()
    await cached_redis.disconnect()
    await handler_redis.disconnect()

    medians = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    return {
        "rounds": rounds,
        "median": medians,
        "ratio": {mode: medians[f"{mode}_cached"] / medians[f"{mode}_handler"] for mode, _ in MODES},
        "ratio_paired": {
            mode: statistics.median(r[f"{mode}_cached"] / r[f"{mode}_handler"] for r in rounds) for mode, _ in MODES
        },
        "document_bytes": len(json.dumps(document)),
        "cpu_parts_us": parts,
    }


def cpu_parts(provider: Any, document: Any, rounds: int, calls: int = 2000) -> dict[str, float]:
    """Two parts of a hit's client work, without I/O, in µs per call (medians over ``rounds``).

    ``resolve``: what the framework's mediator does for every request before
    the pipeline runs: a new scope, the handler built by the container with
    its scoped repository. ``rebuild``: the cached document rebuilt as
    ``OperationResult[MenuDto]`` by its annotations.
    """
    codec = ResultCodec(declared_result(GetMenuQuery), DocumentCodec())

    def resolve() -> None:
        provider.create_scope().get_service_provider().get_service(GetMenuHandler)

    def rebuild() -> None:
        codec.load(document)

    found: dict[str, float] = {}
    for name, work in (("resolve", resolve), ("rebuild", rebuild)):
        samples = []
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in range(calls):
                work()
            samples.append((time.perf_counter() - start) / calls * 1e6)
        found[name] = statistics.median(samples)
    return found


def report(result: dict[str, Any]) -> str:
    m = result["median"]
    lines = [
        f"{'':12} {'cached /s':>10} {'handler /s':>11} {'ratio':>7} {'paired':>7} {'cache only /s':>14}"
        f"   CPU us/op cached / handler / cache only",
    ]
    for mode, label in (("seq", "sequential"), ("conc", f"{CONCURRENCY} tasks")):
        lines.append(
            f"{label:12} {m[f'{mode}_cached']:>10.0f} {m[f'{mode}_handler']:>11.0f} {result['ratio'][mode]:>6.2f}x "
            f"{result['ratio_paired'][mode]:>6.2f}x {m[f'{mode}_cache_only']:>14.0f}   "
            f"{m[f'{mode}_cpu_cached']:.0f} / {m[f'{mode}_cpu_handler']:.0f} / {m[f'{mode}_cpu_cache_only']:.0f}"
        )
    lines.append(f"cached document: {result['document_bytes']} bytes of JSON")
    parts = result["cpu_parts_us"]
    lines.append(
        f"per hit, without I/O: the mediator resolving the handler {parts['resolve']:.0f} us, "
        f"rebuilding the result {parts['rebuild']:.0f} us"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--calls", type=int, default=2000, help="calls per contender, mode and round")
    parser.add_argument("--slices", type=int, default=10, help="alternating slices per mode")
    parser.add_argument("--menu", type=int, default=12, help="pizzas on the menu")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 500 calls")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.calls = 3, 500
    if redis_server_binary() is None:
        print("redis-server is not installed", file=sys.stderr)
        return 2
    started = time.time()
    with RedisServer() as server:
        result = asyncio.run(bench(args, server.url))
    result["machine"] = describe_machine()
    result["wall_seconds"] = round(time.time() - started, 1)
    result["settings"] = {
        "rounds": args.rounds,
        "calls": args.calls,
        "slices": args.slices,
        "menu": args.menu,
        "concurrency": CONCURRENCY,
    }
    publish(result, report(result), args.json, {**result["machine"], "wall_seconds": result["wall_seconds"]})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
