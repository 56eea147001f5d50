"""Helpers of the lock suite."""

from __future__ import annotations

import asyncio
import itertools
import re
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


# The fencing counter of every lock under a key prefix: the one lock key that lives for ever.
FENCING_COUNTER = b"\xfflock:fencing"
# Tokens of undone acquisitions, refused should they arrive late: kept for a lease.
UNDONE = b"}undone:"


SLOT_COUNTER = re.compile(rb".*\xfflock\{[0-?]{4}\}fencing", re.S)
"""A fencing counter of one hash slot (on a cluster)."""


async def lock_leftovers(repo: RedisRepository, *, longest_lease: float = 60.0) -> list[str]:
    """The keys that locks left behind and should not have.

    The fencing counter stays by design, and the record of undone
    acquisitions stays, with an expiry, for at most a lease; anything else
    (a lock key, a queue, a wake-up list, an undo record without expiry) is
    a leftover.
    """
    left = []
    async for key in repo.scan_async("*"):
        raw = key.encode() if isinstance(key, str) else key
        if raw.endswith(FENCING_COUNTER) or SLOT_COUNTER.fullmatch(raw):
            continue
        if UNDONE in raw and 0 < await repo.pttl_async(key) <= longest_lease * 1000:
            continue
        left.append(repr(key))
    return sorted(left)


def no_overlap(intervals: list[tuple[int, int]]) -> bool:
    """Whether the (enter, exit) intervals are pairwise disjoint."""
    ordered = sorted(intervals)
    return all(prev[1] <= nxt[0] for prev, nxt in itertools.pairwise(ordered))
