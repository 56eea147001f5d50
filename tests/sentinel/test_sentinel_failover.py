"""Failovers under load: the repository follows the new primary without the caller doing anything.

Each test fails the module's group over (a killed primary, or a manual
``SENTINEL FAILOVER``) and brings it back to two linked servers before it
ends. Every operation either succeeds or raises a ``CacheException``; no
write the new primary acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import pytest

from neuroglia.data.redis import CacheException, CacheUnavailableError, RedisRepository
from neuroglia.data.redis.nearcache import NearCache
from neuroglia.data.redis.testing import SentinelGroup
from tests.sentinel.conftest import SentinelRepositories
from tests.support.cache import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

WRITERS = 20
RUN_BOUND = 20.0  # seconds: a loop never runs longer, whatever happens


@dataclass
class Writer:
    """One task's sequential writes to its own key, and what came of them."""

    key: str
    acknowledged: list[tuple[int, float]] = field(default_factory=list)  # (value, when it was sent)
    uncertain: set[int] = field(default_factory=set)  # failed after it may have run
    failures: list[CacheException] = field(default_factory=list)


async def write_until(repo: RedisRepository, writer: Writer, stop: asyncio.Event) -> None:
    value = 0
    loop = asyncio.get_running_loop()
    bound = loop.time() + RUN_BOUND
    while not stop.is_set() and loop.time() < bound:
        value += 1
        sent = time.monotonic()
        try:
            await repo.set_async(writer.key, str(value))
        except CacheException as exc:  # anything else fails the test
            writer.failures.append(exc)
            if exc.delivery is None or exc.delivery.name == "MAYBE_APPLIED":
                writer.uncertain.add(value)
            await asyncio.sleep(0.01)
            continue
        writer.acknowledged.append((value, sent))
        await asyncio.sleep(0.002)


def first_success_after(writers: list[Writer], moment: float) -> float | None:
    """Seconds from ``moment`` to the first acknowledged write sent after it."""
    times = [sent for w in writers for _, sent in w.acknowledged if sent > moment]
    return min(times) - moment if times else None


async def test_a_hung_primary_is_left_for_the_one_the_sentinels_promote(
    sentinel_repo: SentinelRepositories, sentinel_group: SentinelGroup
) -> None:
    # SIGSTOP: the connection stays open and silent (no reset, no refusal), as in a
    # partition. Commands time out; the sentinels' +switch-master moves the transport.
    repo = sentinel_repo(operation_timeout=0.5, retry_policy={"retries": 0}, circuit_breaker=False)
    transport = sentinel_repo.transport(repo)
    await repo.set_async("hung", "before")
    hung = sentinel_group.primary()
    hung.pause()
    try:
        new = await asyncio.to_thread(sentinel_group.wait_for_new_primary, hung)
        await eventually(lambda: transport.primary_address == new, within=10, what="the transport follows the switch")
        await until_done(lambda: repo.set_async("hung", "after"))
        assert await repo.get_async("hung") == "after"
    finally:
        hung.resume()
        await asyncio.to_thread(sentinel_group.restart_as_replica, hung)


async def test_killing_the_primary_under_load(
    sentinel_repo: SentinelRepositories, sentinel_group: SentinelGroup
) -> None:
    repo = sentinel_repo(retry_policy={"retries": 3, "retry_delay": 0.05}, circuit_breaker=False)
    transport = sentinel_repo.transport(repo)
    await asyncio.to_thread(sentinel_group.wait_ready)
    await repo.ping()
    writers = [Writer(f"load:{i}") for i in range(WRITERS)]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(write_until(repo, w, stop)) for w in writers]
    try:
        await asyncio.sleep(0.3)
        old = transport.primary_address
        sentinel_group.kill_primary()
        killed_at = time.monotonic()
        await asyncio.to_thread(sentinel_group.wait_for_failover)
        promoted_at = time.monotonic()
        # Keep writing until every writer has had its writes acknowledged by the new primary for a while.
        await eventually(
            lambda: all(any(sent > promoted_at + 0.5 for _, sent in w.acknowledged) for w in writers),
            within=RUN_BOUND / 2,
            what="every writer writes on the new primary",
        )
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    recovery = first_success_after(writers, killed_at)
    assert recovery is not None
    print(
        f"\nsentinel failover: kill -> first successful write {recovery:.3f} s; "
        f"kill -> sentinels agree {promoted_at - killed_at:.3f} s; "
        f"failed operations {sum(len(w.failures) for w in writers)}"
    )
    assert transport.primary_address != old
    assert transport.failovers == 1
    # What failed was an outage, each with how far it got: never a bad command, never a raw error.
    failures = [exc for w in writers for exc in w.failures]
    assert all(isinstance(exc, CacheUnavailableError) and exc.delivery is not None for exc in failures), failures
    sentinel_group.restart_killed()
    # Nothing the new primary acknowledged is lost: each key holds its last acknowledged
    # value, or a later one whose write failed after it may have run.
    for w in writers:
        last = w.acknowledged[-1][0]
        stored = await repo.get_async(w.key)
        assert stored is not None
        assert int(stored) == last or (int(stored) > last and int(stored) in w.uncertain), (w.key, stored, last)


async def test_a_manual_failover_with_a_near_cache(
    sentinel_repo: SentinelRepositories, sentinel_group: SentinelGroup
) -> None:
    # The old primary stays up and turns replica: writes still sent to it get READONLY,
    # and the +switch-master message arrives; either makes the transport move. The near
    # cache's entries were tracked on the old primary: they are flushed, and tracking
    # starts again on the new one.
    reader = sentinel_repo(near_cache=True, circuit_breaker=False)
    writer = sentinel_repo(circuit_breaker=False)
    await writer.set_async("menu", "stale")
    assert await reader.get_async("menu") == "stale"
    assert await reader.get_async("menu") == "stale"
    near = reader.near_cache
    assert isinstance(near, NearCache)
    assert near.statistics().hits == 1  # held locally, tracked on the old primary
    old = sentinel_repo.transport(writer).primary_address
    new = await asyncio.to_thread(sentinel_group.failover)
    await until_done(lambda: writer.set_async("menu", "fresh"))  # on the new primary
    assert sentinel_repo.transport(writer).primary_address == new != old
    await eventually(lambda: near.statistics().flushes >= 1, within=10, what="the near cache is flushed")
    assert await until_done(lambda: reader.get_async("menu")) == "fresh"
    assert sentinel_repo.transport(reader).primary_address == new
    assert await reader.get_async("menu") == "fresh"  # tracked on the new primary
    await writer.set_async("menu", "fresher")
    await eventually(lambda: len(near.store) == 0, within=5, what="the new primary's invalidation")
    assert await reader.get_async("menu") == "fresher"


async def until_done(call: object, within: float = 10.0) -> object:
    """``await call()`` until it does not raise a ``CacheException``, bounded in time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            return await call()  # type: ignore[operator]
        except CacheException:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.05)
