"""DistributedLock basics, on memory:// and on a real redis-server."""

from __future__ import annotations

import asyncio

import pytest

from neuroglia.data.redis import (
    DistributedLock,
    InvalidArgumentError,
    LockError,
    LockLostError,
    LockNotOwnedError,
    LockTimeoutError,
    RedisRepository,
    fenced_set_async,
    fenced_token_async,
)
from tests.support.locks import eventually
from tests.support.repositories import RepositoryFactory

pytestmark = pytest.mark.timeout(60)


async def test_async_with_holds_the_key_and_frees_it(backend: RedisRepository) -> None:
    lock = DistributedLock(backend, "test_lock", timeout=5)
    async with lock as entered:
        assert entered is lock
        assert await backend.exists_async("test_lock")
        assert await backend.get_async("test_lock") == lock.token
        assert lock.held
        assert await lock.is_owned()
        assert await lock.locked()
        assert 0 < await backend.pttl_async("test_lock") <= 5000
    assert not await backend.exists_async("test_lock")
    assert not lock.held
    assert lock.fencing_token is None
    assert not await lock.is_owned()


async def test_key_lives_under_the_repository_prefix(repo_factory: RepositoryFactory, backend_url: str) -> None:
    raw = await repo_factory()
    prefixed = await repo_factory(key_prefix="app:")
    async with DistributedLock(prefixed, "orders:lock:1", timeout=5):
        assert await prefixed.exists_async("orders:lock:1")
        assert await raw.exists_async("app:orders:lock:1")
        assert not await raw.exists_async("orders:lock:1")
    assert not await raw.exists_async("app:orders:lock:1")


async def test_bytes_keys_work(backend: RedisRepository) -> None:
    lock = DistributedLock(backend, b"binary:lock", timeout=5)
    async with lock:
        assert await backend.exists_async(b"binary:lock")
        assert await lock.extend(2) > 5
    assert not await backend.exists_async(b"binary:lock")


async def test_non_blocking_acquire(repo_factory: RepositoryFactory, backend_url: str) -> None:
    repo = await repo_factory()
    other = await repo_factory()  # another process, in effect
    holder = DistributedLock(repo, "nb", timeout=5)
    assert await holder.acquire(blocking=False)
    assert not await DistributedLock(other, "nb", timeout=5).acquire(blocking=False)

    async def same_process_attempt() -> bool:
        return await DistributedLock(repo, "nb", timeout=5).acquire(blocking=False)

    assert not await asyncio.create_task(same_process_attempt())
    await holder.release()
    contender = DistributedLock(other, "nb", timeout=5)
    assert await contender.acquire(blocking=False)
    await contender.release()


async def test_release_and_extend_need_a_hold(backend: RedisRepository) -> None:
    lock = DistributedLock(backend, "not-held", timeout=5)
    with pytest.raises(LockNotOwnedError):
        await lock.release()
    with pytest.raises(LockNotOwnedError):
        await lock.extend()
    with pytest.raises(LockNotOwnedError):
        await lock.fenced_set_async("resource", "v")
    assert not await lock.is_owned()


async def test_extend_adds_or_replaces(backend: RedisRepository) -> None:
    lock = DistributedLock(backend, "ext", timeout=2, auto_renew=False)
    async with lock:
        left = await lock.extend(10)
        assert 11 < left <= 12
        assert await backend.pttl_async("ext") > 11000
        assert await lock.extend(3, replace_ttl=True) == 3
        assert 2000 < await backend.pttl_async("ext") <= 3000
        assert lock.valid_for is not None
        assert 0 < lock.valid_for <= 3


async def test_fencing_tokens_strictly_increase(repo_factory: RepositoryFactory, backend_url: str) -> None:
    repo = await repo_factory()
    other = await repo_factory()
    seen: list[int] = []
    for r in (repo, other, repo, repo, other):
        lock = DistributedLock(r, "fenced", timeout=5)
        async with lock:
            assert lock.fencing_token is not None
            seen.append(lock.fencing_token)
    assert seen == sorted(set(seen))
    assert len(seen) == 5


async def test_fenced_set_refuses_an_older_token(backend: RedisRepository) -> None:
    assert await fenced_token_async(backend, "stock") is None
    assert await fenced_set_async(backend, "stock", "10", 5)
    assert await fenced_set_async(backend, "stock", "11", 5)  # the same holder writes again
    assert await fenced_set_async(backend, "stock", "12", 7, expiration=30)
    assert not await fenced_set_async(backend, "stock", "stale", 6)
    assert await backend.get_async("stock") == "12"
    assert await fenced_token_async(backend, "stock") == 7  # the newest token that wrote
    assert 0 < await backend.ttl_async("stock") <= 30
    with pytest.raises(InvalidArgumentError):
        await fenced_set_async(backend, "stock", "x", 0)


