"""Benchmark: the near cache, on one private redis-server.

Run by hand (not part of the test suite)::

    .venv/bin/python benchmarks/bench_near_cache.py              # about a minute
    .venv/bin/python benchmarks/bench_near_cache.py --quick      # a few seconds
    .venv/bin/python benchmarks/bench_near_cache.py --json out.json --check

It starts its own ``redis-server`` (``neuroglia.data.redis.testing.RedisServer``:
a free loopback port, no persistence) and measures, against that one server:

(a) the hit path, one task calling over and over for one warm key: the
    repository's ``get_async`` served by the near cache, against redis-py's
    ``GET`` (``redis.asyncio``, hiredis parser) and the repository's
    ``get_async`` without a near cache; also ``get_object_async`` and
    ``hgetall_async`` hits, and ``RedisCache.get_or_set_async`` hits with and
    without the near cache as its first level. Calls per second, medians over
    rounds of interleaved slices (the order rotating), and the ratios.
    Target: a near-cache hit >= 100x redis-py's ``GET``.
(b) invalidation latency across two processes under load: process B writes
    a probe key 1,000 times (a pause of 10-20 ms between writes) while four
    of its tasks write 200 other keys (about 2,000 writes/s) that process A
    has cached; process A reads the probe key (near-cache hits) whenever its
    copy is dropped and every millisecond anyway, while eight of its tasks
    read those 200 keys in bursts of 50 with a 2 ms pause (hits, and misses
    after B's writes). Latency: from the moment B's ``set_async`` returned to the
    moment a read in A returned the new value (``time.monotonic_ns``, one
    clock for every process on Linux); p50, p99, max. Target: p99 <= 10 ms.
(c) no stale read after a reconnect: a cached key, the tracking connection
    killed (``CLIENT KILL``) or the server restarted, a new value written
    where the reader cannot be told, then the reader's reads until one
    succeeds; any read that returns the old value counts. Target: 0.

Exit status is 0, or 1 with ``--check`` when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import gc
import json
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from _machine import describe_machine, publish

from neuroglia.data.redis import CacheUnavailableError, RedisCache, RedisConfig, RedisRepository
from neuroglia.data.redis.testing import RedisServer, redis_server_binary
from neuroglia.data.redis.transport import build_transport

HIT_TARGET = 100.0
LATENCY_P99_TARGET_MS = 10.0
HOT_KEYS = 200
LOAD_BURST = 50
VALUE = "v" * 100
ITEM: dict[str, Any] = {"id": "margherita", "name": "Margherita", "price": 8.5, "toppings": ["tomato", "basil"]}

Call = Callable[[], Awaitable[Any]]


# -- (a) the hit path ---------------------------------------------------------------------------------


class Contenders:
    """Every reader under test, each with one warm key."""

    def __init__(self, url: str, port: int) -> None:
        self.near = RedisRepository(RedisConfig(url=url, key_prefix="bench:", near_cache=True))
        self.plain = RedisRepository(RedisConfig(url=url, key_prefix="bench:"))
        self.raw = aioredis.Redis(host="127.0.0.1", port=port)
        self.near_cache = RedisCache(self.near, "menu", default_expiration=600)
        self.plain_cache = RedisCache(self.plain, "menu-plain", default_expiration=600)
        self.calls: dict[str, Call] = {}

    async def start(self) -> None:
        near, plain, raw = self.near, self.plain, self.raw
        await plain.set_async("item", VALUE)
        await plain.set_object_async("object", ITEM)
        await plain.hset_async("order", {"status": "baking", "pizza": "margherita", "table": "7"})

        async def load() -> dict[str, Any]:
            return dict(ITEM)

        near_cache, plain_cache = self.near_cache, self.plain_cache
        self.calls = {
            "near get_async": lambda: near.get_async("item"),
            "redis-py GET": lambda: raw.get("bench:item"),
            "repo get_async (no near cache)": lambda: plain.get_async("item"),
            "near get_object_async": lambda: near.get_object_async("object"),
            "near hgetall_async": lambda: near.hgetall_async("order"),
            "near RedisCache hit": lambda: near_cache.get_or_set_async("item", load),
            "RedisCache hit (no near cache)": lambda: plain_cache.get_or_set_async("item", load),
        }
        for _ in range(3):  # the second read of each is a near-cache hit; the cache's own write needs one more
            for call in self.calls.values():
                await call()
        assert await near.get_async("item") == VALUE
        near_stats = near.near_cache.statistics() if near.near_cache is not None else None
        assert near_stats is not None
        assert near_stats.hits > 0

    async def close(self) -> None:
        await self.near_cache.close()
        await self.plain_cache.close()
        await self.near.disconnect()
        await self.plain.disconnect()
        await self.raw.aclose()


async def sequential(call: Call, n: int) -> float:
    """Calls per second of one task."""
    gc.collect()
    start = time.perf_counter()
    for _ in range(n):
        await call()
    return n / (time.perf_counter() - start)


async def hit_paths(url: str, port: int, args: argparse.Namespace) -> dict[str, Any]:
    contenders = Contenders(url, port)
    await contenders.start()
    try:
        names = list(contenders.calls)
        rates: dict[str, list[float]] = {name: [] for name in names}
        ratios: list[float] = []
        for round_ in range(args.rounds):
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            per_round: dict[str, list[float]] = {name: [] for name in names}
            for _ in range(args.slices):
                for name in order:
                    # Local calls are cheap: give them more calls per slice, so each slice lasts.
                    calls = args.calls * (20 if name.startswith("near") else 1)
                    per_round[name].append(await sequential(contenders.calls[name], calls))
            for name in names:
                rates[name].append(statistics.fmean(per_round[name]))
            ratios.append(rates["near get_async"][-1] / rates["redis-py GET"][-1])
            if not args.quiet:
                line = ", ".join(f"{name} {rates[name][-1]:,.0f}/s" for name in names)
                print(f"  round {round_ + 1}/{args.rounds}: {line}", file=sys.stderr)
        near = contenders.near.near_cache
        assert near is not None
        return {
            "rates": {name: {"median": statistics.median(v), "rounds": v} for name, v in rates.items()},
            "ratio_rounds": ratios,
            "ratio_median": statistics.median(ratios),
            "near_statistics": near.statistics().__repr__(),
        }
    finally:
        await contenders.close()


# -- (b) invalidation latency across processes ------------------------------------------------------------


async def reader_process(url: str) -> None:
    """Process A: the probe key read in a loop, and eight tasks reading the hot keys."""
    repo = RedisRepository(RedisConfig(url=url, key_prefix="inv:", near_cache=True))
    await repo.connect()
    for n in range(HOT_KEYS):
        await repo.get_async(f"hot:{n}")
    await repo.get_async("probe")
    stop = asyncio.Event()
    seen: dict[str, int] = {}
    reads = 0

    load_reads = 0

    async def load() -> None:
        # Bursts of reads, then a pause: a busy process, not one spinning at 100 % CPU.
        nonlocal load_reads
        chance = random.Random()
        while not stop.is_set():
            for _ in range(LOAD_BURST):
                await repo.get_async(f"hot:{chance.randrange(HOT_KEYS)}")
            load_reads += LOAD_BURST
            await asyncio.sleep(0.002)

    near = repo.near_cache
    assert near is not None
    dropped: list[int] = []  # when the probe's entry was dropped (Redis' message processed)
    changed = asyncio.Event()

    def removed(entries: list[Any], reason: str) -> None:
        if any(entry.args == ("GET", "inv:probe") for entry in entries):
            dropped.append(time.monotonic_ns())
            changed.set()

    near.add_listener(removed)

    async def probe() -> None:
        # Reads the probe when its entry is dropped, and every millisecond anyway: what a read at any
        # moment would return, without a task spinning for it (which would starve the process).
        nonlocal reads
        last = None
        while True:
            value = await repo.get_async("probe")
            reads += 1
            if value != last:
                seen[str(value)] = time.monotonic_ns()
                last = value
                if value == "stop":
                    return
            changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), 0.001)

    loaders = [asyncio.create_task(load()) for _ in range(8)]
    print("READY", flush=True)
    started = time.monotonic()
    await probe()
    load_rate = load_reads / (time.monotonic() - started)
    stop.set()
    await asyncio.gather(*loaders)
    stats = near.statistics()
    report = {
        "seen": seen,
        "dropped": dropped,
        "probe_reads": reads,
        "load_reads_per_s": load_rate,
        "hits": stats.hits,
        "misses": stats.misses,
        "invalidations": stats.invalidations,
        "flushes": stats.flushes,
    }
    print(json.dumps(report), flush=True)
    await repo.disconnect()


async def invalidation_latency(url: str, writes: int) -> dict[str, Any]:
    """Process B is this one: it writes, process A (a subprocess) reads."""
    repo = RedisRepository(RedisConfig(url=url, key_prefix="inv:"))
    await repo.connect()
    await repo.set_async("probe", "0")
    for n in range(HOT_KEYS):
        await repo.set_async(f"hot:{n}", VALUE)
    reader = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--reader", url, stdout=asyncio.subprocess.PIPE
    )
    assert reader.stdout is not None
    try:
        assert (await asyncio.wait_for(reader.stdout.readline(), 30)).decode().strip() == "READY"
        stop = asyncio.Event()
        load_writes = 0

        async def load() -> None:
            nonlocal load_writes
            chance = random.Random()
            while not stop.is_set():
                await repo.set_async(f"hot:{chance.randrange(HOT_KEYS)}", VALUE)
                load_writes += 1
                await asyncio.sleep(0.002)

        loaders = [asyncio.create_task(load()) for _ in range(4)]
        done_ns: dict[str, int] = {}
        started_ns: dict[str, int] = {}
        chance = random.Random(7)
        load_started = time.monotonic()
        for n in range(1, writes + 1):
            await asyncio.sleep(0.010 + chance.random() * 0.010)
            started_ns[str(n)] = time.monotonic_ns()
            await repo.set_async("probe", str(n))
            done_ns[str(n)] = time.monotonic_ns()
        load_rate = load_writes / (time.monotonic() - load_started)
        await asyncio.sleep(0.05)
        await repo.set_async("probe", "stop")
        stop.set()
        await asyncio.gather(*loaders)
        report = json.loads((await asyncio.wait_for(reader.stdout.readline(), 60)).decode())
        await asyncio.wait_for(reader.wait(), 30)
    finally:
        if reader.returncode is None:
            reader.kill()
            await reader.wait()
        await repo.disconnect()
    seen: dict[str, int] = report["seen"]
    dropped: list[int] = report["dropped"]
    # When A dropped its copy: the first drop after B began the write (may come before B has its reply).
    received = []
    for n, begun in started_ns.items():
        at = bisect.bisect_left(dropped, begun)
        if at < len(dropped):
            received.append((dropped[at] - done_ns[n]) / 1e6)
    after_done = [(seen[n] - done_ns[n]) / 1e6 for n in done_ns if n in seen]
    after_start = [(seen[n] - started_ns[n]) / 1e6 for n in started_ns if n in seen]
    missed = [n for n in done_ns if n not in seen]
    # A value never observed was replaced before A saw it: later than the pause, counted as infinite.
    ordered = sorted(after_done) + [float("inf")] * len(missed)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {
        "writes": writes,
        "observed": len(after_done),
        "missed": len(missed),
        "p50_ms": statistics.median(after_done) if after_done else None,
        "p99_ms": p99,
        "max_ms": max(after_done) if after_done else None,
        "p50_from_write_start_ms": statistics.median(after_start) if after_start else None,
        "dropped_p50_ms": statistics.median(received) if received else None,
        "dropped_p99_ms": sorted(received)[min(len(received) - 1, int(len(received) * 0.99))] if received else None,
        "load_writes_per_s": load_rate,
        "reader": {k: v for k, v in report.items() if k not in ("seen", "dropped")},
    }


# -- (c) no stale read after a reconnect -----------------------------------------------------------------


async def reconnects(server: RedisServer, kills: int, restarts: int) -> dict[str, Any]:
    url = server.url
    reader = RedisRepository(RedisConfig(url=url, near_cache=True, client_name="bench-near-reader"))
    writer = RedisRepository(RedisConfig(url=url, retry_policy={"retries": 10, "retry_delay": 0.05}))
    admin = build_transport(RedisConfig(url=url))
    stale = 0
    reads = 0
    loop = asyncio.get_running_loop()

    async def settled(expected: str) -> None:
        """Until the reader holds ``expected`` (another connection's write reaches it a moment later)."""
        deadline = loop.time() + 10
        while await reader.get_async("menu") != expected:
            assert loop.time() < deadline, f"the reader never saw {expected!r}"
            await asyncio.sleep(0.001)

    async def fresh_read(expected: str, old: str) -> None:
        nonlocal stale, reads
        deadline = loop.time() + 10
        while True:
            try:
                value = await reader.get_async("menu")
            except CacheUnavailableError:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.01)
                continue
            reads += 1
            if value == old:
                stale += 1
                await asyncio.sleep(0.001)
                if loop.time() > deadline:
                    return
                continue
            assert value == expected, (value, expected)
            return

    async def kill_reader() -> None:
        listing = (await admin.execute(("CLIENT", "LIST"))).decode()
        for line in listing.splitlines():
            if "name=bench-near-reader " in line:
                client_id = next(f.split("=")[1] for f in line.split() if f.startswith("id="))
                await admin.execute(("CLIENT", "KILL", "ID", client_id))

    try:
        for n in range(kills + restarts):
            old, new = f"old-{n}", f"new-{n}"
            await writer.set_async("menu", old)
            await settled(old)
            hits = reader.near_cache.statistics().hits if reader.near_cache is not None else 0
            assert await reader.get_async("menu") == old
            assert reader.near_cache is not None
            assert reader.near_cache.statistics().hits == hits + 1  # held by the near cache
            if n < kills:
                await kill_reader()
            else:
                await admin.close()
                server.restart()
            await writer.set_async("menu", new)  # the reader cannot be told: its connection is gone
            await fresh_read(new, old)
        near = reader.near_cache
        assert near is not None
        return {"kills": kills, "restarts": restarts, "reads": reads, "stale_reads": stale,
                "flushes": near.statistics().flushes}  # fmt: skip
    finally:
        await admin.close()
        await reader.disconnect()
        await writer.disconnect()


