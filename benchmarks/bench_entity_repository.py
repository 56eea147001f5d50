"""Benchmark: RedisEntityRepository against RedisHashRepository storing the same entity, on one private server.

Run by hand (not part of the test suite)::

    .venv/bin/python benchmarks/bench_entity_repository.py            # about a minute
    .venv/bin/python benchmarks/bench_entity_repository.py --quick    # about fifteen seconds
    .venv/bin/python benchmarks/bench_entity_repository.py --json out.json --check

It starts its own ``redis-server`` (``neuroglia.data.redis.testing.RedisServer``,
a free loopback port, no persistence) and stores the same entity, a flat
dataclass of eight attributes (text, numbers, a flag), with both:

- **entity**: ``RedisEntityRepository[Customer, str]``, the framework's
  ``Repository``: one document per entity in the envelope (a hash of
  ``data``), written by a Lua script that also keeps the index, read with
  ``HGET``, rebuilt from the class's annotations;
- **hash**: ``RedisHashRepository(repo, Customer)``: one hash field per
  attribute, each in the envelope, written with ``MULTI``/``DEL``/``HSET``/
  ``EXEC``, read with ``HGETALL``.

Both on the same ``RedisRepository`` (default settings). Per round and
contender: ``add_async`` of N new entities, ``get_async`` of each, then
``update_async`` of each, one call at a time (sequential: the cost of one
call, round trip included), then the same three from 20 concurrent tasks
(throughput). Each operation runs in slices (10 by default), the two
contenders alternating slice by slice, the first one changing every round;
the report gives ops/s medians over rounds, the client CPU time per call, and
the ratio entity / hash (target: at least 0.9, within 10 %).
Exit status is 0, or 1 with ``--check`` when the target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from _machine import describe_machine, publish

from neuroglia.data.redis import RedisConfig, RedisHashRepository, RedisRepository
from neuroglia.data.redis.integration import RedisEntityRepository
from neuroglia.data.redis.testing import RedisServer, redis_server_binary

TARGET = 0.9  # entity ops/s divided by hash ops/s, at least
OPERATIONS = ("add", "get", "update")
CONCURRENCY = 20


@dataclass
class Customer:
    id: str
    name: str
    email: str
    phone: str
    city: str
    loyalty_points: int
    balance: float
    vip: bool


def customer(i: int, tag: str) -> Customer:
    return Customer(
        id=f"{tag}-{i}",
        name=f"Customer {i}",
        email=f"customer{i}@mario-pizzeria.example",
        phone=f"+39 02 {i:07d}",
        city="Milano",
        loyalty_points=i % 500,
        balance=round(i * 1.37, 2),
        vip=i % 7 == 0,
    )


Store = Any  # either repository: add_async / get_async / update_async of Customer


async def run(work: Callable[[int], Awaitable[Any]], indices: range, concurrency: int) -> tuple[float, float]:
    """Wall and client CPU seconds of ``work(i)`` for every i of ``indices``."""
    cpu = time.process_time()
    start = time.perf_counter()
    if concurrency == 1:
        for i in indices:
            await work(i)
    else:

        async def worker(offset: int) -> None:
            for i in indices[offset::concurrency]:
                await work(i)

        await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return time.perf_counter() - start, time.process_time() - cpu


def operations(store: Store, entities: list[Customer]) -> dict[str, Callable[[int], Awaitable[Any]]]:
    """The three measured calls on ``store``, by index into ``entities``."""
    changed = [replace(c, loyalty_points=c.loyalty_points + 1) for c in entities]

    async def add(i: int) -> None:
        await store.add_async(entities[i])

    async def get(i: int) -> None:
        if await store.get_async(entities[i].id) is None:
            raise AssertionError("an entity written was not found")

    async def update(i: int) -> None:
        await store.update_async(changed[i])

    return {"add": add, "get": get, "update": update}


async def measure(
    contenders: list[tuple[str, Store]], tag: str, n: int, slices: int, concurrency: int
) -> dict[str, tuple[float, float]]:
    """ops/s and CPU µs/op per contender and operation, the contenders alternating slice by slice.

    Each operation runs over N entities in ``slices`` slices; slice k of one
    contender is followed by slice k of the other, so that a change in the
    machine's load lands on both.
    """
    calls = {name: operations(store, [customer(i, f"{tag}-{name}") for i in range(n)]) for name, store in contenders}
    bounds = [round(n * k / slices) for k in range(slices + 1)]
    results: dict[str, tuple[float, float]] = {}
    for op in OPERATIONS:
        wall = dict.fromkeys(calls, 0.0)
        cpu = dict.fromkeys(calls, 0.0)
        gc.collect()
        for k in range(slices):
            indices = range(bounds[k], bounds[k + 1])
            for name, _ in contenders if k % 2 == 0 else contenders[::-1]:
                spent, used = await run(calls[name][op], indices, concurrency)
                wall[name] += spent
                cpu[name] += used
        for name in calls:
            results[f"{op}_{name}"] = (n / wall[name], cpu[name] / n * 1e6)
    return results


async def bench(args: argparse.Namespace, url: str) -> dict[str, Any]:
    repo = RedisRepository(RedisConfig(url=url))
    await repo.connect()
    contenders: dict[str, Store] = {
        "entity": RedisEntityRepository[Customer, str](repo, Customer, str, key_prefix="entity"),  # type: ignore[type-var]
        "hash": RedisHashRepository(repo, Customer, key_prefix="hash"),
    }
    # Both give back what they were given.
    probe = customer(1, "probe")
    for store in contenders.values():
        await store.add_async(probe)
        if await store.get_async(probe.id) != probe:
            raise AssertionError(f"{type(store).__name__} did not round-trip the entity")
    # Warm-up: connections, scripts loaded, converters compiled, code paths.
    await measure(list(contenders.items()), "warm", 200, 2, 1)
    await repo.flushdb()

    rounds: list[dict[str, float]] = []
    for n in range(args.rounds):
        row: dict[str, float] = {}
        order = list(contenders.items()) if n % 2 == 0 else list(contenders.items())[::-1]
        for mode, concurrency in (("seq", 1), ("conc", CONCURRENCY)):
            measured = await measure(order, f"r{n}-{mode}", args.entities, args.slices, concurrency)
            for key, (rate, cpu) in measured.items():
                op, name = key.split("_")
                row[f"{mode}_{op}_{name}"] = rate
                row[f"{mode}_{op}_cpu_{name}"] = cpu
        await repo.flushdb()
        rounds.append(row)
        if not args.quiet:
            summary = ", ".join(
                f"{mode} {op} {row[f'{mode}_{op}_entity'] / row[f'{mode}_{op}_hash']:.2f}x"
                for mode in ("seq", "conc")
                for op in OPERATIONS
            )
            print(f"round {n + 1}/{args.rounds}: entity / hash: {summary}", file=sys.stderr)
    await repo.disconnect()

    medians = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    ratios = {
        f"{mode}_{op}": medians[f"{mode}_{op}_entity"] / medians[f"{mode}_{op}_hash"]
        for mode in ("seq", "conc")
        for op in OPERATIONS
    }
    paired = {
        f"{mode}_{op}": statistics.median(r[f"{mode}_{op}_entity"] / r[f"{mode}_{op}_hash"] for r in rounds)
        for mode in ("seq", "conc")
        for op in OPERATIONS
    }
    return {
        "rounds": rounds,
        "median": medians,
        "ratio": ratios,
        "ratio_paired": paired,
        "targets": {f"{key}>={TARGET}": value >= TARGET for key, value in ratios.items()},
    }


def report(result: dict[str, Any]) -> str:
    m = result["median"]
    lines = [
        f"{'':22} {'entity /s':>11} {'hash /s':>11} {'ratio':>7} {'paired':>7}   {'CPU us/op entity':>16} {'hash':>6}",
    ]
    for mode, label in (("seq", "sequential"), ("conc", f"{CONCURRENCY} tasks")):
        for op in OPERATIONS:
            key = f"{mode}_{op}"
            lines.append(
                f"{label + ' ' + op:22} {m[key + '_entity']:>11.0f} {m[key + '_hash']:>11.0f} "
                f"{result['ratio'][key]:>6.2f}x {result['ratio_paired'][key]:>6.2f}x   "
                f"{m[key + '_cpu_entity']:>16.1f} {m[key + '_cpu_hash']:>6.1f}"
            )
    lines.append(f"target: entity / hash >= {TARGET} for every operation")
    lines += [f"  {name}: {'met' if ok else 'MISSED'}" for name, ok in result["targets"].items()]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--entities", type=int, default=1000, help="entities per contender, operation and round")
    parser.add_argument("--slices", type=int, default=10, help="alternating slices per operation")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 500 entities")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.entities = 3, 500
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
        "entities": args.entities,
        "slices": args.slices,
        "concurrency": CONCURRENCY,
    }
    publish(result, report(result), args.json, {**result["machine"], "wall_seconds": result["wall_seconds"]})
    return 1 if args.check and not all(result["targets"].values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
