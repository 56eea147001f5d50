"""Fault injection on a real redis-server: kill, restart, SIGSTOP, CLIENT PAUSE, DEBUG SLEEP, CLIENT KILL.

Each test owns a private server (see ``conftest.py``). Whatever the fault,
a call ends in one of two ways: a result (the repository reconnected on its
own) or a :class:`~neuroglia.data.redis.CacheException` subclass, within the
configured deadline; never a hang and never a raw ``OSError``,
``ConnectionError`` or ``TimeoutError`` from redis-py or asyncio.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest

from neuroglia.data.redis import (
    CacheCommandError,
    CacheException,
    CacheTimeoutError,
    CacheUnavailableError,
    CircuitOpenError,
    CircuitState,
)
from neuroglia.data.redis.testing import RedisServer, free_port
from tests.support.faults import OPERATION_TIMEOUT, admin, fast_config, outcome, wait_until_closed
from tests.support.repositories import RepositoryFactory

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

# Scheduling noise on a loaded 2-core machine; the bounds themselves come from the config.
MARGIN = 0.75


async def timed(awaitable: Any) -> tuple[Any, float]:
    """``(result or CacheException, seconds)``; any other exception escapes and fails the test."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await outcome(awaitable)
    return result, loop.time() - started


def assert_mapped(result: Any) -> None:
    """A failure is a CacheException chained to its cause, never a raw client or socket error."""
    assert isinstance(result, CacheException), result


# -- killed and restarted ----------------------------------------------------------


async def test_server_killed_mid_request_raises_unavailable_within_the_timeout(
    server: RedisServer, repo_factory: RepositoryFactory
) -> None:
    repo = repo_factory.make(fast_config(server.url, circuit_breaker=False))
    await repo.set_async("menu", "margherita")
    for call in (lambda: repo.get_async("menu"), lambda: repo.incr_async("orders")):
        server.pause()  # the request is written and waits for its reply...
        task = asyncio.create_task(timed(call()))
        await asyncio.sleep(0.1)
        assert not task.done()
        server.kill()  # ...when the server dies
        result, elapsed = await task
        assert isinstance(result, CacheUnavailableError), result
        assert elapsed <= OPERATION_TIMEOUT + MARGIN
        server.start()
        await repo.set_async("menu", "margherita")


async def test_outage_opens_the_breaker_fails_fast_and_recovers_after_restart(
    server: RedisServer, repo_factory: RepositoryFactory
) -> None:
    repo = repo_factory.make(fast_config(server.url))
    breaker = repo.circuit_breaker
    assert breaker is not None
    events: list[tuple[CircuitState, CircuitState]] = []
    breaker.add_listener(lambda old, new: events.append((old, new)))
    await repo.set_async("menu", "margherita")
    server.kill()

    # failure_threshold (3) failed operations open it; each is mapped and bounded.
    for n in range(breaker.failure_threshold):
        assert breaker.state is CircuitState.CLOSED
        result, elapsed = await timed(repo.get_async("menu"))
        assert isinstance(result, CacheUnavailableError), result
        assert not isinstance(result, CircuitOpenError)
        assert elapsed <= OPERATION_TIMEOUT + MARGIN
        assert breaker.failure_count == n + 1 or breaker.state is CircuitState.OPEN
    assert breaker.state is CircuitState.OPEN
    assert events == [(CircuitState.CLOSED, CircuitState.OPEN)]

    # Open: calls fail in well under a millisecond and touch no socket.
    loop = asyncio.get_running_loop()
    connects = 0
    original = loop.create_connection

    async def counting_create_connection(*args: Any, **kwargs: Any) -> Any:
        nonlocal connects
        connects += 1
        return await original(*args, **kwargs)

    created = int(repo.connection_pool.created_connections)
    loop.create_connection = counting_create_connection  # type: ignore[method-assign]
    try:
        calls = 1000
        started = time.perf_counter()
        for _ in range(calls):
            with contextlib.suppress(CircuitOpenError):
                await repo.get_async("menu")
        per_call = (time.perf_counter() - started) / calls
    finally:
        del loop.create_connection  # back to the class's method
    assert per_call < 0.001, f"{per_call * 1e6:.0f} µs per refused call"
    assert connects == 0
    assert int(repo.connection_pool.created_connections) <= created

    # Restart on the same port: no reconnect call, no reset, the next calls just work.
    server.start()
    assert await wait_until_closed(repo, "menu") is None  # no persistence: the key is gone
    assert await repo.set_async("menu", "pepperoni") is True
    assert await repo.get_async("menu") == "pepperoni"
    assert breaker.state is CircuitState.CLOSED
    assert events == [
        (CircuitState.CLOSED, CircuitState.OPEN),
        (CircuitState.OPEN, CircuitState.HALF_OPEN),
        (CircuitState.HALF_OPEN, CircuitState.CLOSED),
    ]


