"""Recovery follows the server, not the breaker's timer: the probe sent while the breaker is open.

With the default settings (``recovery_timeout`` 30 s) a server that comes
back after a short outage serves the repository's callers again as soon as
the probe hears it, while callers still fail fast during the outage, and the
probe never sends more than a few commands per second.
"""

from __future__ import annotations

import asyncio

import pytest

from neuroglia.data.redis import CacheUnavailableError, CircuitOpenError, CircuitState, RedisConfig, RedisRepository
from neuroglia.data.redis.testing import FakeClock, MockTransport, RedisServer, refused
from tests.support.faults import outcome
from tests.support.repositories import RepositoryFactory

pytestmark = pytest.mark.timeout(60)


async def test_a_short_outage_ends_when_the_server_is_back_not_after_recovery_timeout(
    server: RedisServer, repo_factory: RepositoryFactory
) -> None:
    repo = repo_factory.make(server.url)  # default settings: recovery_timeout 30 s, 5 failures open the breaker
    breaker = repo.circuit_breaker
    assert breaker is not None
    assert breaker.recovery_timeout == 30.0
    await repo.set_async("menu", "margherita")
    server.kill()
    while breaker.state is not CircuitState.OPEN:
        assert isinstance(await outcome(repo.get_async("menu")), CacheUnavailableError)
    assert isinstance(await outcome(repo.get_async("menu")), CircuitOpenError)  # failing fast
    await asyncio.sleep(1.0)
    await asyncio.to_thread(server.start)
    back = asyncio.get_running_loop().time()
    while isinstance(result := await outcome(repo.get_async("menu")), CacheUnavailableError):
        assert asyncio.get_running_loop().time() - back < 10, "still refused 10 s after the restart"
        await asyncio.sleep(0.01)
    assert result is None  # the restarted server has no data: a miss, answered
    assert breaker.state in (CircuitState.HALF_OPEN, CircuitState.CLOSED)


async def test_the_probe_asks_a_few_times_a_second_at_most_and_stops_when_heard(clock: FakeClock) -> None:
    """On a scripted transport: the probe's PINGs, their pace, and the half-open it causes."""
    answers = iter([refused()] * 7 + [b"PONG"])
    transport = MockTransport(handler=lambda args: _answer(args, answers))
    config = RedisConfig(
        url="redis://127.0.0.1:6379/0",
        retry_policy={"retries": 0},
        circuit_breaker={"failure_threshold": 1, "recovery_timeout": 3600, "clock": clock},
    )
    repo = RedisRepository(config, transport=transport)
    transport.script(refused())
    assert isinstance(await outcome(repo.get_async("k")), CacheUnavailableError)
    breaker = repo.circuit_breaker
    assert breaker is not None
    assert breaker.state is CircuitState.OPEN
    started = asyncio.get_running_loop().time()
    while breaker.state is CircuitState.OPEN:
        await asyncio.sleep(0.02)
        assert asyncio.get_running_loop().time() - started < 10
    elapsed = asyncio.get_running_loop().time() - started
    pings = [args for args in transport.sent if args == ("PING",)]
    assert len(pings) == 8  # seven refused, the eighth heard
    assert len(pings) / elapsed <= 6  # growing delays: a few per second at most
    assert breaker.state is CircuitState.HALF_OPEN  # the clock never moved: only the probe opened the way
    await repo.disconnect()


def _answer(args: tuple[object, ...], answers: object) -> object:
    assert args == ("PING",), args
    reply = next(answers)  # type: ignore[call-overload]
    if isinstance(reply, BaseException):
        raise reply
    return reply


async def test_a_frozen_server_opens_the_breaker_with_the_default_settings(
    server: RedisServer, repo_factory: RepositoryFactory
) -> None:
    """SIGSTOP: calls end at the 2 s default deadline, count as failures, and the breaker opens; SIGCONT: back."""
    repo = repo_factory.make(server.url)
    breaker = repo.circuit_breaker
    assert breaker is not None
    await repo.set_async("menu", "margherita")
    loop = asyncio.get_running_loop()
    server.pause()
    try:
        started = loop.time()
        outcomes = await asyncio.gather(*(outcome(repo.get_async("menu")) for _ in range(5)))
        assert all(isinstance(o, CacheUnavailableError) for o in outcomes), outcomes
        assert loop.time() - started < 2.0 + 1.0  # the default deadline, plus scheduling noise
        assert breaker.state is CircuitState.OPEN
        assert isinstance(await outcome(repo.get_async("menu")), CircuitOpenError)
    finally:
        server.resume()
    while isinstance(result := await outcome(repo.get_async("menu")), CacheUnavailableError):
        assert loop.time() - started < 15, "no recovery after the freeze"
        await asyncio.sleep(0.02)
    assert result == "margherita"
