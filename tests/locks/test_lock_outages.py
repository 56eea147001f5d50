"""A lock lost to an outage says so: the loss is a CacheUnavailableError as well as a LockLostError.

A handler written for outages (``except CacheUnavailableError``) around a
locked section must see one, whether the outage surfaced inside the block or
only made the lease run out.
"""

from __future__ import annotations

import asyncio

import pytest

from neuroglia.data.redis import (
    CacheException,
    CacheUnavailableError,
    DistributedLock,
    LockLostError,
    LockOutageError,
    RedisConfig,
    RedisRepository,
)
from neuroglia.data.redis.testing import FaultInjectingTransport
from neuroglia.data.redis.transport import build_transport
from tests.support.repositories import RepositoryFactory

pytestmark = pytest.mark.timeout(30)


def _flaky(repo_factory: RepositoryFactory) -> tuple[RedisRepository, FaultInjectingTransport]:
    config = RedisConfig(url=repo_factory.url or "memory://", retry_policy={"retries": 0}, circuit_breaker=False)
    transport = FaultInjectingTransport(build_transport(config))
    return RedisRepository(config, transport=transport), transport


@pytest.fixture
def flaky(repo_factory: RepositoryFactory, backend_url: str) -> tuple[RedisRepository, FaultInjectingTransport]:
    return _flaky(repo_factory)


async def test_an_outage_inside_the_block_that_cost_the_lock_reaches_an_outage_handler(
    flaky: tuple[RedisRepository, FaultInjectingTransport],
) -> None:
    repo, transport = flaky
    told = asyncio.Event()
    lock = DistributedLock(repo, "orders:lock:1", timeout=0.3, on_lost=lambda _: told.set())

    async def section() -> None:
        async with lock:
            transport.faults.outage = True
            await asyncio.wait_for(told.wait(), 5)  # the lease ran out: renewals were refused
            await repo.get_async("orders:1")  # the outage, as the block sees it

    try:
        await section()
    except CacheUnavailableError as error:  # the handler an operator writes for outages
        caught: BaseException = error
    else:
        raise AssertionError("the block ended without an error")
    finally:
        transport.faults.outage = False
    assert isinstance(caught, LockLostError)
    assert isinstance(caught, LockOutageError)
    assert isinstance(caught.__cause__, CacheUnavailableError)  # the outage the block met
    assert "orders:lock:1" in str(caught)


async def test_a_lease_lost_to_an_outage_is_an_outage_even_when_the_block_ran_on(
    flaky: tuple[RedisRepository, FaultInjectingTransport],
) -> None:
    repo, transport = flaky
    lost: list[LockLostError] = []
    told = asyncio.Event()

    def on_lost(error: LockLostError) -> None:
        lost.append(error)
        told.set()

    lock = DistributedLock(repo, "orders:lock:2", timeout=0.3, on_lost=on_lost)

    async def section() -> None:
        async with lock:
            transport.faults.outage = True
            await asyncio.wait_for(told.wait(), 5)
            transport.faults.outage = False  # back before the block ends

    with pytest.raises(CacheUnavailableError) as raised:
        await section()
    assert isinstance(raised.value, LockOutageError)
    assert isinstance(raised.value.outage, CacheUnavailableError)  # what cost the lease
    # The callback was told the same thing.
    assert len(lost) == 1
    assert isinstance(lost[0], LockOutageError)


async def test_a_lock_lost_otherwise_is_not_an_outage(backend: RedisRepository) -> None:
    lock = DistributedLock(backend, "orders:lock:3", timeout=5)

    async def section() -> None:
        async with lock:
            await backend.delete_async("orders:lock:3")  # taken away, Redis is fine

    with pytest.raises(LockLostError) as raised:
        await section()
    assert not isinstance(raised.value, CacheUnavailableError)


async def test_an_application_error_stays_the_cause_when_an_outage_cost_the_lock(
    flaky: tuple[RedisRepository, FaultInjectingTransport],
) -> None:
    repo, transport = flaky
    told = asyncio.Event()
    lock = DistributedLock(repo, "orders:lock:4", timeout=0.3, on_lost=lambda _: told.set())

    async def section() -> None:
        async with lock:
            transport.faults.outage = True
            await asyncio.wait_for(told.wait(), 5)
            raise ValueError("the order was malformed")

    try:
        with pytest.raises(LockOutageError) as raised:
            await section()
    finally:
        transport.faults.outage = False
    assert isinstance(raised.value.__cause__, ValueError)
    assert isinstance(raised.value.outage, CacheException)
