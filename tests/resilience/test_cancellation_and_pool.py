"""Cancellation safety and the bounded pool, through a delaying TCP proxy.

The redis-py CVE-2023-28858/28859 scenario: a command cancelled after it was
sent but before its reply was read must not leave that reply on a pooled
connection, where the next caller would read it as its own. Here replies are
delayed by a proxy so that cancellations land mid-read, many times over.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any

import pytest

from neuroglia.data.redis import (
    CacheException,
    CacheTimeoutError,
    CacheUnavailableError,
    CircuitState,
)
from neuroglia.data.redis.testing import RedisServer
from tests.support.faults import fast_config, outcome
from tests.support.repositories import RepositoryFactory

if TYPE_CHECKING:
    from tests.support.proxy import TcpProxy

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

MARGIN = 0.75


async def seed(server: RedisServer, repo_factory: RepositoryFactory, count: int) -> dict[str, str]:
    """Write ``key<i> = value<i>`` directly to the server (not through the proxy)."""
    direct = repo_factory.make(fast_config(server.url))
    values = {f"key{i}": f"value{i}" for i in range(count)}
    await direct.set_many_async(values)
    return values


async def test_the_next_command_gets_its_own_reply_after_a_cancel_mid_read(
    server: RedisServer, proxy: TcpProxy, repo_factory: RepositoryFactory
) -> None:
    values = await seed(server, repo_factory, 50)
    repo = repo_factory.make(fast_config(proxy.url, max_connections=1))  # one connection: a stray reply would be read
    proxy.reply_delay = 0.004
    rng = random.Random(28858)
    cancelled = 0
    for i in range(150):
        victim, next_key = f"key{i % 50}", f"key{(i * 7 + 3) % 50}"
        task = asyncio.create_task(repo.get_async(victim))
        # Cancel at every stage: before the send, right after it, mid-reply.
        if i % 3 == 0:
            await asyncio.sleep(0)
        elif i % 3 == 1:
            await asyncio.sleep(rng.uniform(0, 0.004))
        else:
            await asyncio.sleep(0.002)
        if task.cancel():
            cancelled += 1
        try:
            await task
        except asyncio.CancelledError:
            pass
        else:
            assert task.result() == values[victim]
        assert await repo.get_async(next_key) == values[next_key]
    assert cancelled >= 100
    assert int(repo.connection_pool.in_use_connections) == 0


async def test_wait_for_timeouts_mid_read_never_cross_replies(
    server: RedisServer, proxy: TcpProxy, repo_factory: RepositoryFactory
) -> None:
    values = await seed(server, repo_factory, 40)
    repo = repo_factory.make(fast_config(proxy.url, max_connections=3))
    proxy.reply_delay = 0.003
    rng = random.Random(28859)

    async def reader(n: int) -> int:
        """Read keys under short timeouts; every reply that arrives must be this key's value."""
        timed_out = 0
        for j in range(25):
            key = f"key{(n * 13 + j) % 40}"
            try:
                value = await asyncio.wait_for(repo.get_async(key), rng.uniform(0.0005, 0.008))
            except TimeoutError:
                timed_out += 1
            except CacheException:
                continue  # the pool wait or the deadline: fine, as long as nothing crosses
            else:
                assert value == values[key], (key, value)
        return timed_out

    timed_out = sum(await asyncio.gather(*(reader(n) for n in range(8))))
    assert timed_out > 0
    # Afterwards every connection is clean.
    results = await asyncio.gather(*(repo.get_async(k) for k in values))
    assert results == list(values.values())
    assert int(repo.connection_pool.in_use_connections) == 0


