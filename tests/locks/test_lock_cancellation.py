"""Cancellation at every point of a lock's life leaves no orphaned key and no busy connection."""

from __future__ import annotations

import asyncio
import random

import pytest

from neuroglia.data.redis import DistributedLock, RedisRepository
from tests.support.locks import eventually, lock_leftovers
from tests.support.repositories import RepositoryFactory

pytestmark = pytest.mark.timeout(90)


async def _leftovers(repo: RedisRepository) -> list[str]:
    """Keys left behind: none but the fencing counter and the expiring record of undone acquisitions."""
    return await lock_leftovers(repo)


async def _quiet(repo: RedisRepository) -> bool:
    return not await repo.connection_pool.in_use_connections and not await _leftovers(repo)


async def _steps(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_thousand_cancelled_waiters_leave_nothing_behind(
    repo_factory: RepositoryFactory, backend_url: str
) -> None:
    repo = await repo_factory()
    other = await repo_factory()  # a second "process" with its own pool and queue
    holder = DistributedLock(repo, "crowded", timeout=30)
    await holder.acquire()
    rng = random.Random(7)

    async def wait_for_it(r: RedisRepository) -> None:
        async with DistributedLock(r, "crowded", timeout=30, wait_timeout=30):
            raise AssertionError("a cancelled waiter must never get the lock")

    tasks = [asyncio.create_task(wait_for_it(repo if i % 2 else other)) for i in range(1000)]
    for task in tasks:
        await _steps(rng.randrange(3))
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
    assert await holder.is_owned()
    await holder.release()
    assert await eventually(lambda: _quiet(repo), within=10)
    assert not await other.connection_pool.in_use_connections
    # Nothing left in the way: the next acquisition is immediate.
    async with DistributedLock(other, "crowded", timeout=30, wait_timeout=0):
        pass


async def test_thousand_acquisitions_cancelled_anywhere(repo_factory: RepositoryFactory, backend_url: str) -> None:
    repo = await repo_factory()
    other = await repo_factory()
    rng = random.Random(11)
    inside = 0

    async def use(r: RedisRepository) -> None:
        nonlocal inside
        async with DistributedLock(r, "churn", timeout=30, wait_timeout=30):
            inside += 1
            await _steps(2)

    for _ in range(10):  # 10 rounds of 100 concurrent tasks, each cancelled at a random step
        tasks = [asyncio.create_task(use(repo if i % 3 else other)) for i in range(100)]
        for task in tasks:
            await _steps(rng.randrange(6))
            task.cancel()
        outcomes = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
        assert all(o is None or isinstance(o, asyncio.CancelledError) for o in outcomes)
    assert inside > 0  # some were cancelled inside the section, some while acquiring or releasing
    assert await eventually(lambda: _quiet(repo), within=10)
    assert await eventually(lambda: _quiet(other), within=10)
    async with DistributedLock(repo, "churn", timeout=30, wait_timeout=0):
        pass


async def test_cancelled_release_still_hands_the_lock_over(repo_factory: RepositoryFactory, backend_url: str) -> None:
    repo = await repo_factory()
    other = await repo_factory()

    async def holder(acquired: asyncio.Event, leave: asyncio.Event) -> None:
        async with DistributedLock(repo, "handover", timeout=30):
            acquired.set()
            await leave.wait()

    for steps in range(10):
        acquired, leave = asyncio.Event(), asyncio.Event()
        holding = asyncio.create_task(holder(acquired, leave))
        await acquired.wait()
        local_waiter = asyncio.create_task(_hold_briefly(repo))
        remote_waiter = asyncio.create_task(_hold_briefly(other))
        await asyncio.sleep(0.01)
        leave.set()
        await _steps(steps)
        holding.cancel()  # lands before, during or after the release's round trip
        (outcome,) = await asyncio.wait_for(asyncio.gather(holding, return_exceptions=True), 10)
        assert outcome is None or isinstance(outcome, asyncio.CancelledError)
        # Either way both waiters get the lock in turn and nothing stays locked.
        assert await asyncio.wait_for(local_waiter, 10)
        assert await asyncio.wait_for(remote_waiter, 10)
        assert await eventually(lambda: _quiet(repo), within=10)


async def _hold_briefly(repo: RedisRepository) -> bool:
    async with DistributedLock(repo, "handover", timeout=30, wait_timeout=20):
        await asyncio.sleep(0)
    return True


async def test_cancelled_during_the_first_attempt_leaves_no_lock(backend: RedisRepository) -> None:
    # Cancel at each possible point of the first attempt's round trip (and,
    # later, inside the section): an attempt that reached Redis is undone.
    for steps in range(10):

        async def section() -> None:
            async with DistributedLock(backend, "first", timeout=30):
                await asyncio.sleep(30)

        task = asyncio.create_task(section())
        await _steps(steps)
        task.cancel()
        (outcome,) = await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 10)
        assert isinstance(outcome, asyncio.CancelledError)  # never swallowed
        assert await eventually(lambda: _quiet(backend), within=10)
