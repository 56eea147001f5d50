"""Redlock over three independent redis-servers (and over memory://)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest

from neuroglia.data.redis import (
    CacheUnavailableError,
    ConnectionPoolConfig,
    InvalidArgumentError,
    LockError,
    LockLostError,
    LockNotOwnedError,
    LockTimeoutError,
    RedisRepository,
    Redlock,
)
from neuroglia.data.redis.locks.runtime import lock_runtime
from neuroglia.data.redis.testing import RedisServer
from tests.support.locks import eventually
from tests.support.repositories import RepositoryFactory

pytestmark = pytest.mark.timeout(60)

FAST_FAILING = {
    "connection_pool": ConnectionPoolConfig(socket_timeout=0.5, socket_connect_timeout=0.5),
    "operation_timeout": 2.0,
}


@pytest.fixture
async def repos(three_servers: list[RedisServer], repo_factory: RepositoryFactory) -> list[RedisRepository]:
    made = [repo_factory.make(server.url, **FAST_FAILING) for server in three_servers]
    for repo in made:
        await repo.connect()
    return made


@pytest.fixture
async def other_client(three_servers: list[RedisServer], repo_factory: RepositoryFactory) -> list[RedisRepository]:
    """The same three servers seen by another process."""
    return [repo_factory.make(server.url, **FAST_FAILING) for server in three_servers]


async def _holders(repos: list[RedisRepository], key: str) -> int:
    count = 0
    for repo in repos:
        with contextlib.suppress(CacheUnavailableError):
            count += int(await repo.exists_async(key))
    return count


@pytest.mark.integration
async def test_acquires_on_every_server_and_releases_everywhere(repos: list[RedisRepository]) -> None:
    lock = Redlock(repos, "report", timeout=10)
    assert lock.quorum == 2
    async with lock:
        assert await _holders(repos, "report") == 3
        assert {await r.get_async("report") for r in repos} == {lock.token}
        assert lock.valid_for is not None
        assert 0 < lock.valid_for < 10
        assert lock.fencing_token is None  # no safe fencing token across independent servers
        assert await lock.is_owned()
        assert await lock.extend(5) > 10
    assert await _holders(repos, "report") == 0


@pytest.mark.integration
async def test_acquires_with_one_server_down(three_servers: list[RedisServer], repos: list[RedisRepository]) -> None:
    three_servers[0].stop()
    lock = Redlock(repos, "one-down", timeout=10, wait_timeout=5)
    async with lock:
        assert await _holders(repos[1:], "one-down") == 2
        assert await lock.is_owned()
    assert await _holders(repos[1:], "one-down") == 0


@pytest.mark.integration
async def test_fails_cleanly_with_two_servers_down(
    three_servers: list[RedisServer], repos: list[RedisRepository]
) -> None:
    three_servers[0].stop()
    three_servers[1].stop()
    lock = Redlock(repos, "two-down", timeout=10, wait_timeout=0.5, retry_delay=0.05)
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(LockTimeoutError):
        await lock.acquire()
    assert loop.time() - start < 0.5 + 0.5
    assert not lock.held
    # The one live server was granted the key on each attempt; none is left behind.
    assert await eventually(lambda: _absent(repos[2], "two-down"))
    assert await eventually(lambda: _no_connection_in_use(repos[2]))
    assert not await lock.acquire(blocking=False)


async def _absent(repo: RedisRepository, key: str) -> bool:
    return not await repo.exists_async(key)


async def _no_connection_in_use(repo: RedisRepository) -> bool:
    return not await repo.connection_pool.in_use_connections


@pytest.mark.integration
async def test_a_held_redlock_excludes_others(
    repos: list[RedisRepository], other_client: list[RedisRepository]
) -> None:
    first = Redlock(repos, "excl", timeout=10)
    await first.acquire()
    with pytest.raises(LockTimeoutError):
        await Redlock(other_client, "excl", timeout=10, wait_timeout=0.3, retry_delay=0.05).acquire()
    # The failed attempt took nothing from the holder.
    assert await _holders(repos, "excl") == 3
    assert await first.is_owned()
    await first.release()
    second = Redlock(other_client, "excl", timeout=10, wait_timeout=2, retry_delay=0.05)
    async with second:
        assert await second.is_owned()


@pytest.mark.integration
async def test_minority_holds_do_not_block_a_majority(
    repos: list[RedisRepository], other_client: list[RedisRepository]
) -> None:
    # Another client holds the key on one server only: a majority is still free.
    await other_client[0].set_async("split", "someone-else", 30)
    async with Redlock(repos, "split", timeout=10, wait_timeout=1):
        assert await _holders(repos, "split") == 3
    assert await repos[0].get_async("split") == "someone-else"  # not ours: untouched
    assert await _holders(repos[1:], "split") == 0


@pytest.mark.integration
async def test_losing_the_majority_is_detected(repos: list[RedisRepository]) -> None:
    lost: list[LockLostError] = []
    lock = Redlock(repos, "majority", timeout=10, on_lost=lost.append)

    async def section() -> None:
        async with lock:
            await repos[0].delete_async("majority")
            assert await lock.is_owned()  # two of three still hold it
            await repos[1].delete_async("majority")
            assert not await lock.is_owned()
            with pytest.raises(LockNotOwnedError):
                await lock.extend()

    with pytest.raises(LockLostError):
        await section()
    assert len(lost) == 1
    assert await _holders(repos, "majority") == 0


@pytest.mark.integration
async def test_watchdog_renews_on_every_server(repos: list[RedisRepository]) -> None:
    lock = Redlock(repos, "renewed", timeout=0.4)
    async with lock:
        await asyncio.sleep(1.0)  # 2.5 leases
        assert await _holders(repos, "renewed") == 3
        assert await lock.is_owned()


@pytest.mark.integration
async def test_release_with_a_majority_unreachable_raises(
    three_servers: list[RedisServer], repos: list[RedisRepository]
) -> None:
    lock = Redlock(repos, "cut-off", timeout=30)
    await lock.acquire()
    three_servers[0].stop()
    three_servers[1].stop()
    with pytest.raises(CacheUnavailableError):
        async with asyncio.timeout(10):
            await lock.release()
    assert not await repos[2].exists_async("cut-off")  # released where it could be


@pytest.mark.integration
async def test_cancelled_acquisitions_leave_nothing(repos: list[RedisRepository]) -> None:
    async def section() -> None:
        async with Redlock(repos, "cancelled", timeout=30):
            await asyncio.sleep(30)

    # Cancelled at each step of the acquisition's round trips, or inside the block.
    for steps in range(12):
        task = asyncio.create_task(section())
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        (outcome,) = await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 10)
        assert isinstance(outcome, asyncio.CancelledError)
        assert await eventually(lambda: _none_hold(repos, "cancelled"))


async def _none_hold(repos: list[RedisRepository], key: str) -> bool:
    return await _holders(repos, key) == 0


async def test_redlock_on_memory_servers(repo_factory: RepositoryFactory) -> None:
    repos = [repo_factory.make(f"memory://redlock-{uuid.uuid4().hex}") for _ in range(3)]
    lock = Redlock(repos, "mem", timeout=5, reentrant=True)
    async with lock, lock:
        assert await _holders(repos, "mem") == 3
    assert await _holders(repos, "mem") == 0
    strict = Redlock(repos, "mem", timeout=5)
    async with strict:
        with pytest.raises(LockError):
            await strict.acquire()


async def test_redlock_arguments(repo_factory: RepositoryFactory) -> None:
    repo = repo_factory.make("memory://")
    with pytest.raises(InvalidArgumentError):
        Redlock([], "k")
    with pytest.raises(InvalidArgumentError):
        Redlock([repo, repo], "k")
    with pytest.raises(InvalidArgumentError):
        Redlock([repo], "k", clock_drift_factor=1.5)
    assert "servers=1" in repr(Redlock([repo], "k"))


@pytest.mark.integration
async def test_a_master_paused_during_acquisition_is_released_when_it_resumes(
    three_servers: list[RedisServer], repos: list[RedisRepository], other_client: list[RedisRepository]
) -> None:
    # The first master stops (SIGSTOP) before the acquisition: the command
    # waits unread in its socket buffer, its reply never comes, and the lock
    # is held on the other two. The release is sent while it is still stopped.
    three_servers[0].pause()
    try:
        lock = Redlock(repos, "paused", timeout=30, server_timeout=0.2)
        async with lock:
            assert await _holders(repos[1:], "paused") == 2
        assert await _holders(repos[1:], "paused") == 0
    finally:
        three_servers[0].resume()
    # Resumed, it runs the acquisition it had not read; the release reaches it
    # after that (or finds the late acquisition refused): no key is left for a lease.
    assert await eventually(lambda: _absent(repos[0], "paused"), within=5)
    again = Redlock(other_client, "paused", timeout=30, wait_timeout=1, retry_delay=0.05)
    async with again:
        assert await _holders(other_client, "paused") == 3


async def test_an_acquisition_arriving_after_its_undo_is_refused(backend: RedisRepository) -> None:
    runtime = lock_runtime(backend)
    keys = runtime.keys("late")
    # The undo of an acquisition whose answer was lost reaches Redis first...
    assert await runtime.scripts.withdraw.run((*keys.script, "token-1", "", 30000)) == 0
    # ...then the acquisition itself: refused, nothing held.
    assert await runtime.scripts.acquire.run((*keys.script, "token-1", 30000)) == 0
    assert not await backend.exists_async("late")
    # Another acquisition is not affected.
    assert await runtime.scripts.acquire.run((*keys.script, "token-2", 30000)) > 0
    assert await backend.get_async("late") == "token-2"


@pytest.mark.integration
async def test_an_unanswered_release_is_resent_but_never_reopens_a_closed_repository(
    three_servers: list[RedisServer], repos: list[RedisRepository]
) -> None:
    three_servers[0].stop()
    lock = Redlock(repos, "closed", timeout=5, wait_timeout=2)
    async with lock:
        pass  # the release to the stopped server goes unanswered: it is resent in the background
    await repos[0].disconnect()
    await asyncio.sleep(0.5)  # several resends' worth
    assert not repos[0].is_connected
    three_servers[0].start()
    await asyncio.sleep(0.3)
    assert not repos[0].is_connected
