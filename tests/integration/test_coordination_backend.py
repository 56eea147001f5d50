"""LeaseCoordinationBackend: the framework's CoordinationBackend contract on the library's lease.

Two backends on two repositories (two connection pools, as two processes
would have) share one database, on memory:// and on a real server. What is
checked: the four methods of the framework's interface, fencing tokens,
loss detection (a key deleted from outside, a pause longer than the lease),
renewal by the backend itself, and the framework's ``LeaderElection``
running on it. The pause across real processes, stopped with SIGSTOP, is
in ``test_coordination_processes.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from neuroglia.coordination import CoordinationBackend, LeaderElection, LeaderElectionConfig

from neuroglia.data.redis import InvalidArgumentError, LockLostError, LockNotOwnedError, RedisRepository
from neuroglia.data.redis.integration import LeaseCoordinationBackend

KEY = "leases:kitchen"


async def eventually(condition: Callable[[], Awaitable[bool] | bool], timeout: float = 5.0) -> None:
    """Wait (bounded) until ``condition`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        outcome = condition()
        if isinstance(outcome, Awaitable):
            outcome = await outcome
        if outcome:
            return
        assert loop.time() < deadline, "the condition never held"
        await asyncio.sleep(0.02)


@pytest.fixture
async def two_backends(repo_factory: Any, backend_url: str) -> Any:
    """Two backends on two repositories of one database; their leases are released at the end."""
    first = LeaseCoordinationBackend(await repo_factory())
    second = LeaseCoordinationBackend(await repo_factory())
    yield first, second
    await first.close()
    await second.close()


def test_it_is_the_frameworks_coordination_backend(backend: RedisRepository) -> None:
    assert isinstance(LeaseCoordinationBackend(backend), CoordinationBackend)


async def test_one_holder_at_a_time_and_who_it_is(two_backends: Any) -> None:
    first, second = two_backends
    assert await first.get_lease_holder(KEY) is None
    assert await first.acquire_lease(KEY, "kitchen-a", 10) is True
    assert await second.acquire_lease(KEY, "kitchen-b", 10) is False
    assert await second.get_lease_holder(KEY) == "kitchen-a"
    assert first.is_held(KEY, "kitchen-a")
    assert not second.is_held(KEY, "kitchen-b")
    # Renewing or releasing a lease one does not hold says so.
    assert await second.renew_lease(KEY, "kitchen-b", 10) is False
    assert await second.release_lease(KEY, "kitchen-b") is False
    assert await second.renew_lease(KEY, "kitchen-a", 10) is False  # same identity, another backend: not its token

    assert await first.release_lease(KEY, "kitchen-a") is True
    assert await first.get_lease_holder(KEY) is None
    assert await first.release_lease(KEY, "kitchen-a") is False
    assert await second.acquire_lease(KEY, "kitchen-b", 10) is True
    assert await first.get_lease_holder(KEY) == "kitchen-b"


async def test_a_repository_that_keeps_bytes_works_the_same(repo_factory: Any, backend_url: str) -> None:
    backend = LeaseCoordinationBackend(await repo_factory(decode_responses=False))
    try:
        assert await backend.acquire_lease(KEY, "kitchen-é", 10)
        assert await backend.get_lease_holder(KEY) == "kitchen-é"
        assert await backend.renew_lease(KEY, "kitchen-é", 10)
        assert await backend.fenced_set_async(KEY, "kitchen-é", "kitchen:batch", "1")
        assert await backend.release_lease(KEY, "kitchen-é")
    finally:
        await backend.close()


async def test_renewal_is_owner_checked_and_extends_the_lease(two_backends: Any, backend: RedisRepository) -> None:
    first, _ = two_backends
    assert await first.acquire_lease(KEY, "kitchen-a", 2)
    assert 0 < await first.repository.pttl_async(KEY) <= 2000
    assert await first.renew_lease(KEY, "kitchen-a", 30) is True
    assert 2000 < await first.repository.pttl_async(KEY) <= 30000
    assert first.valid_for(KEY, "kitchen-a") > 25
    assert await first.acquire_lease(KEY, "kitchen-a", 30) is True  # again: a renewal


async def test_fencing_tokens_increase_with_each_acquisition(two_backends: Any) -> None:
    first, second = two_backends
    tokens = []
    for backend, identity in ((first, "a"), (second, "b"), (first, "a")):
        assert await backend.acquire_lease(KEY, identity, 10)
        tokens.append(backend.fencing_token(KEY, identity))
        assert await backend.release_lease(KEY, identity)
        assert backend.fencing_token(KEY, identity) is None
    assert tokens[0] is not None
    assert tokens == sorted(tokens)
    assert len(set(tokens)) == 3


async def test_a_stale_holders_fenced_write_is_refused(two_backends: Any) -> None:
    first, second = two_backends
    assert await first.acquire_lease(KEY, "a", 10)
    assert await first.fenced_set_async(KEY, "a", "kitchen:batch", "batch-1") is True
    # The lease is lost behind first's back (deleted from outside) and second takes it.
    await first.repository.delete_async(KEY)
    assert await second.acquire_lease(KEY, "b", 10)
    assert await second.fenced_set_async(KEY, "b", "kitchen:batch", "batch-2") is True
    # first still believes it holds the lease (no renewal has run yet), but its token is older.
    assert first.is_held(KEY, "a")
    assert await first.fenced_set_async(KEY, "a", "kitchen:batch", "batch-1-late") is False
    assert await first.repository.get_async("kitchen:batch") == "batch-2"


async def test_a_lease_taken_away_is_detected_as_lost(repo_factory: Any, backend_url: str) -> None:
    lost: list[tuple[str, str, LockLostError]] = []
    backend = LeaseCoordinationBackend(await repo_factory(), on_lost=lambda *args: lost.append(args))
    try:
        assert await backend.acquire_lease(KEY, "a", 1)  # renewed by the backend every third of a second
        await backend.repository.delete_async(KEY)
        await eventually(lambda: bool(lost), timeout=3)
        key, identity, error = lost[0]
        assert (key, identity) == (KEY, "a")
        assert "was lost" in str(error)
        assert not backend.is_held(KEY, "a")
        assert await backend.renew_lease(KEY, "a", 1) is False
        with pytest.raises(LockNotOwnedError, match="nothing was written"):
            await backend.fenced_set_async(KEY, "a", "kitchen:batch", "late")
        assert await backend.repository.get_async("kitchen:batch") is None
        assert await backend.acquire_lease(KEY, "a", 1)  # and can be taken again
    finally:
        await backend.close()


async def test_a_pause_longer_than_the_lease_ends_the_lease_before_any_round_trip(
    repo_factory: Any, backend_url: str
) -> None:
    lost: list[Any] = []

    async def on_lost(*args: Any) -> None:
        lost.append(args)

    backend = LeaseCoordinationBackend(await repo_factory(), on_lost=on_lost)
    other = LeaseCoordinationBackend(await repo_factory())
    try:
        assert await backend.acquire_lease(KEY, "a", 1)
        assert backend.is_held(KEY, "a")
        time.sleep(1.2)  # noqa: ASYNC251 - the whole event loop stops, as in a stopped process
        # Awake again: nothing has run yet, and the lease is already not held.
        assert not backend.is_held(KEY, "a")
        assert backend.valid_for(KEY, "a") == 0
        with pytest.raises(LockNotOwnedError):
            await backend.fenced_set_async(KEY, "a", "kitchen:batch", "late")
        assert await backend.renew_lease(KEY, "a", 1) is False
        await eventually(lambda: bool(lost))
        assert await other.acquire_lease(KEY, "b", 5)
    finally:
        await backend.close()
        await other.close()


async def test_the_backend_renews_held_leases_by_itself(two_backends: Any) -> None:
    first, second = two_backends
    assert await first.acquire_lease(KEY, "a", 1)
    await asyncio.sleep(2.0)  # twice the lease, no renew_lease call
    assert first.is_held(KEY, "a")
    assert await second.acquire_lease(KEY, "b", 1) is False
    assert await second.get_lease_holder(KEY) == "a"
    assert await first.confirm_async(KEY, "a") is True


async def test_without_auto_renew_the_lease_runs_out(repo_factory: Any, backend_url: str) -> None:
    backend = LeaseCoordinationBackend(await repo_factory(), auto_renew=False)
    other = LeaseCoordinationBackend(await repo_factory())
    try:
        assert await backend.acquire_lease(KEY, "a", 1)
        await eventually(lambda: not backend.is_held(KEY, "a"), timeout=3)
        await eventually(lambda: other.acquire_lease(KEY, "b", 5), timeout=3)
        assert await backend.renew_lease(KEY, "a", 1) is False
    finally:
        await backend.close()
        await other.close()


async def test_bad_arguments_are_refused(backend: RedisRepository) -> None:
    coordination = LeaseCoordinationBackend(backend)
    with pytest.raises(InvalidArgumentError, match="lease_duration under one second gives 0"):
        await coordination.acquire_lease(KEY, "a", 0)
    with pytest.raises(InvalidArgumentError, match="holder_identity"):
        await coordination.acquire_lease(KEY, "", 5)
    with pytest.raises(InvalidArgumentError, match="key"):
        await coordination.get_lease_holder("")
    with pytest.raises(InvalidArgumentError, match="RedisRepository"):
        LeaseCoordinationBackend("redis://localhost")  # type: ignore[arg-type]


async def test_a_cancelled_acquisition_keeps_no_lease(two_backends: Any) -> None:
    first, second = two_backends
    attempt = asyncio.create_task(first.acquire_lease(KEY, "a", 10))
    await asyncio.sleep(0)
    attempt.cancel()
    with pytest.raises(asyncio.CancelledError):
        await attempt
    await eventually(lambda: second.acquire_lease(KEY, "b", 10), timeout=3)
    assert not first.is_held(KEY, "a")


async def test_concurrent_acquisitions_for_one_identity_share_one_lease(two_backends: Any) -> None:
    first, second = two_backends
    assert await asyncio.gather(*(first.acquire_lease(KEY, "a", 10) for _ in range(5))) == [True] * 5
    assert await second.acquire_lease(KEY, "b", 10) is False
    assert await first.release_lease(KEY, "a") is True
    assert await first.release_lease(KEY, "a") is False
    assert await second.acquire_lease(KEY, "b", 10) is True


async def test_close_releases_every_lease(two_backends: Any) -> None:
    first, second = two_backends
    assert await first.acquire_lease("leases:a", "x", 30)
    assert await first.acquire_lease("leases:b", "x", 30)
    await first.close()
    assert await second.get_lease_holder("leases:a") is None
    assert await second.get_lease_holder("leases:b") is None


async def test_a_plain_lock_on_the_key_is_reported_by_its_token(backend: RedisRepository) -> None:
    from neuroglia.data.redis import DistributedLock

    coordination = LeaseCoordinationBackend(backend)
    lock = DistributedLock(backend, KEY, timeout=10)
    async with lock:
        assert await coordination.get_lease_holder(KEY) == lock.token
        assert await coordination.acquire_lease(KEY, "a", 10) is False


# -- the framework's LeaderElection on it -----------------------------------------------------


async def test_leader_election_runs_on_it_and_hands_over(repo_factory: Any, backend_url: str) -> None:
    config = {
        "lease_name": "kitchen",
        "lease_duration": timedelta(seconds=1),
        "renew_interval": timedelta(milliseconds=300),
        "retry_period": timedelta(milliseconds=100),
    }
    backends = [LeaseCoordinationBackend(await repo_factory()) for _ in range(2)]
    elections = [
        LeaderElection(b, LeaderElectionConfig(identity=f"kitchen-{i}", **config)) for i, b in enumerate(backends)
    ]
    leaderships = [b.leadership(e) for b, e in zip(backends, elections, strict=True)]
    started: list[str] = []
    stopped: list[str] = []

    def callbacks(name: str) -> tuple[Callable[[], Any], Callable[[], Any]]:
        async def on_started() -> None:
            started.append(name)

        async def on_stopped() -> None:
            stopped.append(name)

        return on_started, on_stopped

    runs = [asyncio.create_task(e.run(*callbacks(f"kitchen-{i}"))) for i, e in enumerate(elections)]
    try:
        await eventually(lambda: len(started) == 1)
        leader = int(started[0][-1])
        follower = 1 - leader
        assert leaderships[leader].is_leader()
        assert not leaderships[follower].is_leader()
        assert leaderships[leader].key == KEY
        assert await backends[follower].get_lease_holder(KEY) == f"kitchen-{leader}"
        first_token = leaderships[leader].fencing_token
        assert await leaderships[leader].fenced_set_async("kitchen:batch", "1") is True
        with pytest.raises(LockNotOwnedError):
            await leaderships[follower].fenced_set_async("kitchen:batch", "2")

        await elections[leader].stop()  # the loop ends and releases the lease
        await asyncio.wait_for(runs[leader], timeout=5)
        assert stopped == [f"kitchen-{leader}"]
        await eventually(lambda: len(started) == 2)
        assert started[1] == f"kitchen-{follower}"
        assert leaderships[follower].is_leader()
        assert first_token is not None
        assert (leaderships[follower].fencing_token or 0) > first_token
        assert await leaderships[follower].fenced_set_async("kitchen:batch", "2") is True
    finally:
        for election in elections:
            await election.stop()
        await asyncio.wait_for(asyncio.gather(*runs, return_exceptions=True), timeout=5)
        for b in backends:
            await b.close()