async def test_the_operation_deadline_mid_read_never_crosses_replies(
    server: RedisServer, proxy: TcpProxy, repo_factory: RepositoryFactory
) -> None:
    values = await seed(server, repo_factory, 20)
    repo = repo_factory.make(fast_config(proxy.url, max_connections=1, operation_timeout=0.03, circuit_breaker=False))
    proxy.reply_delay = 0.02
    hits = timeouts = 0
    for i in range(60):
        key = f"key{i % 20}"
        # Past, well within, near the deadline (a new connection costs a delayed handshake too).
        proxy.reply_delay = (0.05, 0.003, 0.02)[i % 3]
        result = await outcome(repo.get_async(key))
        if isinstance(result, CacheException):
            assert isinstance(result, CacheTimeoutError), result
            timeouts += 1
        else:
            assert result == values[key]
            hits += 1
    assert hits
    assert timeouts
    proxy.reply_delay = 0
    assert [await repo.get_async(k) for k in values] == list(values.values())


async def test_pipelines_cancelled_mid_read_never_cross_replies(
    server: RedisServer, proxy: TcpProxy, repo_factory: RepositoryFactory
) -> None:
    values = await seed(server, repo_factory, 30)
    repo = repo_factory.make(fast_config(proxy.url, max_connections=1))
    proxy.reply_delay = 0.003
    rng = random.Random(7)
    for i in range(60):
        keys = [f"key{(i + j) % 30}" for j in range(5)]
        pipe = repo.pipeline()
        for key in keys:
            pipe.get_async(key)
        task = asyncio.create_task(pipe.execute())
        await asyncio.sleep(rng.uniform(0, 0.004))
        task.cancel()
        try:
            results = await task
        except asyncio.CancelledError:
            pass
        else:
            assert results == [values[k] for k in keys]
        other = f"key{(i * 11) % 30}"
        assert await repo.get_async(other) == values[other]
    assert int(repo.connection_pool.in_use_connections) == 0


async def test_a_thousand_cancelled_operations_leak_no_connection(
    server: RedisServer, proxy: TcpProxy, repo_factory: RepositoryFactory
) -> None:
    values = await seed(server, repo_factory, 20)
    max_connections = 5
    repo = repo_factory.make(fast_config(proxy.url, max_connections=max_connections))
    proxy.reply_delay = 0.002
    rng = random.Random(1000)
    cancelled = 0
    for batch in range(60):  # bounded; stops once 1,000 operations were cancelled
        if cancelled >= 1000:
            break
        ops: list[tuple[str, str, asyncio.Task[Any]]] = []
        for n in range(50):
            key = f"key{(batch + n) % 20}"
            if n % 4:
                ops.append(("get", key, asyncio.create_task(repo.get_async(key))))
            elif n % 8:
                ops.append(("incr", key, asyncio.create_task(repo.incr_async("counter"))))
            else:
                ops.append(("set", key, asyncio.create_task(repo.set_async(key, values[key]))))
        tasks = [task for _, _, task in ops]
        await asyncio.sleep(rng.uniform(0, 0.006))
        for task in tasks:
            if rng.random() < 0.9 and task.cancel():
                cancelled += 1
        # A second cancel for some, as a caller's own timeout racing a shutdown would do.
        await asyncio.sleep(0)
        for task in tasks[::7]:
            task.cancel()
        for kind, key, task in ops:
            try:
                result = await task
            except asyncio.CancelledError:
                continue
            except CacheUnavailableError:
                continue  # a pool wait or the deadline
            # Whatever completed got its own reply, not a stray one.
            if kind == "get":
                assert result == values[key], (key, result)
            elif kind == "incr":
                assert isinstance(result, int), result
                assert result >= 1
            else:
                assert result is True
    assert cancelled >= 1000
    assert int(repo.connection_pool.in_use_connections) == 0
    assert int(repo.connection_pool.created_connections) <= max_connections
    # Every connection still works and answers its own commands.
    got = await asyncio.gather(*(repo.get_async(k) for k in values))
    assert got == list(values.values())
    assert int(repo.connection_pool.created_connections) <= max_connections
    assert repo.circuit_breaker is not None
    assert repo.circuit_breaker.state is CircuitState.CLOSED  # cancellations are not failures


# -- the bounded pool ----------------------------------------------------------------


