"""A separate OS process for the cache tests: ``python cache_worker.py MODE URL ...``.

Every mode prints ``READY`` once connected and waits for a line on stdin
before it starts, so the test can line several processes up.

``stampede URL KEY CALLERS DELAY LEASE``
    CALLERS concurrent ``get_or_set_async`` of KEY; the factory counts its runs
    in Redis (``runs:KEY``), sleeps DELAY seconds and returns ``"computed by
    <pid>"``. Prints a JSON report: the distinct values the callers got, the
    process's own factory runs, and when the last caller finished
    (``time.monotonic_ns``, one clock for every process on Linux).

``hold URL KEY LEASE``
    one ``get_or_set_async`` whose factory prints ``COMPUTING <monotonic_ns>``
    and then never returns: the test kills the process there.

``tag-write URL COUNT`` / ``tag-read URL COUNT``
    write COUNT entries tagged ``menu`` (prints ``WRITTEN``) / read them back
    and print how many are still cached.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

from neuroglia.data.redis import RedisCache, RedisConfig, RedisRepository


async def _line() -> str:
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def stampede(
    cache: RedisCache, repo: RedisRepository, key: str, callers: int, delay: float, lease: float
) -> None:
    runs = 0

    async def factory() -> str:
        nonlocal runs
        runs += 1
        await repo.incr_async(f"runs:{key}")
        await asyncio.sleep(delay)
        return f"computed by {os.getpid()}"

    print("READY", flush=True)
    await _line()
    results = await asyncio.gather(*(cache.get_or_set_async(key, factory, lease=lease) for _ in range(callers)))
    done = time.monotonic_ns()
    stats = cache.statistics()
    report: dict[str, Any] = {
        "values": sorted(set(results)),
        "callers": len(results),
        "runs": runs,
        "done_ns": done,
        "distributed_waits": stats.stampede_waits_distributed,
    }
    print(json.dumps(report), flush=True)


async def hold(cache: RedisCache, key: str, lease: float) -> None:
    async def factory() -> str:
        print(f"COMPUTING {time.monotonic_ns()}", flush=True)
        await asyncio.Event().wait()  # killed here
        return "never"

    print("READY", flush=True)
    await _line()
    await cache.get_or_set_async(key, factory, lease=lease)


async def tag_write(cache: RedisCache, count: int) -> None:
    print("READY", flush=True)
    await _line()
    for n in range(count):
        await cache.set_async(f"item:{n}", n, tags=["menu", f"item:{n}"])
    print("WRITTEN", flush=True)


async def tag_read(cache: RedisCache, count: int) -> None:
    print("READY", flush=True)
    await _line()
    found = sum([await cache.get_async(f"item:{n}") is not None for n in range(count)])
    print(json.dumps({"found": found}), flush=True)


async def main() -> None:
    mode, url, *rest = sys.argv[1:]
    repo = RedisRepository(RedisConfig(url=url))
    await repo.connect()
    try:
        async with RedisCache(repo, "proc", default_expiration=60) as cache:
            if mode == "stampede":
                await stampede(cache, repo, rest[0], int(rest[1]), float(rest[2]), float(rest[3]))
            elif mode == "hold":
                await hold(cache, rest[0], float(rest[1]))
            elif mode == "tag-write":
                await tag_write(cache, int(rest[0]))
            elif mode == "tag-read":
                await tag_read(cache, int(rest[0]))
            else:
                raise SystemExit(f"unknown mode {mode}")
    finally:
        await repo.disconnect()


if __name__ == "__main__":
    asyncio.run(main())
