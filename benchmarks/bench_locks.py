"""Benchmark: DistributedLock against redis-py's ``redis.asyncio.lock.Lock``, on one private redis-server.

Run by hand (not part of the test suite)::

    .venv/bin/python benchmarks/bench_locks.py             # about half a minute
    .venv/bin/python benchmarks/bench_locks.py --quick     # about ten seconds
    .venv/bin/python benchmarks/bench_locks.py --json out.json --check

It starts its own ``redis-server`` (``neuroglia.data.redis.testing.RedisServer``,
a free loopback port, no persistence) and measures, against that one server:

(a) uncontended: one task acquiring and releasing a lock, over and over:
    cycles per second (the target: ours >= 1.0x redis-py's);
(b) contended hand-off: 10 tasks performing 200 locked increments in total (20
    each; an increment is a GET and a SET of a counter, a read-modify-write the
    lock must protect): seconds until all are done (targets: ours <= 0.15 s and
    <= 1/4 of redis-py's).

Ours is ``DistributedLock`` on a ``RedisRepository`` with its default settings
(watchdog, fencing, fair queue, all on). redis-py's is ``Redis.lock()`` with its
defaults (``sleep=0.1`` between attempts), on a ``redis.asyncio.Redis`` given
the repository's pool size and socket settings. Rounds interleave the two, the
order alternating, so drift in the machine's load hits both alike; the report
gives medians over rounds. Exit status is 0, or 1 with ``--check`` when a
target is missed.
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
from typing import Any

import redis.asyncio as aioredis
from _machine import describe_machine

from neuroglia.data.redis import DistributedLock, RedisConfig, RedisRepository
from neuroglia.data.redis.testing import RedisServer, redis_server_binary

UNCONTENDED_TARGET = 1.0  # ours cycles/s divided by redis-py's, at least
HANDOFF_LIMIT = 0.15  # seconds for the contended case, at most
HANDOFF_RATIO = 0.25  # ours seconds divided by redis-py's, at most
TASKS = 10
INCREMENTS = 200


def build_redis_py(repo: RedisRepository) -> aioredis.Redis:
    """redis-py with the repository's pool size and socket settings."""
    cfg = repo.config
    pool = cfg.pool
    return aioredis.Redis(
        host=cfg.host or "127.0.0.1",
        port=cfg.port or 6379,
        db=cfg.db or 0,
        max_connections=pool.max_connections,
        socket_timeout=pool.socket_timeout,
        socket_connect_timeout=pool.socket_connect_timeout,
        socket_keepalive=pool.socket_keepalive,
        health_check_interval=pool.health_check_interval,
    )


Cycle = Callable[[], Awaitable[None]]


async def uncontended(cycle: Cycle, cycles: int) -> tuple[float, float]:
    """Cycles per second of one task acquiring and releasing, and client CPU µs per cycle."""
    gc.collect()
    cpu = time.process_time()
    start = time.perf_counter()
    for _ in range(cycles):
        await cycle()
    elapsed = time.perf_counter() - start
    return cycles / elapsed, (time.process_time() - cpu) / cycles * 1e6


async def contended(
    locked_increment: Callable[[], Awaitable[None]], read_counter: Callable[[], Awaitable[int]]
) -> float:
    """Seconds for TASKS tasks to perform INCREMENTS locked increments in total."""
    per_task = INCREMENTS // TASKS

    async def worker() -> None:
        for _ in range(per_task):
            await locked_increment()

    gc.collect()
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(TASKS)))
    elapsed = time.perf_counter() - start
    counted = await read_counter()
    if counted != INCREMENTS:
        raise AssertionError(f"lost increments: counter is {counted}, expected {INCREMENTS}")
    return elapsed