@pytest.mark.parametrize("retries", [0, 2])
@pytest.mark.parametrize("transport", ["multiplexed", "redis-py"])
async def test_pool_exhausted_waits_then_raises(
    server: RedisServer, repo_factory: RepositoryFactory, retries: int, transport: str
) -> None:
    # redis-py lends a connection per command, so two blocking pops hold its
    # whole pool of two and a plain GET waits. The multiplexed transport keeps
    # one shared connection for every caller plus dedicated ones for blocking
    # commands (max_connections=3: one shared, two dedicated): two pops hold the
    # dedicated ones, and a third blocking command is the one that waits.
    multiplexed = transport == "multiplexed"
    repo = repo_factory.make(
        fast_config(
            server.url,
            max_connections=3 if multiplexed else 2,
            pool_timeout=0.3,
            operation_timeout=0.8,
            circuit_breaker=False,
            retry_policy={"retries": retries, "retry_delay": 0.01},
            transport=transport,
        )
    )
    holders = [asyncio.create_task(outcome(repo.blpop_async(f"empty{i}", timeout=2))) for i in range(2)]
    try:
        await asyncio.sleep(0.2)
        assert int(repo.connection_pool.in_use_connections) == 2
        loop = asyncio.get_running_loop()
        if multiplexed:
            started = loop.time()
            assert await repo.get_async("menu") is None  # the shared connection is not held by the pops
            assert loop.time() - started < 0.3
        started = loop.time()
        result = await outcome(repo.blpop_async("empty-too", timeout=0.01) if multiplexed else repo.get_async("menu"))
        elapsed = loop.time() - started
        assert isinstance(result, CacheTimeoutError), result
        assert elapsed >= 0.3 * 0.9  # it waited for a free connection first
        if retries == 0:
            assert "no connection became free" in str(result)
            assert elapsed <= 0.3 + MARGIN
        else:
            # Never sent, so retried (waiting again), until the operation deadline.
            assert elapsed <= 0.8 + MARGIN
        # never more than the bound
        assert int(repo.connection_pool.created_connections) == (3 if multiplexed else 2)
    finally:
        for holder in holders:
            holder.cancel()
        await asyncio.gather(*holders, return_exceptions=True)
    assert await repo.get_async("menu") is None
    assert int(repo.connection_pool.in_use_connections) == 0


async def test_a_waiter_gets_the_connection_released_within_pool_timeout(
    server: RedisServer, repo_factory: RepositoryFactory
) -> None:
    repo = repo_factory.make(fast_config(server.url, max_connections=1, pool_timeout=2.0, operation_timeout=3.0))
    await repo.set_async("menu", "margherita")
    holder = asyncio.create_task(repo.blpop_async("empty", timeout=0.3))
    await asyncio.sleep(0.05)
    assert await repo.get_async("menu") == "margherita"  # waited for the BLPOP to end
    assert await holder is None


async def test_pipelines_and_commands_share_the_pool_bound(
    server: RedisServer, repo_factory: RepositoryFactory
) -> None:
    repo = repo_factory.make(fast_config(server.url, max_connections=2, pool_timeout=2.0, operation_timeout=3.0))
    await repo.set_async("menu", "margherita")

    async def pipeline_read() -> list[Any]:
        pipe = repo.pipeline()
        pipe.get_async("menu")
        pipe.incr_async("pipelined")
        return await pipe.execute()

    async def command_read() -> Any:
        return await repo.get_async("menu")

    # Far more concurrent work than connections: everyone waits its turn, nobody
    # is refused with "too many connections", and the pool never exceeds its bound.
    results = await asyncio.gather(*(pipeline_read() if n % 2 else command_read() for n in range(60)))
    for n, result in enumerate(results):
        if n % 2:
            assert result[0] == "margherita"
        else:
            assert result == "margherita"
    assert await repo.get_async("pipelined") == "30"
    assert int(repo.connection_pool.created_connections) <= 2
    assert int(repo.connection_pool.in_use_connections) == 0


