"""The demo's near-cache part (in the cache-layer section): reads answered in the process, kept right by Redis.

The till reads today's special over and over through a repository with a
near cache: the first read goes to Redis, the next are answered in the
process (timed against the same read without a near cache). Then the
kitchen, another service instance, changes the special: Redis tells the
till, which drops its copy, and its next read has the new one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import time
from typing import Any

from ...repository import RedisRepository
from ..context import DemoContext

__all__ = ["near_cache_part"]

KEY = "mario_pizzeria:menu:special"
READS = 2000


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.2f} us" if seconds < 1e-4 else f"{seconds * 1000:.2f} ms"


async def _per_read(repo: RedisRepository, reads: int) -> float:
    """Seconds per ``get_async`` of the special, the median of five runs of ``reads // 5``."""
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(reads // 5):
            await repo.get_async(KEY)
        runs.append((time.perf_counter() - start) / (reads // 5))
    return statistics.median(runs)


async def near_cache_part(ctx: DemoContext) -> None:
    """The till's reads from its near cache, and the kitchen's change reaching it."""
    # The till is this part's own repository (closed here); the kitchen is the first service instance.
    till = RedisRepository(dataclasses.replace(ctx.run.config(), near_cache=True))
    try:
        await _till_and_kitchen(ctx, till, ctx.run.instances(1)[0])
    finally:
        await till.disconnect()


async def _till_and_kitchen(ctx: DemoContext, till: RedisRepository, kitchen: RedisRepository) -> None:
    near = till.near_cache
    assert near is not None
    ctx.out.write("\n")
    ctx.note("The till reads today's special through a repository with a near cache (near_cache=True);")
    ctx.note("the kitchen, another instance, writes it. Redis tells the till when it changes.")
    ctx.out.write("\n")
    await kitchen.set_async(KEY, "truffle calzone")

    rows: list[list[Any]] = []
    first = await ctx.call(till.get_async(KEY))
    ctx.check(first.result == "truffle calzone", "the till's first read comes from Redis")
    rows.append(["first read", first.result, "Redis", _us(first.seconds)])
    local = await _per_read(till, READS)
    remote = await _per_read(kitchen, READS // 10)
    hits = near.statistics().hits
    ctx.check(hits >= READS, f"the till's next {READS} reads are answered in the process ({hits} hits)")
    rows.append([f"next {READS} reads, each", "truffle calzone", "the till's near cache", _us(local)])
    rows.append(["the same read without a near cache", "truffle calzone", "Redis", _us(remote)])

    await kitchen.set_async(KEY, "porcini calzone")
    loop = asyncio.get_running_loop()
    changed = loop.time()
    seen = await till.get_async(KEY)
    while seen != "porcini calzone" and loop.time() - changed < 5:
        await asyncio.sleep(0.0005)
        seen = await till.get_async(KEY)
    after = loop.time() - changed
    ctx.check(seen == "porcini calzone", "the kitchen's change reaches the till")
    ctx.check(near.statistics().invalidations >= 1, "Redis' message dropped the till's copy")
    rows.append(["after the kitchen's change", seen, "Redis (the copy was dropped)", f"seen after {_us(after)}"])
    ctx.table(["till read", "special", "answered by", "time"], rows)
    stats = near.statistics()
    ctx.note(
        f"Near cache figures: {stats.hits} hits, {stats.misses} misses, {stats.invalidations} invalidated, "
        f"{stats.entries} kept."
    )
    ctx.note("A write of the till's own is read back at once; a lost connection empties it (docs/caching.md).")
