"""The stale-read fallback: last-known-good replies during an outage, flagged as stale."""

from __future__ import annotations

import pytest

from neuroglia.data.redis import (
    CacheUnavailableError,
    CircuitOpenError,
    CircuitState,
    ConfigurationError,
    FallbackPolicy,
    RedisConfig,
    RedisRepository,
)
from neuroglia.data.redis.resilience import LastKnownGood
from neuroglia.data.redis.testing import FaultInjectingTransport, RedisServer
from neuroglia.data.redis.transport import build_transport
from tests.support.faults import FakeClock, fast_config, outcome, wait_until_closed
from tests.support.repositories import RepositoryFactory

# -- the store -----------------------------------------------------------------------


def test_last_known_good_is_a_bounded_lru() -> None:
    store = LastKnownGood(FallbackPolicy(max_entries=3, max_staleness=60), clock=FakeClock())
    for key in "abc":
        store.remember(("GET", key), key.upper())
    store.remember(("GET", "a"), "A2")  # every successful read refreshes its entry
    store.remember(("GET", "d"), "D")  # evicts the least recently refreshed: b
    assert len(store) == 3
    assert store.recall(("GET", "b")) == (False, None)
    assert store.recall(("GET", "a")) == (True, "A2")
    assert store.recall(("GET", "d")) == (True, "D")
    store.forget(("GET", "d"))
    assert store.recall(("GET", "d")) == (False, None)


def test_last_known_good_expires_after_max_staleness() -> None:
    clock = FakeClock()
    store = LastKnownGood(FallbackPolicy(max_entries=10, max_staleness=30), clock=clock)
    store.remember(("GET", "menu"), b"margherita")
    clock.advance(30)
    assert store.recall(("GET", "menu")) == (True, b"margherita")
    clock.advance(0.001)
    assert store.recall(("GET", "menu")) == (False, None)
    assert len(store) == 0


def test_fallback_settings() -> None:
    assert RedisConfig().fallback is None  # off by default
    assert RedisConfig(fallback=True).fallback == FallbackPolicy()
    assert RedisConfig(fallback={"max_entries": 10}).fallback == FallbackPolicy(max_entries=10)
    for bad in ({"max_entries": 0}, {"max_staleness": 0}, {"size": 3}):
        with pytest.raises(ConfigurationError, match="fallback"):
            RedisConfig(fallback=bad)


# -- against a real server -------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.timeout(30)
async def test_a_read_is_answered_from_last_known_good_during_an_outage(
    server: RedisServer, repo_factory: RepositoryFactory
) -> None:
    repo = repo_factory.make(fast_config(server.url, fallback={"max_entries": 100, "max_staleness": 60}))
    breaker = repo.circuit_breaker
    assert breaker is not None
    await repo.set_async("menu:margherita", '{"price": 9.5}')
    await repo.hset_async("menu:prices", mapping={"margherita": "9.5", "diavola": "11"})
    assert await repo.get_async("menu:margherita") == '{"price": 9.5}'
    assert await repo.hgetall_async("menu:prices") == {"margherita": "9.5", "diavola": "11"}
    assert repo.served_stale() is False

    server.kill()
    # While closed (each read fails, then is answered from memory) and once open (no socket at all).
    for _ in range(breaker.failure_threshold + 3):
        assert await repo.get_async("menu:margherita") == '{"price": 9.5}'
        assert repo.served_stale() is True
    assert breaker.state is CircuitState.OPEN
    assert await repo.hgetall_async("menu:prices") == {"margherita": "9.5", "diavola": "11"}
    assert repo.served_stale() is True
    # Only what this process read before: other reads and every write still fail.
    assert isinstance(await outcome(repo.get_async("menu:never-read")), CircuitOpenError)
    assert isinstance(await outcome(repo.set_async("menu:margherita", "x")), CacheUnavailableError)

    server.start()
    await wait_until_closed(repo, "menu:margherita")
    # Fresh again: the restarted server (no persistence) has lost the key, and says so.
    assert await repo.get_async("menu:margherita") is None
    assert repo.served_stale() is False
    await repo.set_async("menu:margherita", '{"price": 10}')
    assert await repo.get_async("menu:margherita") == '{"price": 10}'
    assert repo.served_stale() is False


@pytest.mark.integration
@pytest.mark.timeout(30)
async def test_without_the_fallback_an_outage_raises(server: RedisServer, repo_factory: RepositoryFactory) -> None:
    repo = repo_factory.make(fast_config(server.url))
    await repo.set_async("menu", "margherita")
    assert await repo.get_async("menu") == "margherita"
    server.kill()
    assert isinstance(await outcome(repo.get_async("menu")), CacheUnavailableError)
    assert repo.served_stale() is False


async def test_served_stale_belongs_to_the_repository_that_served_it() -> None:
    """A stale read on one repository says nothing about another, healthy one (no shared flag)."""
    config = RedisConfig(
        url="memory://stale-per-repository", fallback=True, circuit_breaker=False, retry_policy={"retries": 0}
    )
    broken = FaultInjectingTransport(build_transport(config))
    failing = RedisRepository(config, transport=broken)
    healthy = RedisRepository(config)
    try:
        await healthy.set_async("menu", "margherita")
        assert await failing.get_async("menu") == "margherita"  # remembered
        broken.faults.outage = True
        assert await failing.get_async("menu") == "margherita"
        assert failing.served_stale() is True
        assert await healthy.get_async("menu") == "margherita"
        assert healthy.served_stale() is False
        assert failing.served_stale() is True  # still this task's last read on that repository
    finally:
        await failing.disconnect()
        await healthy.disconnect()
