"""The demo's cache-layer section: a stampede collapsed, a stale value served during an outage.

Part of the ``demo`` command (listed in ``SECTIONS``). Three service instances, each with its own repository (as
separate processes would have), ask for one cold menu at once: with the
page's cache-aside code every request goes to the database; with
:class:`~neuroglia.data.redis.RedisCache` one does. Then a menu board with
fail-safe on keeps answering through a simulated Redis outage (the run's
in-process fault injector; the server is never touched), with a stale menu
while the database is down too, and recovers. Last, the near cache
(:mod:`.near_cache`): reads answered in the process, kept right by Redis.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from ...cache import CacheResult, RedisCache
from ...exceptions import CacheUnavailableError
from ..context import DemoContext
from .near_cache import near_cache_part

__all__ = ["caching_section"]

MENU: dict[str, Any] = {
    "date": "today",
    "pizzas": ["margherita", "pepperoni", "diavola", "quattro_stagioni"],
    "special": "truffle calzone",
}


class DatabaseDown(Exception):
    """The menu database does not answer (part of the simulated outage)."""


class MenuDatabase:
    """The menu's system of record: slow, counted, and switchable off."""

    def __init__(self, latency: float = 0.05) -> None:
        self.latency = latency
        self.loads = 0
        self.up = True

    async def load_menu(self) -> dict[str, Any]:
        """Load today's menu (slow)."""
        self.loads += 1
        await asyncio.sleep(self.latency)
        if not self.up:
            raise DatabaseDown("menu database unreachable")
        return dict(json.loads(json.dumps(MENU)))


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.2f} ms" if ms < 10 else f"{ms:.1f} ms"


async def caching_section(ctx: DemoContext) -> None:
    """Stampede protection across instances, fail-safe through an outage, then the near cache."""
    await _stampede(ctx)
    await _outage(ctx)
    await near_cache_part(ctx)


async def _stampede(ctx: DemoContext) -> None:
    repos = ctx.run.instances(3)
    requests = 30  # per instance, all at once
    ctx.note(f"{len(repos)} service instances (a repository and connection pool each), {requests} requests each,")
    ctx.note("all at once, for a menu that is not cached yet; the database takes 50 ms per load.")
    ctx.out.write("\n")

    # The page's cache-aside code: read, and on a miss load and write.
    naive_db = MenuDatabase()

    async def cache_aside(repo: Any) -> dict[str, Any]:
        cached = await repo.get_async("mario_pizzeria:menu:naive")
        if cached:
            return dict(json.loads(cached))
        menu = await naive_db.load_menu()
        await repo.set_async("mario_pizzeria:menu:naive", json.dumps(menu), timedelta(minutes=5))
        return menu

    cache_aside_run = await ctx.call(asyncio.gather(*(cache_aside(repo) for repo in repos for _ in range(requests))))
    naive, naive_took = cache_aside_run.result, cache_aside_run.seconds
    ctx.check(all(m == MENU for m in naive), "cache-aside: every request gets the menu")
    ctx.check(naive_db.loads > len(repos), f"cache-aside: the stampede reaches the database ({naive_db.loads} loads)")

    db = MenuDatabase()
    caches = [RedisCache(repo, "mario_pizzeria:menu_cache", default_expiration=timedelta(minutes=5)) for repo in repos]
    try:
        done = await ctx.call(
            asyncio.gather(
                *(cache.get_or_set_entry_async("today", db.load_menu) for cache in caches for _ in range(requests))
            )
        )
        results, took = done.result, done.seconds
        ctx.check(all(r.value == MENU for r in results), "RedisCache: every request gets the menu")
        ctx.check(db.loads == 1, f"RedisCache: the database is loaded once for {len(results)} requests")
        rows: list[list[Any]] = [
            ["cache-aside (the page's MenuCacheService)", len(naive), naive_db.loads, "-", "-", _ms(naive_took)]
        ]
        for n, cache in enumerate(caches, 1):
            stats = cache.statistics()
            mine = results[(n - 1) * requests : n * requests]
            sources = sorted({r.source for r in mine})
            rows.append(
                [
                    f"RedisCache, instance-{n}",
                    requests,
                    stats.factory_runs,
                    stats.stampede_waits_local,
                    stats.stampede_waits_distributed,
                    ", ".join(sources),
                ]
            )
        rows.append(["RedisCache, all instances", len(results), db.loads, "", "", _ms(took)])
        waits = sum(c.statistics().stampede_waits_distributed for c in caches)
        ctx.check(waits == len(caches) - 1, "the two other instances waited for the one computing (its lease)")
        ctx.table(["", "requests", "db loads", "waited here", "waited on lease", "answered by / time"], rows)
        ctx.note("In each instance the concurrent misses share one computation (single-flight); across")
        ctx.note("instances one takes a short lease in Redis and the others wait until it writes the value")
        ctx.note("(woken through BLPOP, no polling), or take over if it dies before its lease runs out.")
        ctx.out.write("\n")
    finally:
        for cache in caches:
            await cache.close()