async def test_idle_connections_survive_a_restart_with_health_checks_on(
    server: RedisServer, repo_factory: RepositoryFactory
) -> None:
    # Idle pooled connections point at the dead server; with health checks due, the
    # first command after the restart must still succeed, written once.
    repo = repo_factory.make(fast_config(server.url, health_check_interval=0.1, max_connections=4))
    await asyncio.gather(*(repo.incr_async("warm") for _ in range(8)))
    assert int(repo.connection_pool.created_connections) >= 1
    server.kill()
    server.start()
    await asyncio.sleep(0.3)  # every idle connection is now due for a health check
    assert await repo.incr_async("orders") == 1
    assert await repo.get_async("orders") == "1"
    results = await asyncio.gather(*(repo.incr_async("orders") for _ in range(8)))
    assert sorted(results) == list(range(2, 10))


async def test_a_refused_connection_is_retried_transparently_when_the_server_comes_back(
    server: RedisServer, repo_factory: RepositoryFactory
) -> None:
    # Enough retries, and a deadline long enough, to outlast the restart: the
    # caller must see only the success.
    retry = {"retries": 200, "retry_delay": 0.05, "max_retry_delay": 0.05, "jitter": False}
    repo = repo_factory.make(fast_config(server.url, circuit_breaker=False, retry_policy=retry, operation_timeout=10.0))
    await repo.set_async("menu", "margherita")
    server.kill()
    # Let the client see its idle connection closed, so the INCR is surely
    # never sent (on a connection whose close is still in flight it would
    # be written, and then maybe applied: not resent).
    await asyncio.sleep(0.2)
    task = asyncio.create_task(timed(repo.incr_async("orders")))  # never sent while refused: safe to resend
    await asyncio.sleep(0.15)
    assert not task.done()  # still retrying while nothing listens
    await asyncio.to_thread(server.start)
    result, _ = await task
    assert result == 1
    assert await repo.get_async("orders") == "1"


# -- frozen, paused, sleeping servers ----------------------------------------------


async def test_sigstop_longer_than_the_read_timeout(server: RedisServer, repo_factory: RepositoryFactory) -> None:
    repo = repo_factory.make(fast_config(server.url, circuit_breaker=False))
    await repo.set_async("k1", "v1")
    await repo.set_async("k2", "v2")
    server.pause()
    try:
        for call in (lambda: repo.get_async("k1"), lambda: repo.incr_async("n")):
            result, elapsed = await timed(call())
            assert isinstance(result, CacheTimeoutError), result
            assert elapsed <= OPERATION_TIMEOUT + MARGIN
    finally:
        server.resume()
    # The replies to the timed-out commands arrive now on connections that were
    # dropped: the next commands get their own replies.
    assert await repo.get_async("k2") == "v2"
    assert await repo.get_async("k1") == "v1"
    assert await repo.get_async("n") in ("1", None)  # INCR ran once or not at all, never twice
    assert await repo.incr_async("n") in (1, 2)


