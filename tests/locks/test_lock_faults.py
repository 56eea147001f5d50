"""Locks when Redis stops, freezes or forgets: errors arrive promptly, losses are reported."""

from __future__ import annotations

import asyncio

import pytest

from neuroglia.data.redis import (
    CacheException,
    CacheTimeoutError,
    CacheUnavailableError,
    ConnectionPoolConfig,
    DistributedLock,
    LockLostError,
    RedisRepository,
)
from neuroglia.data.redis.testing import RedisServer
from tests.support.locks import eventually
from tests.support.repositories import RepositoryFactory

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

FAST_FAILING = {
    "connection_pool": ConnectionPoolConfig(socket_timeout=0.5, socket_connect_timeout=0.5),
    "operation_timeout": 2.0,
}


@pytest.fixture
async def fragile(own_server: RedisServer, repo_factory: RepositoryFactory) -> RedisRepository:
    repo = repo_factory.make(own_server.url, **FAST_FAILING)
    await repo.connect()
    return repo


async def test_redis_down_during_release_raises_promptly(own_server: RedisServer, fragile: RedisRepository) -> None:
    lock = DistributedLock(fragile, "down", timeout=30)
    await lock.acquire()
    own_server.stop()
    with pytest.raises(CacheUnavailableError):
        async with asyncio.timeout(10):  # an error, not a hang
            await lock.release()
    own_server.start()
    async with DistributedLock(fragile, "down", timeout=30, wait_timeout=0):
        assert await fragile.exists_async("down")


async def test_redis_down_at_the_end_of_the_block_raises(own_server: RedisServer, fragile: RedisRepository) -> None:
    async def section() -> None:
        async with DistributedLock(fragile, "down-exit", timeout=30):
            own_server.stop()

    with pytest.raises(CacheException):
        await asyncio.wait_for(section(), 10)


async def test_frozen_server_during_release_times_out(own_server: RedisServer, fragile: RedisRepository) -> None:
    lock = DistributedLock(fragile, "frozen", timeout=30)
    await lock.acquire()
    own_server.pause()
    try:
        with pytest.raises(CacheTimeoutError):
            async with asyncio.timeout(10):
                await lock.release()
    finally:
        own_server.resume()


async def test_unreachable_past_the_lease_counts_as_lost(own_server: RedisServer, fragile: RedisRepository) -> None:
    told = asyncio.Event()
    lock = DistributedLock(fragile, "unreachable", timeout=0.6, on_lost=lambda _: told.set())

    async def section() -> None:
        async with lock:
            own_server.stop()
            await asyncio.wait_for(told.wait(), 10)  # the watchdog gives up when the lease has run out
            assert not lock.held

    with pytest.raises(LockLostError) as raised:
        await section()
    assert isinstance(raised.value.__cause__, CacheException)  # the failed release is attached
    # Lost to an outage: a handler for outages sees it too.
    assert isinstance(raised.value, CacheUnavailableError)


async def test_restarted_server_forgets_the_lock(own_server: RedisServer, fragile: RedisRepository) -> None:
    told = asyncio.Event()
    lock = DistributedLock(fragile, "forgotten", timeout=0.6, on_lost=lambda _: told.set())

    async def section() -> None:
        async with lock:
            own_server.restart()  # no persistence: the key is gone, and so are the scripts
            await asyncio.wait_for(told.wait(), 10)

    with pytest.raises(LockLostError):
        await section()
    async with DistributedLock(fragile, "forgotten", timeout=5, wait_timeout=0):
        pass


async def test_waiters_get_the_error_when_redis_goes_away(
    own_server: RedisServer, fragile: RedisRepository, repo_factory: RepositoryFactory
) -> None:
    elsewhere = repo_factory.make(own_server.url, **FAST_FAILING)  # the holder is another process
    holder = DistributedLock(elsewhere, "outage", timeout=30)
    await holder.acquire()

    async def wait() -> None:
        async with DistributedLock(fragile, "outage", timeout=30, wait_timeout=30):
            pass

    waiters = [asyncio.create_task(wait()) for _ in range(3)]
    await asyncio.sleep(0.05)
    own_server.stop()
    outcomes = await asyncio.wait_for(asyncio.gather(*waiters, return_exceptions=True), 20)
    assert all(isinstance(o, CacheException) for o in outcomes)


async def test_an_acquisition_cut_short_by_a_frozen_server_leaves_no_lock(
    own_server: RedisServer, repo_factory: RepositoryFactory
) -> None:
    # A client name makes every new connection wait for CLIENT SETNAME's
    # answer before it sends anything: while the server is stopped, an undo
    # cannot leave the client, and the repository's own resends stop at the
    # operation deadline (2 s).
    fragile = await repo_factory(own_server.url, client_name="frozen", **FAST_FAILING)
    own_server.pause()  # SIGSTOP: the acquisition waits unread, its answer never comes
    try:
        with pytest.raises(CacheTimeoutError):
            await DistributedLock(fragile, "frozen-acquire", timeout=30).acquire(blocking=False)
        await asyncio.sleep(3)  # stopped past the operation deadline
    finally:
        own_server.resume()
    # Resumed, the server runs the acquisition; its undo follows (or refuses it).
    assert await eventually(lambda: _absent(fragile, "frozen-acquire"), within=5)
    async with DistributedLock(fragile, "frozen-acquire", timeout=30, wait_timeout=1):
        pass


async def _absent(repo: RedisRepository, key: str) -> bool:
    return not await repo.exists_async(key)
