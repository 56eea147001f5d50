"""50 concurrent tasks keep working while the server is killed and restarted twice.

Every operation either succeeds or raises a CacheException subclass, none
outlives its deadline, and no read returns a value that was never written to
that key. Each task records every value it tries to write *before* sending it
(a write that failed uncertainly may still have been applied).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

import pytest

from neuroglia.data.redis import CacheException, CircuitOpenError, CircuitState, RedisRepository
from neuroglia.data.redis.testing import RedisServer
from tests.support.faults import OPERATION_TIMEOUT, fast_config, wait_until_closed
from tests.support.repositories import RepositoryFactory

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

TASKS = 50
# Scheduling noise for 50 tasks on a loaded 2-core machine.
MARGIN = 0.75


@dataclass
class Tally:
    ok: int = 0
    failed: int = 0
    fast_failed: int = 0
    slowest: float = 0.0
    errors: set[str] = field(default_factory=set)


async def worker(n: int, repo: RedisRepository, stop: asyncio.Event, tally: Tally) -> None:
    rng = random.Random(n)
    loop = asyncio.get_running_loop()
    key, counter = f"load:{n}", f"load:{n}:count"
    attempted: set[str] = set()
    i = 0
    while not stop.is_set():
        i += 1
        roll = rng.random()
        started = loop.time()
        try:
            if roll < 0.45:
                value = f"{n}:{i}"
                attempted.add(value)  # before sending: an uncertain write may have landed
                assert await repo.set_async(key, value) is True
            elif roll < 0.9:
                got = await repo.get_async(key)
                assert got is None or got in attempted, f"{key} read {got!r}, never written"
            else:
                assert await repo.incr_async(counter) >= 1
            tally.ok += 1
        except CircuitOpenError:
            tally.fast_failed += 1
        except CacheException as exc:
            tally.failed += 1
            tally.errors.add(type(exc).__name__)
        elapsed = loop.time() - started
        tally.slowest = max(tally.slowest, elapsed)
        assert elapsed <= OPERATION_TIMEOUT + MARGIN, f"an operation took {elapsed:.2f}s"
        await asyncio.sleep(rng.uniform(0.001, 0.01))


async def test_fifty_tasks_through_two_kills_and_restarts(server: RedisServer, repo_factory: RepositoryFactory) -> None:
    repo = repo_factory.make(fast_config(server.url))
    breaker = repo.circuit_breaker
    assert breaker is not None
    stop = asyncio.Event()
    tally = Tally()
    workers = [asyncio.create_task(worker(n, repo, stop, tally)) for n in range(TASKS)]
    try:
        for _ in range(2):
            await asyncio.sleep(0.8)
            before = tally.ok
            await asyncio.to_thread(server.kill)
            await asyncio.sleep(0.8)
            await asyncio.to_thread(server.start)
            assert tally.ok > 0
            assert before > 0
        await asyncio.sleep(1.0)
    finally:
        stop.set()
        results = await asyncio.gather(*workers, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, failures[0]
    assert tally.failed + tally.fast_failed > 0  # the outages were felt...
    assert breaker.opened_count >= 1  # ...and the breaker opened
    assert tally.errors <= {"CacheUnavailableError", "CacheTimeoutError"}, tally.errors
    # ...and everyone is served again, without any action by the caller.
    await wait_until_closed(repo, "load:0")
    assert breaker.state is CircuitState.CLOSED
    assert await repo.set_async("load:after", "ok") is True
    assert await repo.get_async("load:after") == "ok"
    assert int(repo.connection_pool.in_use_connections) == 0
    assert int(repo.connection_pool.created_connections) <= repo.config.pool.max_connections