async def test_sigstop_with_the_breaker_opens_then_recovers_on_sigcont(
    server: RedisServer, repo_factory: RepositoryFactory
) -> None:
    repo = repo_factory.make(fast_config(server.url, socket_timeout=0.2, operation_timeout=0.4))
    breaker = repo.circuit_breaker
    assert breaker is not None
    await repo.set_async("menu", "margherita")
    server.pause()
    try:
        for _ in range(breaker.failure_threshold):
            result, elapsed = await timed(repo.get_async("menu"))
            assert isinstance(result, CacheTimeoutError), result
            assert elapsed <= 0.4 + MARGIN
        assert breaker.state is CircuitState.OPEN
        result, _ = await timed(repo.get_async("menu"))
        assert isinstance(result, CircuitOpenError)
        # Still frozen after recovery_timeout: the half-open trial hangs, the
        # operation deadline ends it, and that re-opens the breaker (not wedged).
        await asyncio.sleep(breaker.recovery_timeout)
        assert breaker.state is CircuitState.HALF_OPEN
        trial = asyncio.create_task(timed(repo.get_async("menu")))
        await asyncio.sleep(0.05)
        others = [await timed(repo.get_async("menu")) for _ in range(5)]
        assert all(isinstance(r, CircuitOpenError) for r, _ in others)  # one trial at a time
        result, elapsed = await trial
        assert isinstance(result, CacheTimeoutError), result
        assert elapsed <= 0.4 + MARGIN
        assert breaker.state is CircuitState.OPEN
        assert breaker.opened_count == 2
    finally:
        server.resume()
    assert await wait_until_closed(repo, "menu") == "margherita"


@pytest.mark.parametrize(("pause_ms", "expect_timeout"), [(300, False), (2500, True)])
async def test_client_pause(
    server: RedisServer, repo_factory: RepositoryFactory, pause_ms: int, expect_timeout: bool
) -> None:
    repo = repo_factory.make(fast_config(server.url, socket_timeout=1.0, operation_timeout=1.5, circuit_breaker=False))
    await repo.set_async("k1", "v1")
    await repo.set_async("k2", "v2")
    control = admin(server)
    try:
        control.execute_command("CLIENT", "PAUSE", pause_ms, "ALL")
        result, elapsed = await timed(repo.get_async("k1"))
        assert elapsed <= 1.5 + MARGIN
        if expect_timeout:
            assert isinstance(result, CacheTimeoutError), result
            control.execute_command("CLIENT", "UNPAUSE")
        else:
            assert result == "v1"  # a short pause is just latency
        assert await repo.get_async("k2") == "v2"
        assert await repo.get_async("k1") == "v1"
    finally:
        control.execute_command("CLIENT", "UNPAUSE")
        control.close()


async def test_client_pause_write_lets_reads_through(server: RedisServer, repo_factory: RepositoryFactory) -> None:
    repo = repo_factory.make(fast_config(server.url, socket_timeout=0.5, operation_timeout=0.8, circuit_breaker=False))
    await repo.set_async("k", "v")
    control = admin(server)
    try:
        control.execute_command("CLIENT", "PAUSE", 3000, "WRITE")
        assert await repo.get_async("k") == "v"
        result, elapsed = await timed(repo.set_async("k", "w"))
        assert isinstance(result, CacheTimeoutError), result
        assert elapsed <= 0.8 + MARGIN
    finally:
        control.execute_command("CLIENT", "UNPAUSE")
        control.close()
    # SET is idempotent: whether the paused one ran or not, writing again is safe.
    assert await repo.set_async("k", "w") is True
    assert await repo.get_async("k") == "w"


async def test_debug_sleep(debug_server: RedisServer, repo_factory: RepositoryFactory) -> None:
    repo = repo_factory.make(
        fast_config(debug_server.url, socket_timeout=0.3, operation_timeout=0.6, circuit_breaker=False)
    )
    await repo.set_async("k1", "v1")
    await repo.set_async("k2", "v2")
    control = admin(debug_server)
    sleeper = asyncio.create_task(asyncio.to_thread(control.execute_command, "DEBUG", "SLEEP", "1.5"))
    try:
        await asyncio.sleep(0.1)
        for call in (lambda: repo.get_async("k1"), lambda: repo.lpush_async("queue", "o-1")):
            result, elapsed = await timed(call())
            assert isinstance(result, CacheTimeoutError), result
            assert elapsed <= 0.6 + MARGIN
    finally:
        await sleeper
        control.close()
    assert await repo.get_async("k2") == "v2"
    assert await repo.get_async("k1") == "v1"
    assert await repo.llen_async("queue") in (0, 1)  # LPUSH ran at most once


# -- connections killed by the server ----------------------------------------------


