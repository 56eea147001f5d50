"""Helpers of the lock suite."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable

from neuroglia.data.redis import RedisRepository

RepoFactory = Callable[..., Awaitable[RedisRepository]]


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float = 5.0, every: float = 0.01) -> bool:
    """Poll ``check`` until it is true or ``within`` seconds passed (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        if await check():
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(every)


async def settled(repo: RedisRepository, *keys: str, within: float = 5.0) -> bool:
    """True once none of ``keys`` exists and the pool lends no connection."""

    async def check() -> bool:
        if await repo.connection_pool.in_use_connections:
            return False
        return not any([await repo.exists_async(k) for k in keys])

    return await eventually(check, within=within)


def no_overlap(intervals: list[tuple[int, int]]) -> bool:
    """Whether the (enter, exit) intervals are pairwise disjoint."""
    ordered = sorted(intervals)
    return all(prev[1] <= nxt[0] for prev, nxt in itertools.pairwise(ordered))