# -- the report ---------------------------------------------------------------------------------------


async def bench(args: argparse.Namespace, server: RedisServer) -> dict[str, Any]:
    result: dict[str, Any] = {"machine": describe_machine(), "command": " ".join(sys.argv)}
    result["hit"] = await hit_paths(server.url, server.port, args)
    result["invalidation"] = await invalidation_latency(server.url, args.writes)
    result["reconnect"] = await reconnects(server, args.kills, args.restarts)
    return result


def report(result: dict[str, Any]) -> tuple[str, bool]:
    lines: list[str] = []
    hit = result["hit"]
    rates = hit["rates"]
    rounds = len(next(iter(rates.values()))["rounds"])
    lines.append(f"(a) hit path, one task: calls/s, median over {rounds} rounds")
    redis_py = rates["redis-py GET"]["median"]
    for name, value in rates.items():
        us = 1e6 / value["median"]
        lines.append(f"  {name:<32} {value['median']:>12,.0f}/s {us:>9.2f} us   x{value['median'] / redis_py:7.1f}")
    ratio = hit["ratio_median"]
    ok = ratio >= HIT_TARGET
    lines.append(
        f"  near-cache hit / redis-py GET: median of per-round ratios {ratio:.0f}x "
        f"(rounds {', '.join(f'{r:.0f}' for r in hit['ratio_rounds'])}); target >= {HIT_TARGET:.0f}x: "
        f"{'met' if ok else 'MISSED'}"
    )
    inv = result["invalidation"]
    reader = inv["reader"]
    met = inv["p99_ms"] <= LATENCY_P99_TARGET_MS
    ok = ok and met
    lines.append(
        f"(b) invalidation across processes under load ({inv['writes']} writes; B also writes "
        f"{inv['load_writes_per_s']:,.0f} keys/s that A caches, A also reads {reader['load_reads_per_s']:,.0f} "
        f"keys/s): after B's write returned, A read the new value in "
        f"p50 {inv['p50_ms']:.2f} ms, p99 {inv['p99_ms']:.2f} ms, max {inv['max_ms']:.2f} ms "
        f"({inv['missed']} not observed); target p99 <= {LATENCY_P99_TARGET_MS:g} ms: {'met' if met else 'MISSED'}"
    )
    lines.append(
        f"    A dropped its copy (Redis' message processed) p50 {inv['dropped_p50_ms']:.2f} ms, p99 "
        f"{inv['dropped_p99_ms']:.2f} ms after B's write returned (negative: before B had its reply)"
    )
    lines.append(
        f"    reader: {reader['probe_reads']:,} probe reads, near cache hits {reader['hits']:,}, misses "
        f"{reader['misses']:,}, invalidations {reader['invalidations']:,}, flushes {reader['flushes']}"
    )
    rec = result["reconnect"]
    met = rec["stale_reads"] == 0
    ok = ok and met
    lines.append(
        f"(c) reconnects: {rec['kills']} CLIENT KILLs and {rec['restarts']} restarts, {rec['reads']} reads after "
        f"them, stale reads {rec['stale_reads']} (target 0: {'met' if met else 'MISSED'}); flushes {rec['flushes']}"
    )
    return "\n".join(lines), ok


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--reader":
        asyncio.run(reader_process(sys.argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--slices", type=int, default=3, help="alternating slices per round")
    parser.add_argument("--calls", type=int, default=2000, help="Redis calls per contender and slice (x20 local)")
    parser.add_argument("--writes", type=int, default=1000, help="probe writes of (b)")
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--restarts", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="3 rounds, 500 calls, 200 writes, 10 kills, 2 restarts")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.calls, args.writes, args.kills, args.restarts = 3, 500, 200, 10, 2
    if redis_server_binary() is None:
        print("redis-server is not installed", file=sys.stderr)
        return 2
    with RedisServer() as server:
        result = asyncio.run(bench(args, server))
    text, ok = report(result)
    publish(result, text, args.json)
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