def kill_clients(server: RedisServer, name: str) -> int:
    """CLIENT KILL every connection whose name is ``name``; returns how many."""
    control = admin(server)
    try:
        killed = 0
        for client in control.client_list():
            if client.get("name") == name:
                killed += int(control.execute_command("CLIENT", "KILL", "ID", client["id"]))
        return killed
    finally:
        control.close()


async def test_client_kill_of_idle_connections_reconnects_transparently(
    server: RedisServer, repo_factory: RepositoryFactory
) -> None:
    repo = repo_factory.make(fast_config(server.url, client_name="resilience-kill", retry_policy={"retries": 0}))
    await asyncio.gather(*(repo.set_async(f"k{i}", str(i)) for i in range(10)))
    assert kill_clients(server, "resilience-kill") >= 1
    await asyncio.sleep(0.05)
    # Even with retries off, a dead idle connection is replaced before the command is sent.
    assert await repo.incr_async("orders") == 1
    assert await asyncio.gather(*(repo.get_async(f"k{i}") for i in range(10))) == [str(i) for i in range(10)]
    assert await repo.get_async("orders") == "1"


async def test_client_kill_mid_request_gives_a_mapped_error(
    server: RedisServer, repo_factory: RepositoryFactory
) -> None:
    repo = repo_factory.make(fast_config(server.url, client_name="resilience-kill-mid", circuit_breaker=False))
    await repo.set_async("menu", "margherita")
    waiting = asyncio.create_task(timed(repo.blpop_async("empty-queue", timeout=5)))
    await asyncio.sleep(0.2)
    assert await asyncio.to_thread(kill_clients, server, "resilience-kill-mid") >= 1
    result, elapsed = await waiting
    assert isinstance(result, CacheUnavailableError), result  # BLPOP may have popped: not resent
    assert elapsed < 5
    assert await repo.get_async("menu") == "margherita"


@pytest.mark.parametrize("rounds", [5])
async def test_client_kill_under_traffic(server: RedisServer, repo_factory: RepositoryFactory, rounds: int) -> None:
    repo = repo_factory.make(fast_config(server.url, client_name="resilience-traffic", circuit_breaker=False))
    await repo.set_async("menu", "margherita")
    for _ in range(rounds):
        tasks = [asyncio.create_task(timed(repo.get_async("menu"))) for _ in range(30)]
        await asyncio.sleep(0)
        await asyncio.to_thread(kill_clients, server, "resilience-traffic")
        for result, elapsed in await asyncio.gather(*tasks):
            assert result == "margherita" or isinstance(result, CacheUnavailableError), result
            assert elapsed <= OPERATION_TIMEOUT + MARGIN
    assert await repo.get_async("menu") == "margherita"


# -- server states that cannot serve ---------------------------------------------


async def test_readonly_replica_is_an_outage_not_a_command_error(repo_factory: RepositoryFactory) -> None:
    with RedisServer() as primary, RedisServer(args=["--replicaof", "127.0.0.1", str(primary.port)]) as replica:
        repo = repo_factory.make(fast_config(replica.url, circuit_breaker=False, retry_policy={"retries": 0}))
        result = await outcome(repo.incr_async("orders"))
        assert isinstance(result, CacheUnavailableError), result
        assert "READONLY" in str(result)
        assert not isinstance(result, CacheCommandError)


async def test_masterdown_is_an_outage_and_counts_for_the_breaker(
    server: RedisServer, repo_factory: RepositoryFactory
) -> None:
    control = admin(server)
    try:
        # A replica of a primary that does not exist, told not to serve stale data.
        control.config_set("replica-serve-stale-data", "no")
        control.execute_command("REPLICAOF", "127.0.0.1", str(free_port()))
        repo = repo_factory.make(fast_config(server.url, retry_policy={"retries": 0}))
        breaker = repo.circuit_breaker
        assert breaker is not None
        for _ in range(breaker.failure_threshold):
            result = await outcome(repo.get_async("menu"))
            assert isinstance(result, CacheUnavailableError), result
            assert "MASTERDOWN" in str(result)
        assert breaker.state is CircuitState.OPEN
    finally:
        control.execute_command("REPLICAOF", "NO", "ONE")
        control.close()