async def bench(args: argparse.Namespace, url: str) -> dict[str, Any]:
    repo = RedisRepository(RedisConfig(url=url))
    await repo.connect()
    client = build_redis_py(repo)
    await client.ping()

    ours_lock = DistributedLock(repo, "bench:ours:uncontended", timeout=10)
    theirs_lock = client.lock("bench:theirs:uncontended", timeout=10)

    async def ours_cycle() -> None:
        await ours_lock.acquire()
        await ours_lock.release()

    async def theirs_cycle() -> None:
        await theirs_lock.acquire()
        await theirs_lock.release()

    async def ours_increment() -> None:
        async with DistributedLock(repo, "bench:ours:contended", timeout=10):
            value = int(await repo.get_async("bench:ours:counter") or 0)
            await repo.set_async("bench:ours:counter", value + 1)

    async def theirs_increment() -> None:
        async with client.lock("bench:theirs:contended", timeout=10):
            value = int(await client.get("bench:theirs:counter") or 0)
            await client.set("bench:theirs:counter", value + 1)

    async def ours_counter() -> int:
        return int(await repo.get_async("bench:ours:counter") or 0)

    async def theirs_counter() -> int:
        return int(await client.get("bench:theirs:counter") or 0)

    # Warm-up: connections, scripts loaded, code paths.
    await uncontended(ours_cycle, 200)
    await uncontended(theirs_cycle, 200)

    rounds: list[dict[str, float]] = []
    for n in range(args.rounds):
        row: dict[str, float] = {}
        order = [("ours", ours_cycle), ("redis_py", theirs_cycle)]
        for name, cycle in order if n % 2 == 0 else order[::-1]:
            row[f"uncontended_{name}"], row[f"cpu_us_{name}"] = await uncontended(cycle, args.cycles)
        await repo.delete_async("bench:ours:counter")
        await client.delete("bench:theirs:counter")
        order_c = [("ours", ours_increment, ours_counter), ("redis_py", theirs_increment, theirs_counter)]
        for name, increment, counter in order_c if n % 2 == 0 else order_c[::-1]:
            row[f"handoff_{name}"] = await contended(increment, counter)
        rounds.append(row)
        if not args.quiet:
            print(
                f"round {n + 1}/{args.rounds}: uncontended ours {row['uncontended_ours']:.0f}/s, "
                f"redis-py {row['uncontended_redis_py']:.0f}/s; hand-off ours {row['handoff_ours']:.3f} s, "
                f"redis-py {row['handoff_redis_py']:.3f} s",
                file=sys.stderr,
            )

    await client.aclose()
    await repo.disconnect()
    medians = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    ratio = medians["uncontended_ours"] / medians["uncontended_redis_py"]
    handoff_ratio = medians["handoff_ours"] / medians["handoff_redis_py"]
    # The same figures paired round by round (each pair ran back to back).
    paired = statistics.median(r["uncontended_ours"] / r["uncontended_redis_py"] for r in rounds)
    return {
        "rounds": rounds,
        "median": medians,
        "uncontended_ratio": ratio,
        "uncontended_ratio_paired": paired,
        "handoff_ratio": handoff_ratio,
        "targets": {
            "uncontended_ratio>=1.0": ratio >= UNCONTENDED_TARGET,
            "handoff_ours<=0.15s": medians["handoff_ours"] <= HANDOFF_LIMIT,
            "handoff_ratio<=0.25": handoff_ratio <= HANDOFF_RATIO,
        },
    }


def machine() -> dict[str, Any]:
    return describe_machine()


def report(result: dict[str, Any]) -> str:
    m = result["median"]
    lines = [
        f"{'':34} {'ours':>12} {'redis-py':>12} {'ratio':>8}  target",
        f"{'uncontended acquire+release /s':34} {m['uncontended_ours']:>12.0f} {m['uncontended_redis_py']:>12.0f} "
        f"{result['uncontended_ratio']:>7.2f}x  >= 1.0x (paired rounds: {result['uncontended_ratio_paired']:.2f}x)",
        f"{'  client CPU per cycle (us)':34} {m['cpu_us_ours']:>12.1f} {m['cpu_us_redis_py']:>12.1f}",
        f"{'hand-off, 10 tasks x 20 incr (s)':34} {m['handoff_ours']:>12.3f} {m['handoff_redis_py']:>12.3f} "
        f"{result['handoff_ratio']:>7.3f}x  <= 0.15 s and <= 0.25x",
    ]
    lines += [f"  {name}: {'met' if ok else 'MISSED'}" for name, ok in result["targets"].items()]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--cycles", type=int, default=1000, help="uncontended cycles per round")
    parser.add_argument("--quick", action="store_true", help="5 rounds of 500 cycles")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.cycles = 5, 500
    binary = redis_server_binary()
    if binary is None:
        print("redis-server is not installed", file=sys.stderr)
        return 2
    with RedisServer() as server:
        result = asyncio.run(bench(args, server.url))
    result["machine"] = machine()
    result["settings"] = {"rounds": args.rounds, "cycles": args.cycles, "tasks": TASKS, "increments": INCREMENTS}
    print(report(result))
    print(json.dumps(result["machine"], indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
    return 1 if args.check and not all(result["targets"].values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