async def test_deleted_from_outside_is_detected(backend: RedisRepository) -> None:
    lost: list[LockLostError] = []
    lock = DistributedLock(backend, "deleted", timeout=5, on_lost=lost.append)

    async def section() -> None:
        async with lock:
            assert await lock.is_owned()
            await backend.delete_async("deleted")
            assert not await lock.is_owned()
            assert len(lost) == 1
            assert "deleted" in str(lost[0])
            with pytest.raises(LockNotOwnedError):
                await lock.extend()

    with pytest.raises(LockLostError):
        await section()
    assert len(lost) == 1  # told once


async def test_expired_lease_is_detected_by_extend_and_at_exit(backend: RedisRepository) -> None:
    lost: list[LockLostError] = []

    async def on_lost(error: LockLostError) -> None:  # an async callback is awaited
        await asyncio.sleep(0)
        lost.append(error)

    lock = DistributedLock(backend, "expired", timeout=0.2, auto_renew=False, on_lost=on_lost)

    async def section() -> None:
        async with lock:
            assert await eventually(lambda: _absent(backend, "expired"), within=5)
            with pytest.raises(LockNotOwnedError):
                await lock.extend()
            assert not await lock.is_owned()

    with pytest.raises(LockLostError):
        await section()
    assert await eventually(lambda: _true(len(lost) == 1))


async def test_watchdog_notices_a_deletion_and_fires_on_lost(backend: RedisRepository) -> None:
    fired = asyncio.Event()
    lock = DistributedLock(backend, "watched", timeout=0.3, on_lost=lambda _: fired.set())

    async def section() -> None:
        async with lock:
            await backend.delete_async("watched")
            await asyncio.wait_for(fired.wait(), 5)  # the watchdog renews at lease/3 and finds it gone
            assert not lock.held

    with pytest.raises(LockLostError):
        await section()


async def test_cancel_on_lost_cancels_the_section(backend: RedisRepository) -> None:
    reached_end = False
    lock = DistributedLock(backend, "cancel-on-lost", timeout=0.3, cancel_on_lost=True)

    async def section() -> None:
        nonlocal reached_end
        async with lock:
            await backend.delete_async("cancel-on-lost")
            await asyncio.sleep(10)  # cancelled as soon as the watchdog finds the key gone
            reached_end = True

    with pytest.raises(LockLostError):
        await section()
    assert not reached_end
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0  # our own cancellation was taken back


async def test_outside_cancellation_wins_over_cancel_on_lost(backend: RedisRepository) -> None:
    lock = DistributedLock(backend, "both", timeout=5, cancel_on_lost=True)
    inside = asyncio.Event()

    async def section() -> None:
        async with lock:
            inside.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(section())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not await backend.exists_async("both")


async def test_section_three_times_the_lease_keeps_the_lock(backend: RedisRepository) -> None:
    lost: list[LockLostError] = []
    lock = DistributedLock(backend, "long", timeout=0.3, on_lost=lost.append)
    ttls: list[int] = []
    async with lock:
        loop = asyncio.get_running_loop()
        end = loop.time() + 0.9
        while loop.time() < end:
            ttls.append(await backend.pttl_async("long"))
            await asyncio.sleep(0.03)
        assert await lock.is_owned()
    assert ttls
    assert all(t > 0 for t in ttls)
    assert not lost
    assert not await backend.exists_async("long")


async def test_two_tasks_sharing_one_lock_object(backend: RedisRepository) -> None:
    lock = DistributedLock(backend, "shared", timeout=5)
    a_holds, b_tried = asyncio.Event(), asyncio.Event()
    order: list[str] = []

    async def a() -> None:
        await lock.acquire()
        order.append("a in")
        a_holds.set()
        await b_tried.wait()
        assert await lock.is_owned()
        order.append("a out")
        await lock.release()

    async def b() -> None:
        await a_holds.wait()
        assert not lock.held  # the other task's hold is not ours
        assert lock.fencing_token is None
        with pytest.raises(LockNotOwnedError):
            await lock.release()  # cannot release a's acquisition
        assert await backend.exists_async("shared")
        b_tried.set()
        await lock.acquire()  # waits for a, then holds its own acquisition
        order.append("b in")
        await lock.release()

    await asyncio.gather(a(), b())
    assert order == ["a in", "a out", "b in"]
    assert not await backend.exists_async("shared")