async def _outage(ctx: DemoContext) -> None:
    faults = ctx.run.faults
    db = MenuDatabase(latency=0.005)
    repo = ctx.run.repository(outage=True, breaker_name="menu_board")
    breaker = repo.circuit_breaker
    expiration = 0.3
    board = RedisCache(
        repo,
        "mario_pizzeria:menu_board",
        default_expiration=expiration,
        fail_safe=True,
        fail_safe_max_staleness=timedelta(minutes=10),
        fail_safe_throttle=timedelta(seconds=30),
    )
    rows: list[list[Any]] = []

    async def ask(label: str) -> CacheResult[Any]:
        loads = db.loads
        done = await ctx.call(board.get_or_set_entry_async("today", db.load_menu))
        result, took = done.result, done.seconds
        reason = "-" if result.error is None else type(result.error).__name__
        called = "called" if db.loads > loads else "-"
        rows.append([label, result.source, "stale" if result.is_stale else "fresh", called, reason, _ms(took)])
        return result

    try:
        first = await ask("Redis up: a miss")
        ctx.check(first.source == "factory" and not first.is_stale, "the first read computes and stores the menu")
        again = await ask("Redis up: a hit")
        ctx.check(again.source == "redis", "the next read is a hit in Redis")

        faults.outage = True  # every command of this repository is refused, in this process only
        local = await ask("Redis down")
        ctx.check(
            local.source == "local" and not local.is_stale and isinstance(local.error, CacheUnavailableError),
            "Redis down: the fresh copy kept in the process answers",
        )
        await asyncio.sleep(expiration + 0.05)
        db.up = False
        stale = await ask(f"Redis and database down, {expiration:g} s later")
        ctx.check(
            stale.value == MENU and stale.is_stale and isinstance(stale.error, DatabaseDown),
            "the expired menu is served, flagged stale, instead of an error",
        )
        loads = db.loads
        throttled = await ask("again, during the fail-safe throttle")
        ctx.check(throttled.is_stale and db.loads == loads, "the failing database is not asked again for 30 s")

        faults.outage = False
        db.up = True
        if breaker is not None:  # let the repository's breaker, opened by the outage, try Redis again
            await asyncio.sleep(max(0.0, breaker.recovery_timeout) + 0.05)
        await board.expire_async("today")  # end the throttle: the database is back
        fresh = await ask("both back (after expire_async)")
        ctx.check(fresh.source == "factory" and not fresh.is_stale, "recovered: a fresh menu from the database")
    finally:
        faults.outage = False
        await board.close()

    ctx.table(["menu board call", "answered by", "value", "database", "why not a hit", "time"], rows)
    stats = board.statistics()
    ctx.check(stats.stale_served == 2, f"the board's figures count 2 stale answers (got {stats.stale_served})")
    ctx.note(
        f"Board figures: {stats.hits} hits, {stats.misses} misses, {stats.stale_served} stale served, "
        f"{stats.factory_runs} factory runs ({stats.factory_errors} failed), {stats.redis_errors} Redis errors."
    )
    ctx.note("The outage is simulated in this process (the transport refuses every command); the server is")
    ctx.note("not touched. Options: fail_safe=True, 10 min max staleness, 30 s throttle (docs/caching.md).")
