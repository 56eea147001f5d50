"""``disconnect()`` while commands are in flight: every connection closes, the breaker does not blame the server."""

from __future__ import annotations

import asyncio

import pytest
import redis

from neuroglia.data.redis import CacheException, CircuitState, RedisConfig
from neuroglia.data.redis.testing import RedisServer
from tests.support.faults import outcome
from tests.support.proxy import TcpProxy
from tests.support.repositories import RepositoryFactory

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

NAME = "disconnect-in-flight"


def connected_clients(server: RedisServer, name: str) -> int:
    admin = redis.Redis(host=server.host, port=server.port, socket_timeout=5)
    try:
        return sum(1 for client in admin.client_list() if client.get("name") == name)
    finally:
        admin.close()


async def eventually_zero(server: RedisServer, name: str, within: float = 5.0) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        count = await asyncio.to_thread(connected_clients, server, name)
        if count == 0 or loop.time() >= deadline:
            return count
        await asyncio.sleep(0.05)


async def test_disconnect_with_fifty_commands_in_flight_closes_every_connection(
    debug_server: RedisServer, repo_factory: RepositoryFactory
) -> None:
    repo = repo_factory.make(RedisConfig(url=debug_server.url, client_name=NAME, operation_timeout=10.0))
    await repo.set_async("menu", "margherita")
    sleeper = asyncio.create_task(asyncio.to_thread(_debug_sleep, debug_server, 0.5))
    await asyncio.sleep(0.05)  # the server sleeps: what is sent now waits in flight
    in_flight = [asyncio.create_task(outcome(repo.get_async("menu"))) for _ in range(50)]
    await asyncio.sleep(0.1)
    assert await repo.connection_pool.in_use_connections >= 1
    await repo.disconnect()
    results = await asyncio.gather(*in_flight)
    await sleeper
    # Each command got its reply or a library error: none hangs, none leaks an exception.
    assert all(r == "margherita" or isinstance(r, CacheException) for r in results), results
    assert await eventually_zero(debug_server, NAME) == 0
    breaker = repo.circuit_breaker
    assert breaker is not None
    assert breaker.state is CircuitState.CLOSED
    assert breaker.failure_count == 0  # the client's own disconnect is not the server's failure


async def test_repeated_disconnects_under_load_leave_nothing_open_and_the_breaker_closed(
    server: RedisServer, repo_factory: RepositoryFactory
) -> None:
    repo = repo_factory.make(RedisConfig(url=server.url, client_name=NAME))
    await repo.set_async("menu", "margherita")
    stop = asyncio.Event()

    async def load() -> None:
        while not stop.is_set():
            result = await outcome(repo.get_async("menu"))
            assert result == "margherita" or isinstance(result, CacheException)
            await asyncio.sleep(0)

    workers = [asyncio.create_task(load()) for _ in range(20)]
    for _ in range(10):
        await asyncio.sleep(0.05)
        await repo.disconnect()
    stop.set()
    await asyncio.gather(*workers)
    await repo.disconnect()
    assert await eventually_zero(server, NAME) == 0
    breaker = repo.circuit_breaker
    assert breaker is not None
    assert breaker.state is CircuitState.CLOSED
    assert await repo.get_async("menu") == "margherita"  # and it reconnects on the next use


def _debug_sleep(server: RedisServer, seconds: float) -> None:
    admin = redis.Redis(host=server.host, port=server.port, socket_timeout=10)
    try:
        admin.execute_command("DEBUG", "SLEEP", seconds)
    finally:
        admin.close()


async def test_callers_waiting_for_a_connection_when_the_repository_disconnects_get_an_outage_not_a_cancellation(
    proxy: TcpProxy, repo_factory: RepositoryFactory
) -> None:
    """disconnect() gives up the connection being opened: its waiters get a library error, never CancelledError."""
    repo = repo_factory.make(RedisConfig(url=proxy.url, retry_policy={"retries": 0}, operation_timeout=5.0))
    proxy.hold_replies = True  # the handshake gets no answer: the connection stays "being opened"
    waiting = [asyncio.create_task(outcome(repo.get_async("menu"))) for _ in range(5)]
    await asyncio.sleep(0.2)
    assert not any(task.done() for task in waiting)
    await repo.disconnect()
    results = await asyncio.gather(*waiting)
    assert all(isinstance(result, CacheException) for result in results), results
    proxy.hold_replies = False