async def test_reentry_raises_by_default(backend: RedisRepository) -> None:
    lock = DistributedLock(backend, "reenter", timeout=5)
    async with lock:
        with pytest.raises(LockError):
            await lock.acquire()
        with pytest.raises(LockError):  # also through another object for the same key
            await DistributedLock(backend, "reenter", timeout=5).acquire()
        assert await lock.is_owned()
    assert not await backend.exists_async("reenter")


async def test_reentrant_lock_counts(backend: RedisRepository) -> None:
    lock = DistributedLock(backend, "counted", timeout=5, reentrant=True)
    async with lock:
        fence = lock.fencing_token
        async with lock:
            async with DistributedLock(backend, "counted", timeout=5, reentrant=True) as other:
                assert other.fencing_token == fence
            assert await backend.exists_async("counted")
        assert await backend.exists_async("counted")
        assert lock.fencing_token == fence
    assert not await backend.exists_async("counted")


async def test_timeout_error_arrives_in_time_even_with_long_leases(
    repo_factory: RepositoryFactory, backend_url: str
) -> None:
    repo = await repo_factory()
    other = await repo_factory()
    holder = DistributedLock(repo, "busy", timeout=60)
    await holder.acquire()
    loop = asyncio.get_running_loop()

    async def attempt(r: RedisRepository, **kw: float) -> float:
        start = loop.time()
        with pytest.raises(LockTimeoutError):
            await DistributedLock(r, "busy", timeout=60, **kw).acquire()
        return loop.time() - start

    async def attempt_with(r: RedisRepository, wait: float) -> float:
        start = loop.time()
        with pytest.raises(LockTimeoutError):
            await DistributedLock(r, "busy", timeout=60).acquire(wait_timeout=wait)
        return loop.time() - start

    same_process = asyncio.create_task(attempt(repo, wait_timeout=0.4))
    other_process = asyncio.create_task(attempt(other, wait_timeout=0.4))
    per_call = asyncio.create_task(attempt_with(other, 0.3))
    zero = asyncio.create_task(attempt(other, wait_timeout=0))
    for elapsed, bound in ((await same_process, 0.4), (await other_process, 0.4), (await per_call, 0.3)):
        assert elapsed < bound + 0.5
    assert await zero < 0.5
    assert await holder.is_owned()
    await holder.release()


async def test_lock_timeout_defaults_to_the_lease(backend: RedisRepository) -> None:
    lock = DistributedLock(backend, "k", timeout=7)
    assert lock.wait_timeout == 7
    assert DistributedLock(backend, "k", timeout=7, wait_timeout=1).wait_timeout == 1
    assert lock.timeout == 7
    assert lock.auto_renew
    assert not lock.reentrant
    assert "k" in repr(lock)


async def test_bad_arguments_are_refused(backend: RedisRepository) -> None:
    for kwargs in ({"timeout": 0}, {"timeout": -1}, {"timeout": float("inf")}, {"wait_timeout": -1}):
        with pytest.raises(InvalidArgumentError):
            DistributedLock(backend, "k", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        DistributedLock(backend, "")
    with pytest.raises(InvalidArgumentError):
        DistributedLock("not a repository", "k")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        DistributedLock(backend, "k", on_lost="nope")  # type: ignore[arg-type]


async def test_cancelled_inside_the_section_releases(backend: RedisRepository) -> None:
    inside = asyncio.Event()

    async def section() -> None:
        async with DistributedLock(backend, "cancelled", timeout=30):
            inside.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(section())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not await backend.exists_async("cancelled")
    async with DistributedLock(backend, "cancelled", timeout=30, wait_timeout=0):
        pass


async def test_task_ending_without_release_frees_the_lock(backend: RedisRepository) -> None:
    lock = DistributedLock(backend, "abandoned", timeout=0.3)

    async def forgetful() -> None:
        await lock.acquire()

    await asyncio.create_task(forgetful())
    assert await backend.exists_async("abandoned")
    assert await eventually(lambda: _absent(backend, "abandoned"), within=5)


async def test_waiters_of_one_process_take_turns(backend: RedisRepository) -> None:
    lock = DistributedLock(backend, "turns", timeout=5)
    order: list[int] = []
    await lock.acquire()

    async def waiter(i: int) -> None:
        async with lock:
            order.append(i)

    tasks = []
    for i in range(5):
        tasks.append(asyncio.create_task(waiter(i)))
        await asyncio.sleep(0.01)  # queue in a known order
    await lock.release()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]


async def _absent(repo: RedisRepository, key: str) -> bool:
    return not await repo.exists_async(key)


async def _true(value: bool) -> bool:
    return value