async def test_cut_connections_through_the_proxy(
    server: RedisServer, proxy: TcpProxy, repo_factory: RepositoryFactory
) -> None:
    repo = repo_factory.make(fast_config(proxy.url, circuit_breaker=False))
    await repo.set_async("menu", "margherita")
    proxy.reply_delay = 0.05
    for _ in range(5):
        tasks = [asyncio.create_task(outcome(repo.get_async("menu"))) for _ in range(10)]
        await asyncio.sleep(0.02)
        await proxy.cut_all()
        for result in await asyncio.gather(*tasks):
            assert result == "margherita" or isinstance(result, CacheUnavailableError), result
    proxy.reply_delay = 0
    assert await repo.get_async("menu") == "margherita"


async def test_a_silent_network_partition_is_bounded_by_the_deadline(
    server: RedisServer, proxy: TcpProxy, repo_factory: RepositoryFactory
) -> None:
    repo = repo_factory.make(
        fast_config(proxy.url, max_connections=1, socket_timeout=0.3, operation_timeout=0.6, circuit_breaker=False)
    )
    await repo.set_async("menu", "margherita")
    await repo.rpush_async("recent", "a", "b", "c", "d")
    loop = asyncio.get_running_loop()
    for call in (
        lambda: repo.get_async("menu"),
        lambda: repo.incr_async("n"),
        lambda: repo.ltrim_async("recent", 1, -1),
        lambda: repo.set_async("claim", "me", nx=True),
    ):
        assert await repo.ping()  # a live connection, so the command itself is sent
        proxy.hold_replies = True  # requests reach the server; replies never come back
        try:
            started = loop.time()
            result = await outcome(call())
            assert isinstance(result, CacheTimeoutError), result
            assert loop.time() - started <= 0.6 + MARGIN
        finally:
            proxy.hold_replies = False
    # Each uncertain write ran exactly once on the server: none was resent.
    assert await repo.get_async("menu") == "margherita"
    assert await repo.get_async("n") == "1"
    assert await repo.lrange_async("recent") == ["b", "c", "d"]
    assert await repo.get_async("claim") == "me"


@pytest.mark.parametrize("transport", ["multiplexed", "redis-py"])
async def test_a_full_pool_is_congestion_not_an_outage(
    server: RedisServer, repo_factory: RepositoryFactory, transport: str
) -> None:
    # Long blocking commands hold every connection they may use on a healthy
    # server: the other callers that need one wait, then get CacheTimeoutError;
    # the breaker must not open, or it would refuse every command for
    # recovery_timeout while Redis is fine. (With the multiplexed transport the
    # pops hold the dedicated connections, max_connections=3 minus the shared
    # one, and the callers that wait are other blocking commands.)
    multiplexed = transport == "multiplexed"
    repo = repo_factory.make(
        fast_config(
            server.url,
            max_connections=3 if multiplexed else 2,
            pool_timeout=0.1,
            retry_policy={"retries": 0},
            transport=transport,
        )
    )
    breaker = repo.circuit_breaker
    assert breaker is not None
    await repo.set_async("menu", "margherita")
    holders = [asyncio.create_task(outcome(repo.blpop_async(f"jobs{i}", timeout=1))) for i in range(2)]
    try:
        await asyncio.sleep(0.1)
        for _ in range(breaker.failure_threshold + 2):
            result = await outcome(repo.blpop_async("jobs-other", 0.01) if multiplexed else repo.get_async("menu"))
            assert isinstance(result, CacheTimeoutError), result
            assert "no connection became free" in str(result)
            if multiplexed:
                assert await repo.get_async("menu") == "margherita"  # the shared connection still serves
        assert breaker.state is CircuitState.CLOSED
    finally:
        for holder in holders:
            holder.cancel()
        await asyncio.gather(*holders, return_exceptions=True)
    assert await repo.get_async("menu") == "margherita"
