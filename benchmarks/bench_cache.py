"""Benchmark: RedisCache against cashews and aiocache, on one private redis-server.

Run by hand (not part of the test suite; needs the ``bench`` extra)::

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python benchmarks/bench_cache.py               # about a minute
    .venv/bin/python benchmarks/bench_cache.py --quick       # a few seconds
    .venv/bin/python benchmarks/bench_cache.py --takeover 7  # + a killed lease holder, 7 times
    .venv/bin/python benchmarks/bench_cache.py --profile     # where a hit's time goes
    .venv/bin/python benchmarks/bench_cache.py --json out.json --check

It starts its own ``redis-server`` (``neuroglia.data.redis.testing.RedisServer``:
a free loopback port, no persistence) and measures, against that one server:

(a) the hit path, one task calling over and over for one cached menu item
    (the same ~200-byte value for everybody): ``RedisCache.get_or_set_async``,
    a function decorated with ``@cache.cached``, cashews' ``@cache`` (its
    defaults: pickle) and aiocache's ``@cached`` (Redis, JSON), with raw
    redis-py ``GET`` + ``json.loads`` and the repository's own
    ``get_object_async`` (the transport the cache runs on) as anchors. Calls
    per second, medians over rounds of interleaved slices (the order
    rotating), and the ratios. Targets: ours >= 2x cashews and >= 1.5x
    aiocache. Then the cache's own cost per hit, with the repository stubbed out.
(b) the same hit path from 50 concurrent tasks.
(c) a stampede: 100 concurrent calls of one cold key whose loader takes
    50 ms: how many times the loader ran, per contender (cashews and aiocache
    with their defaults and with their locking variants). Target: 1.
(d) with ``--takeover N``: a lease holder (another OS process) killed with
    SIGKILL in the middle of its factory while this process's 100 callers
    wait; how long after the holder took the lease this process had its value
    (target: the lease, 1 s, plus 100 ms). Medians and maxima over N runs.

Exit status is 0, or 1 with ``--check`` when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import os
import pstats
import signal
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from _machine import describe_machine, publish

from neuroglia.data.redis import RedisCache, RedisConfig, RedisRepository
from neuroglia.data.redis.testing import RedisServer, redis_server_binary

CASHEWS_TARGET = 2.0
AIOCACHE_TARGET = 1.5
TAKEOVER_LEASE = 1.0
TAKEOVER_MARGIN = 0.1
ITEM: dict[str, Any] = {
    "id": "margherita",
    "name": "Margherita",
    "price": 8.5,
    "toppings": ["tomato", "mozzarella", "basil", "olive oil"],
    "description": "San Marzano tomatoes, fior di latte, fresh basil and a drizzle of extra virgin olive oil.",
    "vegetarian": True,
}

Call = Callable[[], Awaitable[Any]]


async def load_item(item_id: str) -> dict[str, Any]:
    """The "database": never reached on the hit path."""
    return dict(ITEM)


# -- the contenders ---------------------------------------------------------------------


class Contenders:
    """Every cache under test, on one server, each with one warm key."""

    def __init__(self, url: str, port: int) -> None:
        self.url = url
        self.port = port
        self.repo = RedisRepository(RedisConfig(url=url))
        self.cache = RedisCache(self.repo, "menu", default_expiration=600)
        self.raw = aioredis.Redis(host="127.0.0.1", port=port)
        self.calls: dict[str, Call] = {}
        self.cleanups: list[Callable[[], Awaitable[Any]]] = []

    async def start(self) -> None:
        import cashews
        from aiocache import Cache, cached
        from aiocache.serializers import JsonSerializer

        cache = self.cache

        async def ours_get_or_set() -> Any:
            return await cache.get_or_set_async("item:margherita", lambda: load_item("margherita"))

        @cache.cached(key="decorated:{item_id}")
        async def ours_decorated(item_id: str) -> dict[str, Any]:
            return await load_item(item_id)

        theirs = cashews.Cache()
        theirs.setup(self.url)

        @theirs(ttl="10m", key="cashews:item:{item_id}")
        async def cashews_cached(item_id: str) -> dict[str, Any]:
            return await load_item(item_id)

        @cached(
            ttl=600,
            cache=Cache.REDIS,
            endpoint="127.0.0.1",
            port=self.port,
            serializer=JsonSerializer(),
            key_builder=lambda f, *args, **kwargs: f"aiocache:item:{args[0]}",
        )
        async def aiocache_cached(item_id: str) -> dict[str, Any]:
            return await load_item(item_id)

        raw = self.raw
        await raw.set("raw:item:margherita", json.dumps(ITEM))
        repo = self.repo
        await repo.set_object_async("object:item:margherita", ITEM)

        async def repository_get_object() -> Any:
            return await repo.get_object_async("object:item:margherita")

        async def raw_get() -> Any:
            return json.loads(await raw.get("raw:item:margherita"))

        self.calls = {
            "get_or_set_async": ours_get_or_set,
            "@cache.cached": lambda: ours_decorated("margherita"),
            "cashews @cache": lambda: cashews_cached("margherita"),
            "aiocache @cached": lambda: aiocache_cached("margherita"),
            "raw GET+json": raw_get,
            "repo get_object_async": repository_get_object,
        }
        for name, call in self.calls.items():  # warm: the key is cached, connections are open
            value = await call()
            assert value == ITEM, (name, value)
        self.cleanups = [cache.close, self.repo.disconnect, theirs.close, raw.aclose, aiocache_cached.cache.close]

    async def close(self) -> None:
        for cleanup in self.cleanups:
            await cleanup()


async def sequential(call: Call, n: int) -> float:
    """Calls per second of one task."""
    gc.collect()
    start = time.perf_counter()
    for _ in range(n):
        await call()
    return n / (time.perf_counter() - start)


async def concurrent(call: Call, n: int, tasks: int) -> float:
    """Calls per second of ``tasks`` tasks sharing ``n`` calls."""
    per_task = n // tasks

    async def worker() -> None:
        for _ in range(per_task):
            await call()

    gc.collect()
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return per_task * tasks / (time.perf_counter() - start)


async def hit_paths(contenders: Contenders, args: argparse.Namespace) -> dict[str, Any]:
    names = list(contenders.calls)
    seq: dict[str, list[float]] = {name: [] for name in names}
    conc: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(args.rounds):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        per_round_seq: dict[str, list[float]] = {name: [] for name in names}
        per_round_conc: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(args.slices):
            for name in order:
                call = contenders.calls[name]
                per_round_seq[name].append(await sequential(call, args.calls // args.slices))
                per_round_conc[name].append(await concurrent(call, args.calls // args.slices, args.tasks))
        for name in names:
            seq[name].append(statistics.fmean(per_round_seq[name]))
            conc[name].append(statistics.fmean(per_round_conc[name]))
        if not args.quiet:
            line = ", ".join(f"{name} {statistics.median(seq[name]):,.0f}/s" for name in names)
            print(f"  round {round_ + 1}/{args.rounds}: {line}", file=sys.stderr)
    return {
        "sequential": {name: {"median": statistics.median(v), "rounds": v} for name, v in seq.items()},
        "concurrent": {name: {"median": statistics.median(v), "rounds": v} for name, v in conc.items()},
    }


# -- the stampede ---------------------------------------------------------------------------


async def stampede(url: str, port: int, callers: int = 100, latency: float = 0.05) -> dict[str, int]:
    import cashews
    from aiocache import Cache, cached, cached_stampede
    from aiocache.serializers import JsonSerializer

    counts: dict[str, int] = {}

    def database(name: str) -> Callable[[str], Awaitable[dict[str, Any]]]:
        counts[name] = 0

        async def query(item_id: str) -> dict[str, Any]:
            counts[name] += 1
            await asyncio.sleep(latency)
            return dict(ITEM)

        return query

    repo = RedisRepository(RedisConfig(url=url))
    cache = RedisCache(repo, "stampede", default_expiration=600)
    theirs = cashews.Cache()
    theirs.setup(url)
    aio = {"cache": Cache.REDIS, "endpoint": "127.0.0.1", "port": port, "serializer": JsonSerializer(), "ttl": 600}
    try:
        contenders: dict[str, Callable[[str], Awaitable[Any]]] = {}
        db = database("get_or_set_async")
        contenders["get_or_set_async"] = lambda item_id: cache.get_or_set_async(f"gos:{item_id}", lambda: db(item_id))
        contenders["@cache.cached"] = cache.cached(key="dec:{item_id}")(database("@cache.cached"))
        contenders["cashews @cache"] = theirs(ttl="10m", key="c:{item_id}")(database("cashews @cache"))
        contenders["cashews @cache(lock=True)"] = theirs(ttl="10m", key="cl:{item_id}", lock=True)(
            database("cashews @cache(lock=True)")
        )
        contenders["aiocache @cached"] = cached(**aio, key_builder=lambda f, *a, **k: f"a:{a[0]}")(
            database("aiocache @cached")
        )
        contenders["aiocache @cached_stampede"] = cached_stampede(
            **aio, lease=2, key_builder=lambda f, *a, **k: f"as:{a[0]}"
        )(database("aiocache @cached_stampede"))
        for function in contenders.values():
            results = await asyncio.gather(*(function("margherita") for _ in range(callers)))
            assert all(r == ITEM for r in results)
        return counts
    finally:
        await cache.close()
        await repo.disconnect()
        await theirs.close()


# -- a killed lease holder -------------------------------------------------------------------


async def worker_hold(url: str, key: str, lease: float) -> None:
    """Run as a separate process: take the lease of ``key`` and never finish (killed here)."""
    repo = RedisRepository(RedisConfig(url=url))

    async def never() -> str:
        print(f"COMPUTING {time.monotonic_ns()}", flush=True)
        await asyncio.Event().wait()
        return "never"

    async with RedisCache(repo, "takeover") as cache:
        await cache.get_or_set_async(key, never, lease=lease)


async def takeover(url: str, runs: int, callers: int = 100) -> dict[str, Any]:
    repo = RedisRepository(RedisConfig(url=url))
    delays: list[float] = []
    try:
        async with RedisCache(repo, "takeover") as cache:
            for run in range(runs):
                key = f"dead:{run}"
                holder = await asyncio.create_subprocess_exec(
                    sys.executable, __file__, "--worker-hold", url, key, str(TAKEOVER_LEASE),
                    stdout=asyncio.subprocess.PIPE,
                )  # fmt: skip
                try:
                    assert holder.stdout is not None
                    line = (await asyncio.wait_for(holder.stdout.readline(), 30)).decode().split()
                    acquired_ns = int(line[1])
                    waiting = asyncio.gather(
                        *(cache.get_or_set_async(key, lambda: asyncio.sleep(0, "taken over")) for _ in range(callers))
                    )
                    await asyncio.sleep(0.05)
                    os.kill(holder.pid, signal.SIGKILL)
                    values = await asyncio.wait_for(waiting, 30)
                    delays.append((time.monotonic_ns() - acquired_ns) / 1e9)
                    assert set(values) == {"taken over"}
                finally:
                    if holder.returncode is None:
                        holder.kill()
                    await holder.wait()
    finally:
        await repo.disconnect()
    return {
        "lease": TAKEOVER_LEASE,
        "runs": delays,
        "median": statistics.median(delays),
        "max": max(delays),
        "median_after_lease_ms": (statistics.median(delays) - TAKEOVER_LEASE) * 1000,
        "max_after_lease_ms": (max(delays) - TAKEOVER_LEASE) * 1000,
    }


# -- the facade's own cost ----------------------------------------------------------------------


class _StubRepository:
    """Answers the cache's read at once, so that only the cache's own work is timed."""

    def __init__(self, real: RedisRepository) -> None:
        from neuroglia.data.redis.cache.entry import EntryMeta

        self.real = real
        self.codec = real.codec
        self.config = real.config
        self.metrics = None
        now = int(time.time() * 1000)
        self.reply = [self.codec.dumps(ITEM), EntryMeta(now + 10**9, now + 10**9, now).encode(), ""]

    def register_script(self, source: str) -> Any:
        return self.real.register_script(source)

    async def _run(self, command: Any) -> Any:
        """The repository's execute path (``repository._run``), which the cache's hit read calls."""
        return command.parse(self.reply)


async def overhead(calls: int = 50_000) -> dict[str, float]:
    """Microseconds per hit spent in the cache itself (the repository stubbed out), and in decoding."""
    real = RedisRepository(RedisConfig(url="memory://bench-overhead"))
    stub = _StubRepository(real)
    cache = RedisCache(stub, "menu")  # type: ignore[arg-type]
    out: dict[str, float] = {}
    try:
        for label, overrides in (("hit, default options", {}), ("hit, expiration= per call", {"expiration": 600})):
            start = time.perf_counter()
            for _ in range(calls):
                await cache.get_or_set_async("item:margherita", lambda: load_item("x"), **overrides)
            out[label] = (time.perf_counter() - start) / calls * 1e6
        data = stub.reply[0]
        start = time.perf_counter()
        for _ in range(calls):
            stub.codec.loads(data)
        out["of which: envelope + JSON decoding"] = (time.perf_counter() - start) / calls * 1e6
    finally:
        await cache.close()
    return out


# -- profile ------------------------------------------------------------------------------------


async def profile(contenders: Contenders, calls: int) -> str:
    call = contenders.calls["get_or_set_async"]
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        await call()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
    return out.getvalue()


# -- the report -----------------------------------------------------------------------------------


async def bench(args: argparse.Namespace, server: RedisServer) -> dict[str, Any]:
    result: dict[str, Any] = {"machine": describe_machine(), "settings": vars(args).copy()}
    contenders = Contenders(server.url, server.port)
    await contenders.start()
    try:
        result["hit"] = await hit_paths(contenders, args)
        if args.profile:
            result["profile"] = await profile(contenders, args.calls)
        result["overhead_us"] = await overhead()
    finally:
        await contenders.close()
    result["stampede"] = await stampede(server.url, server.port)
    if args.takeover:
        result["takeover"] = await takeover(server.url, args.takeover)
    return result


def ratios(table: dict[str, Any]) -> dict[str, float]:
    ours = table["get_or_set_async"]["median"]
    return {name: ours / value["median"] for name, value in table.items()}


def report(result: dict[str, Any]) -> tuple[str, bool]:
    lines: list[str] = []
    ok = True
    for mode, title in (("sequential", "(a) hit path, one task"), ("concurrent", "(b) hit path, 50 tasks")):
        table = result["hit"][mode]
        lines.append(f"{title}: calls/s, median over {len(next(iter(table.values()))['rounds'])} rounds")
        rel = ratios(table)
        for name, value in table.items():
            lines.append(f"  {name:<20} {value['median']:>10,.0f}/s   get_or_set_async / this = {rel[name]:.2f}x")
        if mode == "sequential":
            for name, target in (("cashews @cache", CASHEWS_TARGET), ("aiocache @cached", AIOCACHE_TARGET)):
                met = rel[name] >= target
                ok = ok and met
                lines.append(f"  target vs {name}: >= {target}x -> {rel[name]:.2f}x {'met' if met else 'MISSED'}")
    lines.append("    the cache's own work per hit (repository stubbed out), microseconds:")
    for label, us in result["overhead_us"].items():
        lines.append(f"      {label:<36} {us:6.1f} us")
    lines.append("(c) stampede: loader runs for 100 concurrent misses of one key (50 ms loader)")
    for name, runs in result["stampede"].items():
        lines.append(f"  {name:<28} {runs:>4}")
    ok = ok and result["stampede"]["get_or_set_async"] == 1
    if "takeover" in result:
        t = result["takeover"]
        met = t["max_after_lease_ms"] <= TAKEOVER_MARGIN * 1000
        ok = ok and met
        lines.append(
            f"(d) killed lease holder ({t['lease']:g} s lease), value served after the lease: "
            f"median +{t['median_after_lease_ms']:.0f} ms, max +{t['max_after_lease_ms']:.0f} ms over "
            f"{len(t['runs'])} runs (target +{TAKEOVER_MARGIN * 1000:.0f} ms: {'met' if met else 'MISSED'})"
        )
    return "\n".join(lines), ok


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker-hold":
        asyncio.run(worker_hold(sys.argv[2], sys.argv[3], float(sys.argv[4])))
        return 0
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--slices", type=int, default=4, help="alternating slices per round")
    parser.add_argument("--calls", type=int, default=4000, help="calls per contender, slice set and mode")
    parser.add_argument("--tasks", type=int, default=50, help="tasks of the concurrent hit path")
    parser.add_argument("--takeover", type=int, default=0, metavar="N", help="measure N killed lease holders")
    parser.add_argument("--profile", action="store_true", help="cProfile of get_or_set_async hits")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 1,000 calls")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.calls = 3, 1000
    if redis_server_binary() is None:
        print("redis-server is not installed", file=sys.stderr)
        return 2
    with RedisServer() as server:
        result = asyncio.run(bench(args, server))
    text, ok = report(result)
    if "profile" in result:
        text += "\n" + result["profile"]
    publish(result, text, args.json)
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
